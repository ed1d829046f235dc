"""The generic layout (.npz per video + ActivityNet JSON) and conversion into it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_data_anet import write_small_anet
from test_data_ave import write_small_ave

from avloc.config import DataConfig, load_config
from avloc.data import Annotation, Dataset, Segment, Video, load_dataset
from avloc.data import convert as convert_mod
from avloc.data.anet import load_anet12
from avloc.data.ave import load_ave
from avloc.data.convert import convert_to_generic
from avloc.data.generic import load_generic
from avloc.util.errors import AvlocError

CFG = DataConfig(format="generic", snippet_seconds=1.0, val_fraction=0.25)

DATABASE = {  # vid: (subset, duration, [(start, end, label)])
    "run1": ("training", 12.0, [(1.0, 5.0, "run"), (6.0, 9.5, "jump")]),
    "run2": ("training", 8.0, [(0.0, 8.0, "run")]),
    "jump1": ("training", 10.0, [(2.0, 3.0, "jump")]),
    "quiet": ("training", 6.0, []),  # background only
    "val1": ("validation", 9.0, [(3.0, 7.0, "jump")]),
    "test1": ("testing", 7.0, [(0.0, 2.0, "run"), (1.0, 3.0, "jump")]),  # overlapping classes
}


def _doc(database: dict = DATABASE, **top: Any) -> dict[str, Any]:
    return {"version": "test", **top, "database": {
        vid: {"subset": sub, "duration": dur,
              "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in segs]}
        for vid, (sub, dur, segs) in database.items()}}


def write_generic(
    root: Path, doc: dict[str, Any] | None = None, seconds: float = 1.0, subdir: str = "features"
) -> Path:
    """Features of round(duration / seconds) snippets, float64 on disk, [:, 0] = video order."""
    doc = doc or _doc()
    (root / subdir).mkdir(parents=True, exist_ok=True)
    (root / "annotations.json").write_text(json.dumps(doc))
    rng = np.random.default_rng(0)
    for i, (vid, entry) in enumerate(doc["database"].items()):
        t = round(entry["duration"] / seconds)
        audio, visual = rng.standard_normal((t, 5)), rng.standard_normal((t, 3))
        audio[:, 0] = visual[:, 0] = i
        np.savez(root / subdir / f"{vid}.npz", audio=audio, visual=visual)
    return root


def _all(ds: Dataset) -> dict[str, Video]:
    return {v.vid: v for videos in ds.splits.values() for v in videos}


# ---------------------------------------------------------------- loading


def test_generic_layout(tmp_path: Path) -> None:
    ds = load_dataset(CFG, write_generic(tmp_path))
    assert (ds.name, ds.task, ds.snippet_seconds) == ("generic", "action", 1.0)
    assert ds.classes == ["jump", "run"]  # sorted label names
    assert [v.vid for v in ds.splits["val"]] == ["val1"]
    assert [v.vid for v in ds.splits["test"]] == ["test1"]
    assert [v.vid for v in ds.splits["train"]] == ["run1", "run2", "jump1", "quiet"]
    videos = _all(ds)
    np.testing.assert_array_equal(videos["run1"].labels, [1, 1])
    np.testing.assert_array_equal(videos["quiet"].labels, [0, 0])
    assert videos["run1"].audio.dtype == np.float32 and videos["run1"].audio.shape == (12, 5)
    assert ds.annotations["test1"].segments[1] == Segment(1.0, 3.0, "jump")
    assert ds.annotations["test1"].snippet_labels is None  # action: overlaps allowed


def test_annotation_path_setting_and_ignored_extra_files(tmp_path: Path) -> None:
    root = write_generic(tmp_path / "data")
    (root / "annotations.json").rename(tmp_path / "elsewhere.json")
    np.savez(root / "features" / "unlisted.npz", audio=np.zeros((3, 5)), visual=np.zeros((3, 3)))
    cfg = dataclasses.replace(CFG, annotations=str(tmp_path / "elsewhere.json"))
    assert "unlisted" not in _all(load_generic(cfg, root))
    with pytest.raises(AvlocError, match=r"annotations\.json: missing file"):
        load_generic(CFG, root)


def test_json_snippet_seconds_classes_and_task(tmp_path: Path) -> None:
    database = {"a": ("training", 5.0, [(0.0, 2.0, "x")]), "b": ("validation", 5.0,
                                                             [(2.5, 5.0, "y")])}
    doc = _doc(database, snippet_seconds=0.5, classes=["y", "x", "z"], task="event")
    ds = load_generic(CFG, write_generic(tmp_path, doc, seconds=0.5))
    assert (ds.snippet_seconds, ds.classes, ds.task) == (0.5, ["y", "x", "z"], "event")
    assert _all(ds)["a"].length == 10
    np.testing.assert_array_equal(ds.annotations["a"].snippet_labels, [2] * 4 + [0] * 6)
    np.testing.assert_array_equal(ds.annotations["b"].snippet_labels, [0] * 5 + [1] * 5)


def test_event_task_needs_one_class_per_snippet(tmp_path: Path) -> None:
    root = write_generic(tmp_path, _doc(task="event"))
    with pytest.raises(AvlocError, match=r"video test1: snippet 1 lies in segments of two"):
        load_generic(CFG, root)


def test_without_validation_subset_a_seeded_part_of_training_is_held_out(tmp_path: Path) -> None:
    database = {f"v{i}": ("training", 4.0, [(0.0, 2.0, "ab"[i % 2])]) for i in range(8)}
    root = write_generic(tmp_path, _doc(database))
    ds = load_generic(CFG, root)
    assert (len(ds.splits["train"]), len(ds.splits["val"]), len(ds.splits["test"])) == (6, 2, 0)
    assert {int(np.argmax(v.labels)) for v in ds.splits["val"]} == {0, 1}  # one per class
    again = load_generic(CFG, root)
    assert [v.vid for v in again.splits["val"]] == [v.vid for v in ds.splits["val"]]


def test_audio_one_snippet_longer_is_trimmed(tmp_path: Path) -> None:
    root = write_generic(tmp_path)
    np.savez(root / "features" / "run2.npz", audio=np.zeros((9, 5)), visual=np.zeros((8, 3)))
    assert _all(load_generic(CFG, root))["run2"].audio.shape == (8, 5)


def test_npz_files_outside_features_folder_get_a_hint(tmp_path: Path) -> None:
    root = write_generic(tmp_path, subdir=".")
    with pytest.raises(AvlocError, match=r"features: missing folder .* move them into features/"):
        load_generic(CFG, root)


def test_features_read_on_another_grid_name_the_real_cause(tmp_path: Path) -> None:
    """Features extracted at 1 s read with the anet12 preset's 0.64 s: the error names the
    .npz meta's snippet length and the fix, not data.length_tolerance."""
    from avloc.extract.store import write_features

    database = {"a": ("training", 10.0, [(0.0, 4.0, "x")])}
    root = write_generic(tmp_path, _doc(database))
    meta = {"snippet_seconds": 1.0, "audio_backend": "rms", "visual_backend": "meanrgb"}
    write_features(root / "features" / "a.npz", np.ones((10, 5)), np.ones((10, 3)), meta)
    anet = dataclasses.replace(CFG, snippet_seconds=0.64)
    with pytest.raises(AvlocError, match=r"a\.npz: video a: extracted with 1 s snippets \(its "
                       r"\.npz meta\), but the data is read with 0\.64 s \(setting data\."
                       r"snippet_seconds.*\); set data\.snippet_seconds=1, or re-extract with "
                       r"--snippet-seconds 0\.64") as err:
        load_generic(anet, root)
    assert "length_tolerance" not in str(err.value)
    _json(root, lambda d: d.update(snippet_seconds=0.5))
    with pytest.raises(AvlocError, match=r"read with 0\.5 s \(the annotation JSON's snippet_"
                       r"seconds\); set \"snippet_seconds\": 1 in .*annotations\.json"):
        load_generic(CFG, root)
    _json(root, lambda d: d.update(snippet_seconds=1.0))
    assert load_generic(anet, root).snippet_seconds == 1.0  # the JSON wins over the setting


def test_a_generic_folder_read_as_another_layout_names_the_setting(tmp_path: Path,
                                                                    capsys) -> None:
    """`avloc train` reads AVE unless told (--config ave, said in --help): a generic folder
    gets the setting to add, not "Annotations.txt: missing file"."""
    from avloc.cli import build_parser, main

    root = write_generic(tmp_path / "mine")
    for fmt in ("ave", "anet12", "thumos14_wtalc"):
        with pytest.raises(AvlocError, match=rf"mine: holds the generic layout \(annotations\."
                                             rf"json\) but setting data\.format is {fmt} .* add "
                                             r"data\.format=generic"):
            load_dataset(DataConfig(format=fmt), root)
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run")]) == 1
    assert "add data.format=generic" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert "(default ave:" in " ".join(train.format_help().split())
    # a folder that is unclear keeps the reader's own message
    (root / "annotations.json").unlink()
    with pytest.raises(AvlocError, match=r"Annotations\.txt: missing file"):
        load_dataset(DataConfig(format="ave"), root)


def test_training_says_when_no_validation_video_is_held_out(tmp_path: Path, capsys) -> None:
    """4 training videos x data.val_fraction 0.1 rounds to 0: said in the log, not found
    later as a metrics.json without 'val'."""
    from avloc.cli import main

    database = {f"v{i}": ("training", 4.0, [(0.0, 2.0, "ab"[i % 2])]) for i in range(4)}
    root = write_generic(tmp_path / "four", _doc(database))
    args = ["data.format=generic", "model.d_x=8", "train.epochs=1", "train.progress=false"]
    assert main(["train", "--config", "demo", "--data", str(root), "--out", str(tmp_path / "run"),
                 *args]) == 0
    out = capsys.readouterr().out
    assert ("avloc: no validation videos (data.val_fraction=0.1 of 4 training videos with known "
            "segments holds out none; raise it or give 'validation' videos): no model "
            "selection, best.pt is the last epoch") in out
    assert "val" not in json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert main(["train", "--config", "demo", "--data", str(root), "--out",
                 str(tmp_path / "run2"), *args, "data.val_fraction=0.25"]) == 0
    assert "no validation videos" not in capsys.readouterr().out


# ---------------------------------------------------------------- bad input


def _json(root: Path, fn) -> None:
    path = root / "annotations.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _entry(vid: str, **changes: Any):
    return lambda doc: doc["database"][vid].update(changes)


def _npz(root: Path, vid: str, **arrays: Any) -> None:
    np.savez(root / "features" / f"{vid}.npz", **arrays)


BAD = {
    "duplicate video id": (
        lambda r: (r / "annotations.json").write_text(
            (r / "annotations.json").read_text().replace('"run2"', '"run1"')),
        r"annotations\.json: key 'run1' appears twice"),
    "not json": (lambda r: (r / "annotations.json").write_text("{\"database\": {"),
                 r"annotations\.json: not valid JSON \(.* line 1"),
    "no database": (lambda r: _json(r, lambda d: d.pop("database")),
                    r"annotations\.json: expected a JSON object with a 'database'"),
    "missing features": (lambda r: (r / "features" / "jump1.npz").unlink(),
                         r"features/jump1\.npz: missing file \(features of video jump1\)"),
    "npz without visual": (lambda r: _npz(r, "val1", audio=np.zeros((9, 5))),
                           r"val1\.npz: video val1: no array named 'visual'"),
    "corrupt npz": (lambda r: (r / "features" / "val1.npz").write_bytes(b"PK\x03\x04junk"),
                    r"val1\.npz: video val1: cannot read as \.npz"),
    "pickled npz": (lambda r: _npz(r, "val1", audio=np.array([None] * 9),
                                   visual=np.zeros((9, 3))),
                    r"val1\.npz: video val1: cannot read as \.npz"),
    "label not in classes": (lambda r: _json(r, lambda d: d.update(classes=["run"])),
                             r"video run1: annotation 1: label 'jump' is not in the class list"),
    "ends before start": (lambda r: _json(r, _entry("run2", annotations=[
        {"segment": [5, 2], "label": "run"}])), r"video run2: annotation 0: segment \[5, 2\] "
                                                r"ends before it starts"),
    "outside the video": (lambda r: _json(r, _entry("run2", annotations=[
        {"segment": [5, 9.5], "label": "run"}])), r"video run2: annotation 0: segment \[5, 9.5\] "
                                                  r"lies outside the video"),
    "segment not numeric": (lambda r: _json(r, _entry("run2", annotations=[
        {"segment": ["1", 2], "label": "run"}])), r"video run2: annotation 0: segment .* is not "
                                                  r"numeric"),
    "unknown subset": (lambda r: _json(r, _entry("val1", subset="dev")),
                       r"video val1: subset 'dev': expected training, validation or testing"),
    "bad duration": (lambda r: _json(r, _entry("val1", duration="long")),
                     r"video val1: duration 'long' is not a number"),
    "length vs duration": (lambda r: _json(r, _entry("val1", duration=20.0)),
                           r"val1\.npz: video val1: 9 snippets but duration 20 s"),
    "nan": (lambda r: _npz(r, "run2", audio=np.full((8, 5), np.nan), visual=np.zeros((8, 3))),
            r"run2\.npz: video run2: audio features contain NaN/Inf"),
    "zero snippets": (lambda r: _npz(r, "run2", audio=np.zeros((0, 5)), visual=np.zeros((0, 3))),
                      r"run2\.npz: video run2: video has zero snippets"),
    "audio and visual differ": (
        lambda r: _npz(r, "run2", audio=np.zeros((10, 5)), visual=np.zeros((8, 3))),
        r"run2\.npz: video run2: audio has 10 snippets but visual has 8"),
    "dims differ": (lambda r: _npz(r, "run2", audio=np.zeros((8, 6)), visual=np.zeros((8, 3))),
                    r"run2\.npz: video run2: feature dimensions \(audio, visual\) = \(6, 3\)"),
    "path in video id": (lambda r: _json(r, lambda d: d["database"].update(
        {"../x": d["database"]["run2"]})), r"video \.\./x: video id '\.\./x' cannot be used"),
    "unknown task": (lambda r: _json(r, lambda d: d.update(task="detection")),
                     r"annotations\.json: task 'detection'"),
    "bad snippet seconds": (lambda r: _json(r, lambda d: d.update(snippet_seconds=0)),
                            r"annotations\.json: snippet_seconds 0 must be a positive"),
    "neither segments nor labels": (
        lambda r: _json(r, lambda d: d["database"]["quiet"].pop("annotations")),
        r"video quiet: neither 'annotations' \(segments\) nor 'labels' .*'labels': \[\]"),
    "labels not a list": (lambda r: _json(r, _entry("quiet", labels="run")),
                          r"video quiet: 'labels' must be a list of class names"),
    "label of no class": (lambda r: _json(r, lambda d: (d.update(classes=["jump", "run"]),
                                                        _entry("quiet", labels=["swim"])(d))),
                          r"video quiet: label 'swim' is not in the class list"),
    "labels twice": (lambda r: _json(r, _entry("quiet", labels=["run", "run"])),
                     r"video quiet: 'labels' lists a class twice"),
    "labels differ from segments": (
        lambda r: _json(r, _entry("run2", labels=["jump"])),
        r"video run2: 'labels' \['jump'\] differ from its segments' labels \['run'\]"),
    "weak label in testing": (
        lambda r: _json(r, lambda d: d["database"]["test1"].update(
            labels=["run"], annotations=None) or d["database"]["test1"].pop("annotations")),
        r"video test1: subset testing is scored on segments, but the video has only 'labels'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_error_naming_file_and_video(tmp_path: Path, case: str) -> None:
    root = write_generic(tmp_path / "gen")
    load_generic(CFG, root)
    damage, message = BAD[case]
    damage(root)
    with pytest.raises(AvlocError, match=message) as err:
        load_dataset(CFG, root)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


# ---------------------------------------------------------------- weak labels


def _weak_doc() -> dict[str, Any]:
    """run1 and jump1 as video-level labels only (no segments); a class only tags name."""
    doc = _doc({k: v for k, v in DATABASE.items() if k != "val1"})
    for vid, labels in (("run1", ["run", "swim"]), ("jump1", ["jump"])):
        doc["database"][vid].pop("annotations")
        doc["database"][vid]["labels"] = labels
    doc["database"]["quiet"] = {"subset": "training", "duration": 6.0, "labels": []}
    return doc


def test_training_videos_with_labels_only(tmp_path: Path) -> None:
    """Weak labels train (video-level multi-hot), are never held out for validation and
    are refused by scoring; `labels: []` is a known background-only video."""
    cfg = dataclasses.replace(CFG, val_fraction=0.5)
    ds = load_generic(cfg, write_generic(tmp_path, _weak_doc()))
    assert ds.classes == ["jump", "run", "swim"]  # tags-only classes count too
    videos = _all(ds)
    np.testing.assert_array_equal(videos["run1"].labels, [0, 1, 1])
    np.testing.assert_array_equal(videos["quiet"].labels, [0, 0, 0])
    assert ds.annotations["run1"].weak and ds.annotations["run1"].segments == []
    assert not ds.annotations["quiet"].weak and not ds.annotations["run2"].weak
    held = {v.vid for v in ds.splits["val"]}
    assert held and held <= {"run2", "quiet"}  # only videos whose segments are known
    assert {"run1", "jump1"} <= {v.vid for v in ds.splits["train"]}

    from avloc.model import build_model
    from avloc.scoring.evaluate import evaluate_split

    full = load_config("demo", ["data.format=generic", "model.d_x=8"])
    model = build_model(full.model, *ds.feature_dims, ds.num_classes)
    with pytest.raises(AvlocError, match=r"split train: 2 of its \d+ videos have video-level "
                                         r"labels only \(e\.g\. run1\); scoring needs"):
        evaluate_split(model, ds, "train", full)
    evaluate_split(model, ds, "val", full)  # the annotated ones score


def test_weak_labels_only_data_holds_out_nothing(tmp_path: Path) -> None:
    database = {f"v{i}": ("training", 4.0, []) for i in range(6)}
    doc = _doc(database)
    for i, entry in enumerate(doc["database"].values()):
        entry.pop("annotations")
        entry["labels"] = ["ab"[i % 2]]
    ds = load_generic(CFG, write_generic(tmp_path, doc))
    assert (len(ds.splits["train"]), len(ds.splits["val"])) == (6, 0)


def test_weak_labels_event_task_and_conversion_round_trip(tmp_path: Path) -> None:
    doc = _weak_doc()
    doc["database"].pop("test1")  # overlapping classes: not event data
    doc["task"] = "event"
    ds = load_generic(CFG, write_generic(tmp_path / "a", doc))
    assert ds.annotations["run1"].snippet_labels is None  # unknown, not background
    assert ds.annotations["run2"].snippet_labels is not None
    convert_to_generic(ds, tmp_path / "b")
    written = json.loads((tmp_path / "b" / "annotations.json").read_text())["database"]
    assert written["run1"]["labels"] == ["run", "swim"] and "annotations" not in written["run1"]
    again = load_generic(CFG, tmp_path / "b")
    _same(ds, again)
    assert again.annotations["run1"].weak


# ---------------------------------------------------------------- conversion


def _same(a: Dataset, b: Dataset) -> None:
    """Same classes, splits, features, video labels and ground truth."""
    assert (a.classes, a.task, a.snippet_seconds) == (b.classes, b.task, b.snippet_seconds)
    for split in ("train", "val", "test"):
        assert [v.vid for v in a.splits[split]] == [v.vid for v in b.splits[split]]
        for va, vb in zip(a.splits[split], b.splits[split], strict=True):
            for f in ("audio", "visual", "labels"):
                np.testing.assert_array_equal(getattr(va, f), getattr(vb, f))
            ga, gb = a.annotations[va.vid], b.annotations[vb.vid]
            assert (ga.duration, ga.segments) == (gb.duration, gb.segments)
            if ga.snippet_labels is None:
                assert gb.snippet_labels is None
            else:
                np.testing.assert_array_equal(ga.snippet_labels, gb.snippet_labels)


def test_convert_ave_round_trip(tmp_path: Path) -> None:
    ave = load_ave(DataConfig(format="ave"), write_small_ave(tmp_path / "ave"))
    counts = convert_to_generic(ave, tmp_path / "out")
    assert counts == {"training": 4, "validation": 1, "testing": 1, "videos": 6}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["annotations.json",
                                                                     "features"]
    _same(ave, load_generic(DataConfig(format="generic"), tmp_path / "out"))


def test_convert_anet_round_trip(tmp_path: Path) -> None:
    anet = load_anet12(DataConfig(format="anet12", snippet_seconds=0.64, val_fraction=0.5),
                       write_small_anet(tmp_path / "anet"))
    assert len(anet.splits["val"]) == 1
    convert_to_generic(anet, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert doc["snippet_seconds"] == 0.64 and doc["database"]["AAAAAAAAAA3"]["subset"] == "testing"
    _same(anet, load_dataset(DataConfig(format="generic"), tmp_path / "out"))


def _tiny_dataset(labels: list[float]) -> Dataset:
    x = np.zeros((4, 2), dtype=np.float32)
    video = Video("v1", x, x, np.array(labels, dtype=np.float32))
    gt = Annotation("v1", 4.0, [Segment(0.0, 2.0, "a")])
    return Dataset("tiny", "action", ["a", "b"], 1.0, {"train": [video], "val": [], "test": []},
                   {"v1": gt})


def test_convert_refuses_labels_it_cannot_store_and_existing_output(tmp_path: Path) -> None:
    with pytest.raises(AvlocError, match=r"video v1: its video-level label is not the set"):
        convert_to_generic(_tiny_dataset([1, 1]), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "out").mkdir()
    convert_to_generic(_tiny_dataset([1, 0]), tmp_path / "out")  # an empty folder is fine
    with pytest.raises(AvlocError, match=r"out: already exists and is not an empty folder"):
        convert_to_generic(_tiny_dataset([1, 0]), tmp_path / "out")


def test_convert_failure_leaves_no_partial_output(tmp_path: Path, monkeypatch) -> None:
    ave = load_ave(DataConfig(format="ave"), write_small_ave(tmp_path / "ave"))
    calls = []
    savez = np.savez

    def failing_savez(*args: Any, **kwargs: Any) -> None:
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        savez(*args, **kwargs)

    monkeypatch.setattr(convert_mod.np, "savez", failing_savez)
    with pytest.raises(AvlocError, match=r"out: cannot write \(No space left on device\)"):
        convert_to_generic(ave, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ave"]  # no out/, no temp folder


# ---------------------------------------------------------------- parsing (own clips, LLP-style)
PARSING = {"task": "parsing", "classes": ["Dog", "Speech"], "database": {
    "tag1": {"subset": "training", "duration": 10.0, "labels": ["Dog", "Speech"]},
    "tag2": {"subset": "training", "duration": 10.0, "labels": ["Speech"]},
    "val1": {"subset": "validation", "duration": 10.0, "annotations": [
        {"segment": [0, 10], "label": "Speech", "modality": "audio"},
        {"segment": [2, 6], "label": "Dog", "modality": "audio"},
        {"segment": [2, 6], "label": "Dog", "modality": "visual"}]},
    "test1": {"subset": "testing", "duration": 10.0, "labels": ["Dog", "Speech"],
              "annotations": [{"segment": [1, 4], "label": "Dog", "modality": "visual"}]},
}}


def test_parsing_task_reads_events_with_their_modality(tmp_path: Path) -> None:
    write_generic(tmp_path, PARSING)
    ds = load_generic(CFG, tmp_path)
    assert ds.task == "parsing" and ds.classes == ["Dog", "Speech"]
    assert [v.vid for v in ds.splits["train"]] == ["tag1", "tag2"]  # weak: never held out
    assert all(ds.annotations[v].weak for v in ("tag1", "tag2"))
    assert Segment(2.0, 6.0, "Dog", "visual") in ds.annotations["val1"].segments
    # labels and events may differ (a labelled event nobody annotated: Speech of test1)
    assert ds.splits["test"][0].labels.tolist() == [1.0, 1.0]
    assert ds.annotations["test1"].segments == [Segment(1.0, 4.0, "Dog", "visual")]


@pytest.mark.parametrize("entry, message", [
    ({"segment": [0, 2], "label": "Dog"}, "modality '': a parsing event is heard"),
    ({"segment": [0, 2], "label": "Dog", "modality": "both"}, "modality 'both'"),
])
def test_parsing_events_need_a_modality(tmp_path: Path, entry: dict, message: str) -> None:
    doc = json.loads(json.dumps(PARSING))
    doc["database"]["val1"]["annotations"].append(entry)
    write_generic(tmp_path, doc)
    with pytest.raises(AvlocError, match=message):
        load_generic(CFG, tmp_path)


def test_a_modality_outside_the_parsing_task_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["database"]["run2"]["annotations"][0]["modality"] = "audio"
    write_generic(tmp_path, doc)
    with pytest.raises(AvlocError, match="'modality' is for \"task\": \"parsing\""):
        load_generic(CFG, tmp_path)
