"""The ActivityNet 1.2 reader (W-TALC layout), the held-out split, GT export and bad input."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avloc.config import DataConfig
from avloc.data import load_dataset
from avloc.data.anet import (
    ANNOTATION_DIR,
    AUDIO_FILE,
    VISUAL_FILE,
    export_anet_gt,
    load_anet12,
    pack_anet_audio,
    read_anet12_annotations,
)
from avloc.data.checks import holdout
from avloc.util.errors import AvlocError

CFG = DataConfig(format="anet12", snippet_seconds=0.64)
NAMES = ("classlist", "subset", "videoname", "duration", "segments", "labels", "labels_all",
         "url")


def _objects(items: list) -> np.ndarray:
    """A 1-D object array (np.array would make a 2-D one from equal-length lists)."""
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # np.save would append .npy to names without it
        np.save(f, arr, allow_pickle=True)


def write_features(
    root: Path, durations: np.ndarray, lengths: list[int] | None = None,
    audio_lengths: list[int] | None = None, da: int = 4, dv: int = 6,
) -> None:
    """Per-video (T, D) arrays on the 0.64 s grid, [:, 0] = video index (to check order)."""
    lengths = lengths or [max(1, round(d / 0.64)) for d in durations]
    audio_lengths = audio_lengths or lengths
    rng = np.random.default_rng(0)

    def feats(ts: list[int], d: int) -> np.ndarray:
        out = []
        for i, t in enumerate(ts):
            x = rng.standard_normal((t, d)).astype(np.float32)
            x[:, 0] = i
            out.append(x)
        return _objects(out)

    _save(root / VISUAL_FILE, feats(lengths, dv))
    _save(root / AUDIO_FILE, feats(audio_lengths, da))


SMALL = {  # name: (subset, duration, url id, segments, labels)
    "video_1": ("training", 10.0, "AAAAAAAAAA1", [[1.0, 5.0]], ["Archery"]),
    "video_2": ("training", 6.4, "AAAAAAAAAA2", [[0.0, 2.0], [3.0, 6.5]], ["Archery", "Bowling"]),
    "video_3": ("validation", 8.0, "AAAAAAAAAA3", [[2.0, 4.0]], ["Bowling"]),
    "video_4": ("validation", 3.2, "AAAAAAAAAA4", [[1.0, 1.0]], ["Archery"]),  # zero-length
}


def write_small_anet(root: Path, videos: dict = SMALL, subdir: bool = True,
                     classes: tuple[str, ...] = ("Archery", "Bowling")) -> Path:
    """A W-TALC directory (bytes strings, object arrays) with matching features; by
    default 4 videos of 2 classes."""
    adir = root / ANNOTATION_DIR if subdir else root
    adir.mkdir(parents=True, exist_ok=True)
    names = list(videos)
    arrays = {
        "classlist": np.array([c.encode() for c in classes]),
        "subset": np.array([videos[n][0].encode() for n in names]),
        "videoname": np.array([n.encode() for n in names]),
        "duration": np.array([videos[n][1] for n in names]),
        "segments": _objects([videos[n][3] for n in names]),
        "labels": _objects([[x.encode() for x in videos[n][4]] for n in names]),
        "labels_all": _objects([sorted(set(videos[n][4])) for n in names]),
        "url": np.array([f"https://www.youtube.com/watch?v={videos[n][2]}".encode()
                         for n in names]),
    }
    for name, arr in arrays.items():
        _save(adir / f"{name}.npy", arr)
    write_features(root, arrays["duration"])
    return root


@pytest.fixture
def real_anet(tmp_path: Path, anet_dir: Path) -> Path:
    """The real annotations (in the W-TALC subfolder) plus features of every real video."""
    adir = tmp_path / ANNOTATION_DIR
    adir.mkdir()
    for name in NAMES:
        (adir / f"{name}.npy").symlink_to(anet_dir / f"{name}.npy")
    durations = np.load(anet_dir / "duration.npy")
    write_features(tmp_path, durations)
    return tmp_path


def test_training_when_the_held_out_split_lacks_classes(tmp_path: Path, capsys) -> None:
    """600 training videos of 100 classes (6 a class): a 5 % held-out split cannot hold
    every class. Validation scores the classes it holds, says so once, and training goes
    on; the test split (one video of each of 40 classes) is scored the same way."""
    from avloc.cli import main

    classes = tuple(f"class {c:03d}" for c in range(100))
    videos = {f"video_{c}_{k}": ("training", 6.4, f"T{c:03d}x{k}", [[1.0, 4.0]], [classes[c]])
              for c in range(100) for k in range(6)}
    videos |= {f"video_test_{c}": ("validation", 6.4, f"V{c:03d}", [[1.0, 4.0]], [classes[c]])
               for c in range(40)}
    write_small_anet(tmp_path / "data", videos, classes=classes)
    run = tmp_path / "run"
    assert main(["train", "--config", "anet12", "--data", str(tmp_path / "data"),
                 "--out", str(run), "train.epochs=2", "model.d_x=16", "data.val_fraction=0.05",
                 "train.progress=false"]) == 0
    out = capsys.readouterr().out
    assert out.count("validation: 70 classes have no instance in this split") == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["val"]["per_class_AP"]) == 30 and metrics["val"]["subset"] == "val"
    assert len(metrics["test"]["classes_without_instances"]) == 60
    assert metrics["test"]["videos"] == 40 and metrics["test"]["instances"] == 40


# ---------------------------------------------------------------- the real files


def test_real_annotations(anet_dir: Path) -> None:
    classes, videos = read_anet12_annotations(anet_dir)
    assert len(classes) == 100 and classes[0] == "Archery"
    assert len(videos) == 7202
    assert Counter(v.subset for v in videos) == {"training": 4819, "validation": 2383}
    assert sum(len(v.segments) for v in videos if v.subset == "validation") == 3582
    assert (videos[0].vid, videos[0].name) == ("--0edUL8zmA", "video_4")
    assert videos[0].segments[0].label == "Dodgeball"
    assert len({v.vid for v in videos}) == 7202


def test_real_dataset(real_anet: Path, anet_dir: Path) -> None:
    ds = load_dataset(CFG, real_anet)
    assert (ds.name, ds.task, ds.snippet_seconds, ds.num_classes) == ("anet12", "action", 0.64, 100)
    sizes = {s: len(v) for s, v in ds.splits.items()}
    assert sizes["train"] + sizes["val"] == 4819 and sizes["test"] == 2383
    assert 470 <= sizes["val"] <= 495  # about val_fraction = 0.1 of each class
    assert sum(len(ds.annotations[v.vid].segments) for v in ds.splits["test"]) == 3582
    labels_npy = np.load(anet_dir / "labels.npy", allow_pickle=True, encoding="bytes")
    for v in ds.splits["test"][:50] + ds.splits["val"][:50]:
        index = int(v.audio[0, 0])
        names = {ds.classes[c] for c in np.flatnonzero(v.labels)}
        assert names == {x.decode() for x in labels_npy[index]}
        assert v.audio.dtype == np.float32 and v.visual.shape[1] == 6
        assert ds.annotations[v.vid].snippet_labels is None
    assert max(v.length for s in ds.splits.values() for v in s) == 373  # 238.96 s / 0.64


def test_holdout_is_seeded_and_stratified(real_anet: Path) -> None:
    ds = load_anet12(CFG, real_anet)
    training = sorted(ds.splits["train"] + ds.splits["val"], key=lambda v: int(v.audio[0, 0]))
    labels = [v.labels for v in training]  # in the order of the annotation files
    kept, held = holdout(labels, 0.1, seed=0)
    assert {training[i].vid for i in held} == {v.vid for v in ds.splits["val"]}
    assert holdout(labels, 0.1, seed=0) == (kept, held)
    assert holdout(labels, 0.1, seed=1)[1] != held
    assert sorted(kept + held) == list(range(4819))
    per_class = Counter(int(np.flatnonzero(labels[i])[0]) for i in held)
    group = Counter(int(np.flatnonzero(x)[0]) for x in labels)
    assert all(per_class[c] == round(0.1 * n) for c, n in group.items())  # stratified
    assert holdout(labels, 0.0, seed=0) == (list(range(4819)), [])
    assert {int(np.flatnonzero(labels[i])[0]) for i in held} == set(range(100))


def test_holdout_covers_every_class_with_two_videos_where_the_fraction_allows() -> None:
    eye = np.eye(100, dtype=np.float32)
    six_each = [eye[c] for c in range(100) for _ in range(6)]  # 600 videos of 100 classes
    kept, held = holdout(six_each, 0.1, seed=3)
    assert len(held) == 100 and {int(np.argmax(six_each[i])) for i in held} == set(range(100))
    # class 2 only ever second: it has no group of its own, yet is held out once, and the
    # video taking it is not the last training video of class 2
    both = np.zeros(3, dtype=np.float32)
    both[[0, 2]] = 1
    labels = [eye[0, :3]] * 20 + [eye[1, :3]] * 20 + [both, both]
    kept, held = holdout(labels, 0.1, seed=0)
    assert len(held) == 4 and sum(labels[i][2] for i in held) == 1
    assert sum(labels[i][2] for i in kept) == 1
    # a budget smaller than the class count covers as many classes as it holds videos
    held = holdout(six_each, 0.05, 0)[1]  # shares round to 0; 30 of 600 overall
    assert len(held) == 30 and len({int(np.argmax(six_each[i])) for i in held}) == 30
    assert len(holdout(six_each, 0.0008, seed=0)[1]) == 0


def test_real_ground_truth_export(real_anet: Path, anet_dir: Path, tmp_path: Path) -> None:
    counts = export_anet_gt(anet_dir, tmp_path / "gt" / "anet12_gt.json")
    assert counts == {"videos": 7202, "training": 4819, "training_instances": 7151,
                      "validation": 2383, "validation_instances": 3582}
    doc = json.loads((tmp_path / "gt" / "anet12_gt.json").read_text())
    assert {"version", "taxonomy", "database"} <= set(doc) and len(doc["taxonomy"]) == 100
    entry = doc["database"]["--0edUL8zmA"]
    assert entry == {"subset": "training", "duration": 92.18,
                     "url": "https://www.youtube.com/watch?v=--0edUL8zmA",
                     "annotations": [{"segment": [5.46484, 86.71838], "label": "Dodgeball"}]}
    names = {n["nodeName"] for n in doc["taxonomy"]}
    assert all(a["label"] in names for e in doc["database"].values() for a in e["annotations"])
    # the same file from a loaded Dataset: val goes back to 'training'
    ds = load_anet12(CFG, real_anet)
    assert export_anet_gt(ds, tmp_path / "from_ds.json") == counts
    assert json.loads((tmp_path / "from_ds.json").read_text())["database"] == doc["database"]


# ---------------------------------------------------------------- layouts and tolerances


def test_small_layout_in_subfolder_and_flat(tmp_path: Path) -> None:
    a = load_anet12(CFG, write_small_anet(tmp_path / "sub"))
    b = load_anet12(CFG, write_small_anet(tmp_path / "flat", subdir=False))
    assert [v.vid for v in a.splits["test"]] == [v.vid for v in b.splits["test"]] == [
        "AAAAAAAAAA3", "AAAAAAAAAA4"]
    assert a.classes == ["Archery", "Bowling"]
    two = next(v for s in a.splits.values() for v in s if v.vid == "AAAAAAAAAA2")
    np.testing.assert_array_equal(two.labels, [1, 1])
    assert a.annotations["AAAAAAAAAA4"].segments[0].end == 1.0  # zero-length instance kept


def test_videoname_is_the_id_without_url(tmp_path: Path) -> None:
    root = write_small_anet(tmp_path)
    (root / ANNOTATION_DIR / "url.npy").unlink()
    assert "video_3" in load_anet12(CFG, root).annotations


def test_audio_one_snippet_off_is_trimmed_two_is_an_error(tmp_path: Path) -> None:
    root = write_small_anet(tmp_path)
    lengths = [16, 10, 12, 5]  # 10 s, 6.4 s, 8 s, 3.2 s at 0.64 s
    write_features(root, np.zeros(4), lengths=lengths, audio_lengths=[15, 10, 13, 5])
    ds = load_anet12(CFG, root)
    lens = {v.vid: (v.audio.shape[0], v.visual.shape[0]) for s in ds.splits.values() for v in s}
    assert lens["AAAAAAAAAA1"] == (15, 15) and lens["AAAAAAAAAA3"] == (12, 12)
    write_features(root, np.zeros(4), lengths=lengths, audio_lengths=[16, 10, 14, 5])
    with pytest.raises(AvlocError, match=r"VGGish-Features\.npy: video video_3: audio has 14 "
                                         r"snippets but visual has 12"):
        load_anet12(CFG, root)


def test_length_against_duration_tolerance(tmp_path: Path) -> None:
    root = write_small_anet(tmp_path)
    # video_1: 10 s / 0.64 = 15.6 -> 15..16 by rounding, 14..17 with the one-snippet tolerance
    write_features(root, np.zeros(4), lengths=[14, 10, 12, 5])
    load_anet12(CFG, root)
    write_features(root, np.zeros(4), lengths=[17, 10, 12, 5])
    load_anet12(CFG, root)
    write_features(root, np.zeros(4), lengths=[18, 10, 12, 5])
    with pytest.raises(AvlocError, match=r"JOINTFeatures\.npy: video video_1: 18 snippets but "
                                         r"duration 10 s / 0.64 s = 15.62 snippets \(allowed "
                                         r"14\.\.17; setting data.length_tolerance=1\)"):
        load_anet12(CFG, root)
    load_anet12(dataclasses.replace(CFG, length_tolerance=2), root)


# ---------------------------------------------------------------- bad input


def _edit(root: Path, name: str, fn) -> None:
    path = root / ANNOTATION_DIR / f"{name}.npy"
    arr = np.load(path, allow_pickle=True, encoding="bytes")
    arr = fn(arr)
    path.unlink()
    _save(path, arr)


def _set(i: int, value):
    def fn(arr):
        arr[i] = value
        return arr
    return fn


def _feature_entry(root: Path, filename: str, i: int, value) -> None:
    arr = np.load(root / filename, allow_pickle=True)
    arr[i] = value
    _save(root / filename, arr)


BAD = {
    "missing annotation": (lambda r: (r / ANNOTATION_DIR / "segments.npy").unlink(),
                           r"segments\.npy: missing file"),
    "missing visual": (lambda r: (r / VISUAL_FILE).unlink(), r"JOINTFeatures\.npy: missing file"),
    "missing audio": (lambda r: (r / AUDIO_FILE).unlink(), r"VGGish-Features\.npy: missing file"),
    "corrupt npy": (lambda r: (r / AUDIO_FILE).write_bytes(b"garbage"),
                    r"VGGish-Features\.npy: cannot read as \.npy"),
    "too few feature entries": (
        lambda r: _save(r / VISUAL_FILE, _objects([np.zeros((16, 6), np.float32)] * 3)),
        r"JOINTFeatures\.npy: 3 entries but videoname\.npy lists 4 videos"),
    "array lengths differ": (lambda r: _edit(r, "duration", lambda a: a[:3]),
                             r"duration\.npy: shape \(3,\), expected \(4,\)"),
    "label not in classlist": (lambda r: _edit(r, "labels", _set(2, [b"Curling"])),
                               r"video video_3: label 'Curling' is not in the class list"),
    "segments and labels differ": (lambda r: _edit(r, "labels", _set(0, [b"Archery"] * 2)),
                                   r"video video_1: 1 segments but 2 labels"),
    "ends before start": (lambda r: _edit(r, "segments", _set(2, [[4.0, 2.0]])),
                          r"video video_3: segment \[4, 2\] ends before it starts"),
    "outside the video": (lambda r: _edit(r, "segments", _set(2, [[2.0, 8.7]])),
                          r"video video_3: segment \[2, 8.7\] lies outside the video "
                          r"\(duration 8 s; ends may pass it by 0.64 s\)"),
    "negative start": (lambda r: _edit(r, "segments", _set(2, [[-1.0, 2.0]])),
                       r"video video_3: segment \[-1, 2\] lies outside"),
    "not a pair": (lambda r: _edit(r, "segments", _set(2, [[1.0, 2.0, 3.0]])),
                   r"video video_3: segment .* is not a \[start, end\] pair"),
    "duplicate videoname": (lambda r: _edit(r, "videoname", _set(1, b"video_1")),
                            r"videoname\.npy: duplicate video id 'video_1'"),
    "duplicate url id": (lambda r: _edit(r, "url", lambda a: a[[0, 0, 2, 3]]),
                         r"url\.npy: duplicate video id 'AAAAAAAAAA1'"),
    "unknown subset": (lambda r: _edit(r, "subset", _set(3, b"testing")),
                       r"subset\.npy: video video_4: subset 'testing'"),
    "bad duration": (lambda r: _edit(r, "duration", _set(1, -3.0)),
                     r"duration\.npy: video video_2: duration -3.0 must be a positive"),
    "nan feature": (lambda r: _feature_entry(r, VISUAL_FILE, 1, np.full((10, 6), np.nan)),
                    r"JOINTFeatures\.npy: video video_2: visual features contain NaN/Inf"),
    "zero snippets": (lambda r: _feature_entry(r, AUDIO_FILE, 3, np.zeros((0, 4))),
                      r"VGGish-Features\.npy: video video_4: video has zero snippets"),
    "3-d features": (lambda r: _feature_entry(r, AUDIO_FILE, 0, np.zeros((16, 4, 2))),
                     r"VGGish-Features\.npy: video video_1: audio features have shape "
                     r"\(16, 4, 2\), expected \(T, D\)"),
    "dims differ": (lambda r: _feature_entry(r, VISUAL_FILE, 2, np.zeros((12, 7))),
                    r"video video_3: feature dimensions \(audio, visual\) = \(4, 7\) differ"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_error_naming_file_and_video(tmp_path: Path, case: str) -> None:
    root = write_small_anet(tmp_path / "anet")
    load_anet12(CFG, root)
    damage, message = BAD[case]
    damage(root)
    with pytest.raises(AvlocError, match=message) as err:
        load_dataset(CFG, root)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


def test_export_is_atomic(tmp_path: Path, monkeypatch) -> None:
    root = write_small_anet(tmp_path / "anet")
    out = tmp_path / "gt.json"
    out.write_text("old")
    monkeypatch.setattr(json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(AvlocError, match=r"gt\.json: cannot write \(disk full\)"):
        export_anet_gt(root, out)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["anet", "gt.json"]


def test_pack_audio_from_extracted_npz(tmp_path: Path) -> None:
    root = write_small_anet(tmp_path / "anet")
    before = load_anet12(CFG, root)
    audio = np.load(root / AUDIO_FILE, allow_pickle=True)
    (root / AUDIO_FILE).unlink()
    npz = tmp_path / "extracted"
    npz.mkdir()
    stems = ["AAAAAAAAAA1", "v_AAAAAAAAAA2", "video_3", "AAAAAAAAAA4"]  # any usual naming
    for stem, a in zip(stems, audio, strict=True):
        np.savez(npz / f"{stem}.npz", audio=a, visual=np.zeros((len(a), 2)))
    assert pack_anet_audio(root, npz) == root / AUDIO_FILE
    after = load_anet12(CFG, root)
    for split in ("train", "val", "test"):
        for a, b in zip(before.splits[split], after.splits[split], strict=True):
            np.testing.assert_array_equal(a.audio, b.audio)
    (npz / "video_3.npz").unlink()
    with pytest.raises(AvlocError, match=r"extracted: no features for video video_3"):
        pack_anet_audio(root, npz)
