"""The I3D release protocols (`avloc extract --protocol wtalc|actionformer`) without the
trained weights: random I3D files in pytorch-i3d's layout (tools/random_weights.py) prove
the loaders; index videos (frame i grey 3 i) prove which frames and flows each window sees,
against Finspire13's loop over dense_flow's lists written out here; the CLI writes the
release files the W-TALC and ActionFormer readers take unchanged; localize puts the
features on the grid the reader trained on; errors are one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from testvideo import make_test_video

from avloc.cli import main
from avloc.config import DataConfig
from avloc.extract.release_grid import cfr_output
from avloc.extract.store import read_features
from avloc.util.errors import AvlocError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from random_weights import write_random_weights  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GREY = 3  # frame i of the index videos is grey 3 i


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_random_weights(folder, small_classifier=True)
    return folder


def index_video(path: Path, seconds: float, fps: int) -> Path:
    changes = [(i / fps, (GREY * i,) * 3) for i in range(int(round(seconds * fps)))]
    return make_test_video(path, seconds, changes, fps=fps, size=(64, 48))


def frame_number(grey: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(grey, np.float64) / GREY).astype(int)


def grey_flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """A stand-in for TV-L1 whose uint8 map (bound 20) is the two frames' greys."""
    return np.stack([prev, nxt], axis=-1).astype(np.float32) / 255 * 40 - 20  # (H, W, 2)


def probe(extractor) -> list[np.ndarray]:
    """Replace I3D and TV-L1: each window's (16, 3) frame numbers of its RGB, flow source
    and flow target frames; the features carry the RGB numbers."""
    seen: list[np.ndarray] = []

    def embed(clips: np.ndarray) -> torch.Tensor:  # (B, 16, 224, 224, 5)
        numbers = frame_number(clips.mean(axis=(2, 3), dtype=np.float64))  # (B, 16, 5)
        seen.extend(np.stack([numbers[..., 0], numbers[..., 3], numbers[..., 4]], -1))
        return torch.from_numpy(np.tile(numbers[..., 0].astype(np.float32), (1, 128)))

    extractor.embed, extractor.flow = embed, lambda: grey_flow
    return seen


def release_loop(jpegs: list[int], frequency: int) -> list[list[tuple[int, int, int]]]:
    """Finspire13's run() over dense_flow's lists of the decoded frames `jpegs`: img and
    flow files start at frame 1 (flow k from frame k to k + 1)."""
    rgb_files = jpegs[1:]
    flow_files = list(zip(jpegs[:-1], jpegs[1:], strict=True))
    frame_cnt = len(rgb_files)
    clipped_length = (frame_cnt - 16) // frequency * frequency
    frame_indices = [[j for j in range(i * frequency, i * frequency + 16)]
                     for i in range(clipped_length // frequency + 1)]
    return [[(rgb_files[j], *flow_files[j]) for j in window] for window in frame_indices]


def test_wtalc_windows_are_16_of_dense_flows_lists_at_25_fps(weights, tmp_path):
    from avloc.extract.audio import VggishBackend
    from avloc.extract.decode import decode_video
    from avloc.extract.protocol_i3d import WtalcExtractor

    ext = WtalcExtractor(weights, batch_size=16)
    seen = probe(ext)
    got = ext.extract(index_video(tmp_path / "v.mp4", 1.5, 30))
    jpegs = cfr_output(np.arange(45) / 30, 25, 1 / 30).tolist()  # ffmpeg -r 25
    plain = release_loop(jpegs, 16)
    assert len(plain) == 2 and np.array(seen).tolist() == [[list(e) for e in w] for w in plain]
    assert got.visual.shape == (2, 2048) and got.audio.shape == (2, 128)
    np.testing.assert_array_equal(got.visual[:, :16], [[e[0] for e in w] for w in plain])
    # audio: avloc's vggish back-end on the 16 kHz mono wave it gets, 0.64 s snippets
    wave = decode_video(tmp_path / "v.mp4", 0.64).audio[: int(2 * 0.64 * 16000)]
    expected = VggishBackend(weights / "vggish.pth").embed(wave, 2, 0.64)
    np.testing.assert_allclose(got.audio, expected, atol=1e-6)
    assert got.meta["protocol"] == "wtalc" and got.meta["snippet_seconds"] == 0.64


def test_actionformer_windows_every_4_frames_at_the_videos_rate(weights, tmp_path):
    from avloc.extract.protocol_i3d import ActionformerExtractor

    ext = ActionformerExtractor(weights)
    seen = probe(ext)
    got = ext.extract(index_video(tmp_path / "v.mp4", 1.5, 30))
    plain = release_loop(list(range(45)), 4)  # every decoded frame, no resampling
    assert len(plain) == 8 and np.array(seen).tolist() == [[list(e) for e in w] for w in plain]
    assert got.audio.shape == (8, 0) and got.visual.shape == (8, 2048)
    assert (got.meta["fps"], got.meta["feat_stride"], got.meta["num_frames"]) == (30.0, 4, 16)


def test_entries_pair_each_frame_with_the_flow_into_it():
    from avloc.extract.flow import Tvl1
    from avloc.extract.protocol_i3d import centre_crop, dense_flow_entries

    pytest.importorskip("cv2").setNumThreads(1)
    texture = np.random.default_rng(0).integers(60, 200, (256, 360)).astype(np.uint8)
    texture = np.asarray(pytest.importorskip("cv2").GaussianBlur(texture, (7, 7), 2))
    greys = [texture[:, 20 - 2 * k:360 - 2 * k] for k in range(2)]  # content 2 px right
    frames = [(np.repeat(g[..., None], 3, 2) // (k + 1), g) for k, g in enumerate(greys)]
    entries = list(dense_flow_entries(frames, Tvl1()))
    assert len(entries) == 1 and entries[0].shape == (224, 224, 5)
    np.testing.assert_array_equal(entries[0][..., :3], centre_crop(frames[1][0]))  # frame 1
    inside = entries[0][40:184, 40:184, 3:].astype(np.float64)  # 2 px right: 128 + 2 * 255 / 40
    assert np.median(inside[..., 0]) == pytest.approx(128 + 2 * 255 / 40, abs=1.5)
    assert np.median(inside[..., 1]) == pytest.approx(128, abs=1.5)


def anet_annotations(folder: Path, videos: list[tuple[str, float]]) -> None:
    """W-TALC's ActivityNet 1.2 annotation arrays for `videos` (id, duration)."""
    adir = folder / "ActivityNet1.2-Annotations"
    adir.mkdir(parents=True)
    arrays = {
        "classlist": np.array([b"Dog", b"Car"]),
        "videoname": np.array([f"video_{i}".encode() for i in range(len(videos))]),
        "url": np.array([f"https://www.youtube.com/watch?v={v}".encode() for v, _ in videos]),
        "subset": np.array([b"training", b"validation"][: len(videos)]),
        "duration": np.array([d for _, d in videos]),
    }
    segments, labels = np.empty(len(videos), object), np.empty(len(videos), object)
    for i, (_, duration) in enumerate(videos):
        segments[i], labels[i] = [[0.0, duration]], [b"Dog"]
    arrays |= {"segments": segments, "labels": labels}
    for name, array in arrays.items():
        np.save(adir / f"{name}.npy", array, allow_pickle=True)


@pytest.fixture
def fast_tvl1(monkeypatch):
    """TV-L1 with one scale, warp and iteration: the real code path, at test speed."""
    from avloc.extract import flow, protocol_i3d

    class FastTvl1(flow.Tvl1):
        def __init__(self) -> None:
            super().__init__()
            for setting in ("ScalesNumber", "WarpingsNumber", "InnerIterations",
                            "OuterIterations"):
                getattr(self.tvl1, f"set{setting}")(1)

    monkeypatch.setattr(protocol_i3d, "Tvl1", FastTvl1)


def test_cli_wtalc_release_files_read_by_the_anet12_reader(weights, tmp_path, fast_tvl1):
    from avloc.data.anet import load_anet12

    videos = [index_video(tmp_path / f"{v}.mp4", 0.8, 25) for v in ("zz", "aa")]
    out = tmp_path / "anet"
    anet_annotations(out, [("zz", 0.8), ("aa", 0.8)])  # not id order
    assert main(["extract", *map(str, videos), "--out", str(out), "--protocol", "wtalc",
                 "--weights", str(weights), "--layout", "release", "--no-progress"]) == 0
    npz = {v: read_features(out / "features" / f"{v}.npz") for v in ("zz", "aa")}
    assert {v: (a.shape, x.shape) for v, (a, x, _) in npz.items()} == {
        v: ((1, 128), (1, 2048)) for v in ("zz", "aa")}
    ds = load_anet12(DataConfig(format="anet12", snippet_seconds=0.64, val_fraction=0.0), out)
    read = {v.vid: v for split in ds.splits.values() for v in split}
    for vid, (audio, visual, _) in npz.items():  # the reader takes them unchanged
        np.testing.assert_array_equal(read[vid].visual, visual)
        np.testing.assert_array_equal(read[vid].audio, audio)
    joint = np.load(out / "ActivityNet1.2-I3D-JOINTFeatures.npy", allow_pickle=True)
    np.testing.assert_array_equal(joint[0], npz["zz"][1])  # videoname order


def test_cli_actionformer_release_files_read_by_the_thumos_reader(weights, tmp_path,
                                                                  fast_tvl1, capsys):
    from avloc.data.thumos import load_thumos14

    video = index_video(tmp_path / "video_test_0000001.mp4", 0.8, 25)
    out = tmp_path / "thumos"
    assert main(["extract", str(video), "--out", str(out), "--protocol", "actionformer",
                 "--weights", str(weights), "--layout", "release", "--no-progress"]) == 0
    stored = np.load(out / "i3d_features" / "video_test_0000001.npy")
    assert stored.shape == (1, 2048) and stored.dtype == np.float32
    (out / "thumos14.json").write_text(json.dumps({"database": {"video_test_0000001": {
        "subset": "Test", "duration": 0.8, "fps": 25.0,
        "annotations": [{"segment": [0.0, 0.5], "label": "Dog", "label_id": 0}]}}}))
    ds = load_thumos14(DataConfig(format="thumos14", val_fraction=0.0), out)
    np.testing.assert_array_equal(ds.splits["test"][0].visual, stored)
    _, visual, meta = read_features(out / "features" / "video_test_0000001.npz")
    np.testing.assert_array_equal(visual, stored)
    assert meta["protocol"] == "actionformer" and meta["has_audio"] is True  # not used
    assert "note" not in capsys.readouterr().err  # no "features of silence": it makes none


def test_localize_puts_actionformer_features_on_the_readers_grid(tmp_path):
    """What the thumos14 preset trains on (every 4th feature, per-video timing) is what
    localize makes of a video's extracted features."""
    from avloc.config import load_config
    from avloc.data import Dataset, Video, protocol_grid, protocol_record
    from avloc.data.thumos import load_thumos14

    cfg = load_config("thumos14", ["data.val_fraction=0.0"]).data
    raw = np.random.default_rng(0).normal(size=(73, 2048)).astype(np.float32)  # (T, 2048)
    (tmp_path / "i3d_features").mkdir()
    np.save(tmp_path / "i3d_features" / "v.npy", raw)
    (tmp_path / "thumos14.json").write_text(json.dumps({"database": {"v": {
        "subset": "Test", "duration": 10.0, "fps": 29.97,
        "annotations": [{"segment": [1.0, 2.0], "label": "Dog", "label_id": 0}]}}}))
    ds = load_thumos14(cfg, tmp_path)
    record = protocol_record("actionformer", ds, cfg)
    assert record == {"protocol": "actionformer", "snippet_seconds": 4 / 30, "downsample": 4}
    audio, visual, timing = protocol_grid(np.zeros((73, 0), np.float32), raw,
                                            {"fps": 29.97}, record, 4 / 30)
    np.testing.assert_array_equal(visual, ds.splits["test"][0].visual)
    assert audio.shape == (19, 0) and timing == ds.annotations["v"].timing
    assert timing.at(0.5) == pytest.approx(8 / 29.97)  # feature 0's centre: frame 4 * 0 + 8
    other = Dataset("thumos14", "action", ["Dog"], 0.64, ds.splits, {})  # W-TALC's grid
    assert protocol_record("actionformer", other, cfg) is None
    video = Video("v", np.zeros((3, 128), np.float32), np.zeros((3, 2048), np.float32),
                  np.ones(1, np.float32))
    wtalc = Dataset("anet12", "action", ["Dog"], 0.64, {"train": [video]}, {})
    assert protocol_record("wtalc", wtalc) == {"protocol": "wtalc", "snippet_seconds": 0.64}


def test_missing_i3d_files_and_short_videos_are_one_line_errors(weights, tmp_path, capsys):
    from avloc.extract.protocol_i3d import ActionformerExtractor

    video = index_video(tmp_path / "v.mp4", 0.4, 25)  # 10 frames: no 16-frame window
    only_vggish = tmp_path / "only_vggish"
    only_vggish.mkdir()
    (only_vggish / "vggish.pth").symlink_to(weights / "vggish.pth")
    out = tmp_path / "out"
    for protocol in ("wtalc", "actionformer"):
        assert main(["extract", str(video), "--out", str(out), "--protocol", protocol,
                     "--weights", str(only_vggish)]) == 1
        err = capsys.readouterr().err.strip()
        assert "rgb_imagenet.pt" in err and len(err.splitlines()) == 1, err
        assert not out.exists()
    with pytest.raises(AvlocError, match="10 frames; protocol actionformer needs 17") as err:
        ActionformerExtractor(weights).extract(video)
    assert "\n" not in str(err.value)


def test_help_names_the_i3d_weight_files(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    assert "wtalc:" in text and "actionformer:" in text
    assert "rgb_imagenet.pt, flow_imagenet.pt" in text


def test_thumos_release_to_training_to_localizing_a_new_video(weights, tmp_path, fast_tvl1):
    """The thumos14 preset records the protocol and its downsample; localize extracts a
    video with it and places the kept features on the grid the reader trained on."""
    from avloc.checkpoint import read_checkpoint
    from avloc.config import load_config
    from avloc.data.base import frame_timing
    from avloc.scoring.results import cas_path, read_cas
    from avloc.train import train

    rng = np.random.default_rng(0)
    data = tmp_path / "thumos"
    (data / "i3d_features").mkdir(parents=True)
    database = {}
    for i, subset in enumerate(["Validation"] * 4 + ["Test"]):
        vid = f"video_{subset.lower()}_{i:07d}"
        np.save(data / "i3d_features" / f"{vid}.npy", rng.normal(size=(40, 2048)).astype(
            np.float32))  # 40 features: 172 frames at 25 fps
        database[vid] = {"subset": subset, "duration": 172 / 25, "fps": 25.0, "annotations": [
            {"segment": [1.0, 3.0], "label": "Dog" if i % 2 else "Car", "label_id": i % 2}]}
    (data / "thumos14.json").write_text(json.dumps({"database": database}))
    cfg = load_config("thumos14", ["model.d_x=16", "train.epochs=1", "train.batch_size=2",
                                   "train.similar_pairs=1", "train.progress=false"])
    train(cfg, data, tmp_path / "run")
    ckpt = read_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["extractors"] == {"protocol": "actionformer", "snippet_seconds": 4 / 30,
                                  "downsample": 4}
    video = index_video(tmp_path / "new.mp4", 1.0, 25)  # 24 entries: 3 windows, 1 kept
    loc = tmp_path / "loc"
    assert main(["localize", str(video), "--checkpoint", str(tmp_path / "run"),
                 "--weights", str(weights), "--out", str(loc), "--no-progress"]) == 0
    assert read_features(loc / "features" / "new.npz")[1].shape == (3, 2048)
    rec = read_cas(cas_path(loc, "new"))
    assert len(rec.mu) == 1 and rec.timing == frame_timing(25.0, 4, 16, 4)
