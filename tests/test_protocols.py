"""The release protocols (`avloc extract --protocol ave|llp`) end to end, without the trained
weights: randomly initialised networks saved in the published formats (tools/random_weights.py)
prove the loaders; synthetic videos whose frames carry their own index (grey level 3 i)
prove which frames each snippet sees, against the releases' loops written out here; the
real clip runs through the CLI; errors are one line and leave nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from testvideo import make_test_video

from avloc.cli import main
from avloc.extract.store import read_features, read_streams
from avloc.util.errors import AvlocError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from compare_features import cosines  # noqa: E402
from random_weights import KERAS_FILE, write_random_weights  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FPS, GREY = 25, 3  # frame i of the index videos is grey 3 i


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Every file, torchvision's VGG-19 only (the Keras file is in `keras_weights`)."""
    folder = tmp_path_factory.mktemp("weights")
    write_random_weights(folder, keras=True, small_classifier=True)
    keras = tmp_path_factory.mktemp("keras")
    (folder / KERAS_FILE).rename(keras / KERAS_FILE)
    (keras / "vggish.pth").symlink_to(folder / "vggish.pth")
    return folder


@pytest.fixture(scope="module")
def keras_weights(weights) -> Path:
    return next(p.parent for p in weights.parent.glob(f"*/{KERAS_FILE}"))


def index_video(path: Path, seconds: float, tone: tuple | None = None) -> Path:
    """Frame i shows grey 3 i, so a picked frame says which it is (H.264 moves it by <= 2)."""
    changes = [(i / FPS, (GREY * i,) * 3) for i in range(int(seconds * FPS))]
    return make_test_video(path, seconds, changes, fps=FPS, size=(64, 48), tone=tone)


def frame_number(grey: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(grey, np.float64) / GREY)


def test_ave_seconds_see_the_frames_of_the_release_loop(weights, tmp_path):
    from avloc.extract.protocol_ave import AveExtractor

    ext = AveExtractor(weights)
    ext.pool5 = lambda images: torch.from_numpy(  # (B, 7, 7, 512): each image's mean grey
        images.reshape(len(images), -1).mean(1, dtype=np.float64)).view(-1, 1, 1, 1).expand(
        -1, 7, 7, 512).float()
    got = ext.extract(index_video(tmp_path / "v.mp4", 3.0))
    frames, seconds, picks = 75, 3, 16  # imageio: every frame of the constant-rate video
    interval = int(frames / seconds)
    plain = [[int(sec * interval + (i * 1.0 / picks) * interval) for i in range(picks)]
             for sec in range(seconds)]  # video_frame_sample, as the release wrote it
    assert got.visual.shape == (3, 512) and got.streams["visual"].shape == (3, 7, 7, 512)
    means = got.visual[:, 0] / GREY  # the mean frame number of each second's 16 picks
    np.testing.assert_allclose(means, np.mean(plain, axis=1), atol=0.8)
    assert got.meta["protocol"] == "ave" and got.meta["vgg19_weights"] == "torchvision"


def test_llp_seconds_see_8_fps_frames_picked_by_linspace(weights, tmp_path):
    from avloc.extract.protocol_llp import LlpExtractor
    from avloc.extract.release_grid import cfr_output

    ext = LlpExtractor(weights, batch_size=8)
    seen: list[np.ndarray] = []

    def probe(crops, small):  # rows: each crop's grey; clips: their 8 small frames' greys
        seen.append(frame_number(small.reshape(len(small), -1).mean(1)))
        rows = np.repeat(crops.reshape(len(crops), -1).mean(1, keepdims=True), 2048, 1)
        clips = np.repeat(small.reshape(-1, 8 * 112 * 112 * 3).mean(1, keepdims=True), 512, 1)
        return rows, clips

    ext.embed = probe
    got = ext.extract(index_video(tmp_path / "v.mp4", 3.0))
    jpegs = cfr_output(np.arange(75) / FPS, 8, 1 / FPS)  # ffmpeg -r 8: 24 JPEGs
    plain = [jpegs[int(s)] for s in np.round(np.linspace(0, len(jpegs) - 1, 24))]
    assert np.concatenate(seen).tolist() == plain
    assert got.visual.shape == (3, 2560) and got.streams["res152"].shape == (24, 2048)
    np.testing.assert_allclose(frame_number(got.streams["res152"][:, 0]), plain, atol=0)
    np.testing.assert_allclose(got.visual[:, 0] / GREY, np.reshape(plain, (3, 8)).mean(1),
                               atol=0.7)  # per-second mean of the 8 rows, then R(2+1)D's 512


def test_ave_audio_is_one_resampled_piece_per_second():
    from avloc.extract.melspec import VGGISH_LOG_OFFSET, log_mel
    from avloc.extract.release_audio import ave_examples

    resampy = pytest.importorskip("resampy")
    rate = 44100
    t = np.arange(int(2.5 * rate)) / rate
    tone = np.where((t >= 1) & (t < 2), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.01 * np.sin(t))
    wave = np.stack([tone, 0.5 * tone], axis=1)  # (S, 2): stereo, as the wav held it
    got = ave_examples(wave, rate, 3)
    for second in range(3):  # wavfile_to_examples as the AVE fork wrote it
        piece = wave[second * rate:(second + 1) * rate].mean(axis=1)
        piece = np.pad(piece, (0, rate - len(piece)))  # avloc's choice: the tail padded
        mel = log_mel(resampy.resample(piece, rate, 16000), VGGISH_LOG_OFFSET)  # (98, 64)
        np.testing.assert_allclose(got[second], mel[:96], atol=1e-5)
    assert got[1].max() > got[0].max() + 3  # the tone lands in second 1


def test_llp_audio_frames_each_ten_second_window_as_a_clip():
    from avloc.extract.melspec import VGGISH_LOG_OFFSET, log_mel
    from avloc.extract.release_audio import llp_examples

    wave = np.random.default_rng(0).normal(0, 0.1, 13 * 16000)
    got = llp_examples(wave, 13)
    assert got.shape == (13, 96, 64)
    first = log_mel(wave[:160000], VGGISH_LOG_OFFSET)  # one 10 s clip: 998 frames
    np.testing.assert_allclose(got[:10], first[:960].reshape(10, 96, 64), atol=1e-5)
    tail = log_mel(np.pad(wave[160000:], (0, 70000)), VGGISH_LOG_OFFSET)  # padded to 10 s
    np.testing.assert_allclose(got[10:], tail[:288].reshape(3, 96, 64), atol=1e-5)


def test_keras_and_torchvision_vgg19_files_load_the_same_convolutions(weights, keras_weights):
    from avloc.extract.protocol_ave import AveExtractor

    keras, torchvision = AveExtractor(keras_weights), AveExtractor(weights)
    assert keras.keras and not torchvision.keras
    for a, b in zip(keras.vgg.parameters(), torchvision.vgg.parameters(), strict=True):
        assert torch.equal(a, b)
    images = np.full((1, 224, 224, 3), (10, 20, 30), np.uint8)
    bgr = keras.inputs(images)[0, :, 0, 0].tolist()  # caffe mode: BGR minus the BGR means
    np.testing.assert_allclose(bgr, [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-4)


def test_cli_llp_on_the_real_clip_writes_the_release_files(real_video, weights, tmp_path,
                                                           capsys):
    from avloc.data.llp import release_features

    out = tmp_path / "my_llp"
    assert main(["extract", str(real_video), "--out", str(out), "--protocol", "llp",
                 "--weights", str(weights), "--layout", "release", "--no-progress"]) == 0
    printed = capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert printed in readme  # the README shows this run's output
    audio, visual, meta = read_features(out / "features" / "BjCEufrlXm4.npz")
    assert (audio.shape, visual.shape, meta["protocol"]) == ((10, 128), (10, 2560), "llp")
    assert np.isfinite(audio).all() and np.isfinite(visual).all()
    shapes = {d: np.load(out / "feats" / d / "BjCEufrlXm4.npy").shape
              for d in ("vggish", "res152", "r2plus1d_18")}
    assert shapes == {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}
    ra, rv = release_features(out / "feats", "BjCEufrlXm4_30_40", "res152+r2plus1d_18")
    np.testing.assert_allclose(ra, audio, atol=1e-6)  # the LLP reader takes them unchanged
    np.testing.assert_allclose(rv, visual, atol=1e-5)
    release = np.load(out / "feats" / "res152" / "BjCEufrlXm4.npy")
    mine = read_streams(out / "features" / "BjCEufrlXm4.npz")["res152"]
    np.testing.assert_allclose(cosines(mine, release), 1.0, atol=1e-6)  # the docs' command
    np.testing.assert_allclose(cosines(mine, -release), -1.0, atol=1e-6)
    assert main(["extract", str(real_video), "--out", str(out), "--protocol", "llp",
                 "--weights", str(weights), "--layout", "release", "--no-progress"]) == 0
    assert "1 already done" in capsys.readouterr().out  # the .npz cache is the protocol's


@pytest.fixture(scope="module")
def ave_release(weights, tmp_path_factory) -> tuple[Path, list[Path]]:
    """An AVE folder made by `--layout release` from four 1 s index videos, with
    Annotations.txt (video b has two events: two rows) and split orders."""
    import h5py

    from avloc.data.release import extract_release

    tmp = tmp_path_factory.mktemp("ave")
    videos = [index_video(tmp / f"{v}.mp4", 1.0) for v in ("b", "a", "c", "d")]
    out = tmp / "ave"
    out.mkdir()
    rows = [("Dog", "b"), ("Car", "a"), ("Dog", "c"), ("Car", "d"), ("Cat", "b")]
    (out / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "".join(
        f"{c}&{v}&good&0&1\n" for c, v in rows))
    for split, order in (("train", [0, 1, 4]), ("val", [2]), ("test", [3])):
        with h5py.File(out / f"{split}_order.h5", "w") as handle:
            handle["order"] = np.array(order)
    first, none = extract_release(videos, out, "ave", weights_dir=weights, progress=False,
                                  shard="1/2")
    assert len(first.written) == 2 and none == []  # half the rows: no h5 yet
    second, files = extract_release(videos, out, "ave", weights_dir=weights, progress=False,
                                    shard="2/2")
    assert not second.failed and {f.name for f in files} == {"audio_feature.h5",
                                                             "visual_feature.h5"}
    return out, videos


def test_ave_release_layout_rows_follow_annotations(ave_release):
    from avloc.data.ave import read_h5_features

    out, _ = ave_release
    visual = read_h5_features(out / "visual_feature.h5", 5, ["b", "a", "c", "d", "b#4"],
                              "visual")  # (5, 1, 512): the reader's spatial mean
    npz = {v: read_features(out / "features" / f"{v}.npz")[1] for v in "abcd"}
    np.testing.assert_allclose(visual, [npz[v] for v in "bacdb"], atol=1e-5)
    assert read_streams(out / "features" / "a.npz")["visual"].shape == (1, 7, 7, 512)


def test_release_to_training_to_localizing_a_new_video(ave_release, weights, tmp_path):
    """The README's path: train on a release's features (data.feature_protocol, set by the
    `ave` preset, recorded in the checkpoint), then localize a video of one's own."""
    from avloc.checkpoint import read_checkpoint
    from avloc.config import load_config
    from avloc.train import train

    out, videos = ave_release
    cfg = load_config("ave", ["model.d_x=16", "train.epochs=1", "train.batch_size=2",
                              "train.progress=false"])
    train(cfg, out, tmp_path / "run")
    ckpt = read_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["extractors"] == {"protocol": "ave", "snippet_seconds": 1.0}
    loc = tmp_path / "loc"
    assert main(["localize", str(videos[1]), "--checkpoint", str(tmp_path / "run"),
                 "--weights", str(weights), "--out", str(loc), "--no-progress"]) == 0
    assert (loc / "results.json").is_file()
    assert read_features(loc / "features" / "a.npz")[2]["protocol"] == "ave"


def test_features_of_other_sizes_record_no_protocol():
    from avloc.data import Dataset, Video, protocol_record

    video = Video("v", np.zeros((10, 128), np.float32), np.zeros((10, 2048), np.float32),
                  np.ones(1, np.float32))
    ds = Dataset("ave", "event", ["x"], 1.0, {"train": [video]}, {})
    assert protocol_record("ave", ds) is None  # ResNet-152 visual: not what `ave` makes
    ds.splits["train"][0].visual = np.zeros((10, 512), np.float32)
    assert protocol_record("ave", ds) == {"protocol": "ave", "snippet_seconds": 1.0}


def test_missing_weights_and_wrong_flags_are_one_line_errors(real_video, weights, tmp_path,
                                                             capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        ("--protocol", "ave", "--weights", str(empty)): "vggish.pth",
        ("--protocol", "llp", "--weights", str(empty)): "vggish.pth",
        ("--protocol", "ave", "--audio-backend", "vggish"): "--audio-backend",
        ("--layout", "release"): "--layout release needs --protocol",
    }
    for flags, phrase in cases.items():
        assert main(["extract", str(real_video), "--out", str(out), *flags]) == 1
        err = capsys.readouterr().err.strip()
        assert phrase in err and len(err.splitlines()) == 1, err
        assert not out.exists()  # nothing written
    broken = tmp_path / "broken"
    broken.mkdir()
    state = torch.load(weights / "vggish.pth", weights_only=True)
    state.pop("embeddings.4.bias")
    torch.save(state, broken / "vggish.pth")
    with pytest.raises(AvlocError, match=r"broken/vggish\.pth: not a VGGish .*embeddings\.4"):
        from avloc.extract.protocol_ave import AveExtractor

        AveExtractor(broken)


def test_a_short_silent_video_gets_one_snippet_of_silence(weights, tmp_path):
    from avloc.extract.protocol_llp import LlpExtractor

    video = make_test_video(tmp_path / "v.mp4", 0.5, audio=False, size=(64, 48))
    got = LlpExtractor(weights).extract(video)
    assert (got.audio.shape, got.visual.shape) == ((1, 128), (1, 2560))
    assert np.isfinite(got.audio).all() and np.isfinite(got.visual).all()
    assert got.meta["has_audio"] is False and got.streams["res152"].shape == (8, 2048)
