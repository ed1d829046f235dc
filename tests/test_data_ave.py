"""The AVE reader: the real annotation/split files, feature layouts, labels and bad input."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from avloc.config import DataConfig, LossConfig
from avloc.data import Video, load_dataset
from avloc.data import ave as ave_mod
from avloc.data.ave import load_ave
from avloc.util.errors import AvlocError

REAL_FILES = ("Annotations.txt", "train_order.h5", "val_order.h5", "test_order.h5")
CFG = DataConfig(format="ave", snippet_seconds=1.0)
SMALL_ROWS = [
    ("Church bell", "vidA", 0, 10),
    ("Bark", "vidB", 2, 5),
    ("Church bell", "vidC", 0, 0),  # zero-length, like the real line 27
    ("Bark", "vidA", 3, 4),  # vidA again: a second event, its own sample
    ("Acoustic guitar", "vidD", 6, 9),
    ("Bark", "vidE", 0, 1),
]
SMALL_ORDERS = {"train": [0, 1, 2, 3], "val": [4], "test": [5]}


def _h5(path: Path, array: np.ndarray, key: str = "avadataset") -> None:
    with h5py.File(path, "w") as f:
        f[key] = array


def _features(n: int, t: int, d: int, offset: float = 0.0) -> np.ndarray:
    """(n, t, d) features whose [:, :, 0] holds the row index, to check row mapping."""
    x = np.random.default_rng(n + d).standard_normal((n, t, d)).astype(np.float32)
    x[:, :, 0] = np.arange(n)[:, None] + offset
    return x


def write_small_ave(
    root: Path,
    rows: list[tuple[str, str, float, float]] = SMALL_ROWS,
    orders: dict[str, list[int]] = SMALL_ORDERS,
    header: bool = False,
    visual: np.ndarray | None = None,
) -> Path:
    """A small AVE directory in the released layout: 10 snippets, 128-d audio, 8-d visual."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["Category&VideoID&Quality&StartTime&EndTime"] if header else []
    lines += [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in rows]
    (root / "Annotations.txt").write_text("\n".join(lines) + "\n")
    for split, order in orders.items():
        _h5(root / f"{split}_order.h5", np.array(order, dtype=np.int64), key="order")
    _h5(root / "audio_feature.h5", _features(len(rows), 10, 128))
    _h5(root / "visual_feature.h5", _features(len(rows), 10, 8) if visual is None else visual)
    return root


@pytest.fixture
def real_ave(tmp_path: Path, ave_dir: Path) -> Path:
    """The real Annotations.txt and split files, with features of the real shapes (small D_v)."""
    for name in REAL_FILES:
        (tmp_path / name).symlink_to(ave_dir / name)
    _h5(tmp_path / "audio_feature.h5", _features(4143, 10, 128))  # (N, 10, 128) as released
    _h5(tmp_path / "visual_feature.h5", _features(4143, 10, 8))  # (N, 10, D) pooled, small D
    return tmp_path


def _row_of(video: Video) -> int:
    return int(round(float(video.audio[0, 0])))


# ---------------------------------------------------------------- the real files


def test_real_splits_classes_and_features(real_ave: Path) -> None:
    ds = load_dataset(CFG, real_ave)
    assert (ds.name, ds.task, ds.snippet_seconds) == ("ave", "event", 1.0)
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 3339, "val": 402, "test": 402}
    assert len(ds.classes) == 28 and ds.classes[0] == "Church bell"
    assert ds.feature_dims == (128, 8)
    video = ds.splits["test"][0]
    assert video.audio.dtype == np.float32 and video.visual.dtype == np.float32
    assert video.audio.shape == (10, 128) and video.visual.shape == (10, 8)
    all_vids = [v.vid for s in ds.splits.values() for v in s]
    assert len(set(all_vids)) == 4143 == len(ds.annotations)


def test_real_rows_follow_the_order_files(real_ave: Path, ave_dir: Path) -> None:
    ds = load_ave(CFG, real_ave)
    for split in ("train", "val", "test"):
        with h5py.File(ave_dir / f"{split}_order.h5") as f:
            order = f["order"][()]
        assert [_row_of(v) for v in ds.splits[split]] == order.tolist()
        assert all(v.visual[0, 0] == _row_of(v) for v in ds.splits[split])


def test_real_labels_match_the_released_label_files(real_ave: Path, ave_dir: Path) -> None:
    """Video labels = mil_labels.h5, event snippets = labels_closs.h5, for all 4143 rows."""
    ds = load_ave(CFG, real_ave)
    with h5py.File(ave_dir / "mil_labels.h5") as f:
        mil = f["avadataset"][()]  # (4143, 29), background last
    with h5py.File(ave_dir / "labels_closs.h5") as f:
        closs = f["avadataset"][()]  # (4143, 10)
    for videos in ds.splits.values():
        for v in videos:
            r = _row_of(v)
            np.testing.assert_array_equal(v.labels, mil[r, :28])
            snip = ds.annotations[v.vid].snippet_labels
            np.testing.assert_array_equal(snip > 0, closs[r] > 0)
            assert set(snip[snip > 0].tolist()) <= {int(np.argmax(v.labels)) + 1}


def test_real_duplicate_videos_are_one_sample_per_row(real_ave: Path) -> None:
    ds = load_ave(CFG, real_ave)
    twice = [vid for vid in ds.annotations if "#" in vid]
    assert len(twice) == 91  # 45 videos in several rows (one in three)
    assert "-ccciEuH9FE#196" in twice and "-ccciEuH9FE#911" in twice
    assert ds.annotations["-ccciEuH9FE#196"].segments[0].label == "Male speech, man speaking"


def test_real_background_videos_join_training(real_ave: Path, ave_dir: Path) -> None:
    (real_ave / "audio_feature_noisy.h5").symlink_to(ave_dir / "audio_feature_noisy.h5")
    (real_ave / "labels_noisy.h5").symlink_to(ave_dir / "labels_noisy.h5")
    assert len(load_ave(CFG, real_ave).splits["train"]) == 3339  # visual part missing: skipped
    _h5(real_ave / "visual_feature_noisy.h5", _features(178, 10, 8))
    ds = load_ave(CFG, real_ave)
    background = [v for v in ds.splits["train"] if v.vid.startswith("background_")]
    assert len(ds.splits["train"]) == 3339 + 178 and len(background) == 178
    assert all(not v.labels.any() and v.audio.dtype == np.float32 for v in background)
    assert not ds.annotations[background[0].vid].snippet_labels.any()
    off = dataclasses.replace(CFG, use_background_videos=False)
    assert len(load_ave(off, real_ave).splits["train"]) == 3339


def test_training_sees_no_temporal_information(real_ave: Path, ave_dir: Path, tmp_path: Path):
    """Shuffling every event's start/end changes the ground truth but not one training input."""
    # features and the video-level label; the two recipe targets are set only by
    # avloc.train.recipes, from a teacher's predictions, and no loader fills them
    assert {f.name for f in dataclasses.fields(Video)} == {
        "vid", "audio", "visual", "labels", "modality_labels", "snippet_targets"}
    lines = (ave_dir / "Annotations.txt").read_text().splitlines()
    fields = [line.split("&") for line in lines]
    times = np.random.default_rng(0).permutation([f[3:] for f in fields])
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    text = "\n".join("&".join(f[:3] + list(t)) for f, t in zip(fields, times, strict=True))
    (shuffled / "Annotations.txt").write_text(text + "\n")
    for name in [*REAL_FILES[1:], "audio_feature.h5", "visual_feature.h5"]:
        (shuffled / name).symlink_to(real_ave / name)
    a, b = load_ave(CFG, real_ave), load_ave(CFG, shuffled)
    snips_a = np.stack([x.snippet_labels for x in a.annotations.values()])
    snips_b = np.stack([x.snippet_labels for x in b.annotations.values()])
    assert (snips_a != snips_b).any()
    from avloc.data.batching import collate

    for split in ("train", "val", "test"):
        for va, vb in zip(a.splits[split], b.splits[split], strict=True):
            assert va.vid == vb.vid
            assert va.modality_labels is None and va.snippet_targets is None
            for f in ("audio", "visual", "labels"):
                np.testing.assert_array_equal(getattr(va, f), getattr(vb, f))
        ba, bb = collate(a.splits[split][:30]), collate(b.splits[split][:30])
        for f in dataclasses.fields(ba):
            x, y = getattr(ba, f.name), getattr(bb, f.name)
            assert (x is None and y is None) if x is None else (x == y).all()


# ---------------------------------------------------------------- layouts


def test_small_layout_labels_and_ids(tmp_path: Path) -> None:
    ds = load_ave(CFG, write_small_ave(tmp_path))
    assert ds.classes == ["Church bell", "Bark", "Acoustic guitar"]
    assert [v.vid for v in ds.splits["train"]] == ["vidA#0", "vidB", "vidC", "vidA#3"]
    np.testing.assert_array_equal(ds.annotations["vidB"].snippet_labels,
                                  [0, 0, 2, 2, 2, 0, 0, 0, 0, 0])
    assert not ds.annotations["vidC"].snippet_labels.any()  # zero-length: label, no snippet
    np.testing.assert_array_equal(ds.splits["train"][2].labels, [1, 0, 0])
    assert ds.annotations["vidE"].duration == 10.0


def test_header_line_is_accepted(tmp_path: Path) -> None:
    plain = load_ave(CFG, write_small_ave(tmp_path / "plain"))
    headed = load_ave(CFG, write_small_ave(tmp_path / "headed", header=True))
    assert headed.classes == plain.classes
    assert [v.vid for v in headed.splits["train"]] == [v.vid for v in plain.splits["train"]]


def test_vgg19_pool5_maps_are_averaged_in_chunks(tmp_path: Path, monkeypatch) -> None:
    maps = np.random.default_rng(1).standard_normal((6, 10, 7, 7, 512)).astype(np.float32)
    monkeypatch.setattr(ave_mod, "CHUNK_BYTES", 2 * maps[0].nbytes)  # 3 chunks of 2 rows
    ds = load_ave(CFG, write_small_ave(tmp_path, visual=maps))
    assert ds.feature_dims == (128, 512)
    for split, order in SMALL_ORDERS.items():
        for v, r in zip(ds.splits[split], order, strict=True):
            np.testing.assert_allclose(v.visual, maps[r].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def _labels_h5(ds_rows: list[tuple[str, str, float, float]], classes: list[str]) -> np.ndarray:
    out = np.zeros((len(ds_rows), 10, len(classes) + 1), dtype=np.float32)
    out[:, :, -1] = 1
    for r, (c, _, s, e) in enumerate(ds_rows):
        out[r, int(s):int(e)] = np.eye(len(classes) + 1)[classes.index(c)]
    return out


def test_labels_h5_is_checked_against_event_times(tmp_path: Path) -> None:
    root = write_small_ave(tmp_path)
    labels = _labels_h5(SMALL_ROWS, ["Church bell", "Bark", "Acoustic guitar"])
    _h5(root / "labels.h5", labels)
    load_ave(CFG, root)
    labels[4, 2] = np.eye(4)[0]  # row 4: event class on a background snippet
    _h5(root / "labels.h5", labels)
    with pytest.raises(AvlocError, match=r"labels\.h5: row 4 \(video vidD\) disagrees"):
        load_ave(CFG, root)


# ---------------------------------------------------------------- bad input


def _rewrite(root: Path, name: str, array: np.ndarray, key: str = "avadataset") -> None:
    (root / name).unlink()
    _h5(root / name, array, key)


def _lines(root: Path, number: int, text: str) -> None:
    lines = (root / "Annotations.txt").read_text().splitlines()
    lines[number - 1] = text
    (root / "Annotations.txt").write_text("\n".join(lines) + "\n")


BAD = {
    "missing annotations": (lambda r: (r / "Annotations.txt").unlink(),
                            r"Annotations\.txt: missing file"),
    "missing audio": (lambda r: (r / "audio_feature.h5").unlink(),
                      r"audio_feature\.h5: missing file"),
    "missing order": (lambda r: (r / "val_order.h5").unlink(), r"val_order\.h5: missing file"),
    "four fields": (lambda r: _lines(r, 3, "Bark&vidC&good&0"), r"Annotations\.txt: line 3: "
                    r"expected 5 fields"),
    "bad time": (lambda r: _lines(r, 2, "Bark&vidB&good&two&5"),
                 r"line 2: start/end times 'two'"),
    "blank line inside": (lambda r: _lines(r, 2, ""), r"line 2: expected 5 fields"),
    "ends before start": (lambda r: _lines(r, 5, "Acoustic guitar&vidD&good&6&3"),
                          r"line 5 \(video vidD\): segment \[6, 3\] ends before it starts"),
    "outside the clip": (lambda r: _lines(r, 6, "Bark&vidE&good&4&11"),
                         r"line 6 \(video vidE\): segment \[4, 11\] lies outside"),
    "order out of range": (lambda r: _rewrite(r, "test_order.h5", np.array([6]), "order"),
                           r"test_order\.h5: index 6 \(entry 0\) is out of range for 6"),
    "row in two splits": (lambda r: _rewrite(r, "val_order.h5", np.array([1]), "order"),
                          r"val_order\.h5: row 1 \(video vidB\) is already in the train"),
    "order without dataset": (lambda r: _rewrite(r, "val_order.h5", np.array([4]), "idx"),
                              r"val_order\.h5: no dataset 'order' \(has: idx\)"),
    "features without dataset": (lambda r: _rewrite(r, "audio_feature.h5",
                                                    _features(6, 10, 128), "feats"),
                                 r"audio_feature\.h5: no dataset 'avadataset'"),
    "not hdf5": (lambda r: (r / "visual_feature.h5").write_bytes(b"not hdf5"),
                 r"visual_feature\.h5: not a readable HDF5 file"),
    "wrong ndim": (lambda r: _rewrite(r, "visual_feature.h5", np.zeros((6, 10), np.float32)),
                   r"visual_feature\.h5: dataset 'avadataset' has shape \(6, 10\)"),
    "wrong row count": (lambda r: _rewrite(r, "audio_feature.h5", _features(5, 10, 128)),
                        r"audio_feature\.h5: 5 videos but the annotations/labels have 6"),
    "snippet counts differ": (lambda r: _rewrite(r, "visual_feature.h5", _features(6, 9, 8)),
                              r"visual_feature\.h5: 9 snippets per video but audio_feature"),
    "zero snippets": (lambda r: _rewrite(r, "audio_feature.h5", np.zeros((6, 0, 128))),
                      r"audio_feature\.h5: videos have zero snippets"),
    "nan": (lambda r: _rewrite(r, "visual_feature.h5", _nan(_features(6, 10, 8), 4)),
            r"visual_feature\.h5: row 4 \(video vidD\): visual features contain NaN/Inf"),
    "inf": (lambda r: _rewrite(r, "audio_feature.h5", _nan(_features(6, 10, 128), 0, np.inf)),
            r"audio_feature\.h5: row 0 \(video vidA#0\): audio features contain NaN/Inf"),
    "labels.h5 shape": (lambda r: _h5(r / "labels.h5", np.zeros((6, 10, 28))),
                        r"labels\.h5: shape \(6, 10, 28\), expected \(6, 10, 4\)"),
}


def _nan(x: np.ndarray, row: int, value: float = np.nan) -> np.ndarray:
    x[row, 3, 1] = value
    return x


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_error_naming_file_and_place(tmp_path: Path, case: str) -> None:
    root = write_small_ave(tmp_path / "ave")
    load_ave(CFG, root)  # the untouched layout loads
    damage, message = BAD[case]
    damage(root)
    with pytest.raises(AvlocError, match=message) as err:
        load_dataset(CFG, root)
    assert "\n" not in str(err.value)
    assert re.search(re.escape(str(root)), str(err.value))


def test_background_labels_with_an_event_are_rejected(tmp_path: Path) -> None:
    root = write_small_ave(tmp_path)
    _h5(root / "audio_feature_noisy.h5", _features(3, 10, 128))
    _h5(root / "visual_feature_noisy.h5", _features(3, 10, 8))
    labels = np.zeros((3, 4), dtype=np.float32)
    labels[:, 3] = 1
    _h5(root / "labels_noisy.h5", labels)
    assert len(load_ave(CFG, root).splits["train"]) == 4 + 3
    labels[2, 1] = 1
    _rewrite(root, "labels_noisy.h5", labels)
    with pytest.raises(AvlocError, match=r"labels_noisy\.h5: row 2 has an event class"):
        load_ave(CFG, root)
    _rewrite(root, "visual_feature_noisy.h5", _features(3, 10, 16))
    with pytest.raises(AvlocError, match=r"visual_feature_noisy\.h5: feature dimensions"):
        load_ave(CFG, root)


def test_training_log_note_when_no_video_is_background_only() -> None:
    """AVE-style training without background-only videos is told why mu may not separate."""
    from avloc.data.checks import no_background_note

    small = {"synth_videos": 40, "synth_classes": 4, "synth_length": 10}
    def synthetic(**settings):
        return load_dataset(DataConfig(format="synthetic", **small, **settings), None)

    with_bg = synthetic(synth_background_videos=5)
    without = synthetic(synth_background_videos=0)
    action = synthetic(synth_task="action", synth_background_videos=0)
    assert no_background_note(with_bg) is None
    note = no_background_note(without)
    assert note and f"all {len(without.splits['train'])} training videos hold an event" in note
    assert "loss.pseudo_renormalize=true" in note and hasattr(LossConfig(), "pseudo_renormalize")
    assert no_background_note(action) is None  # action data has no such videos anyway
