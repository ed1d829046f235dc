"""THUMOS'14 in ActionFormer's layout (thumos14.json + <video>.npy) and W-TALC's
(Thumos14reduced .npy files): the real annotations with synthetic features of the right
lengths, per-video snippet timing, splits, bad input, ground truth, and visual-only
training and evaluation through the command line."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_data_anet import _objects, _save

from avloc.checkpoint import read_checkpoint
from avloc.cli import main
from avloc.config import Config, DataConfig, load_config
from avloc.data import Timing, load_dataset
from avloc.data.batching import collate
from avloc.data.checks import holdout
from avloc.data.thumos import THUMOS_WTALC, export_thumos_gt, snippet_timing
from avloc.model import build_model
from avloc.scoring.evaluate import action_detections
from avloc.scoring.predict import VideoPrediction
from avloc.train import fit_modality
from avloc.util.errors import AvlocError

AF = DataConfig(format="thumos14", downsample=4)  # the preset's data settings
WT = DataConfig(format="thumos14_wtalc", snippet_seconds=0.64)
NAMES_51 = "video_validation_0000051"  # 169.79 s at 30 fps: 1269 I3D features in the release


def raw_length(duration: float, fps: float) -> int:
    """Features of 16 frames every 4: (frames - 16) // 4, as the release counts them
    (1269 for video_validation_0000051's 5094 frames: ActionFormer issue #5)."""
    return (round(duration * fps) - 16) // 4


def write_actionformer(root: Path, database: dict, dim: int = 4,
                       lengths: dict[str, int] | None = None) -> Path:
    """ActionFormer's layout: annotations/thumos14.json and i3d_features/<video>.npy, whose
    column 0 is the video's position in the JSON (to check which file went where)."""
    (root / "annotations").mkdir(parents=True)
    (root / "i3d_features").mkdir()
    doc = {"version": "Thumos14-30fps", "database": database}
    (root / "annotations" / "thumos14.json").write_text(json.dumps(doc))
    rng = np.random.default_rng(0)
    for i, (vid, e) in enumerate(database.items()):
        t = (lengths or {}).get(vid, raw_length(e["duration"], e["fps"]))
        x = rng.standard_normal((t, dim)).astype(np.float32)  # (T_raw, D)
        x[:, 0] = i
        np.save(root / "i3d_features" / f"{vid}.npy", x)
    return root


def write_wtalc(root: Path, database: dict, dim: int = 4, audio_dim: int = 0) -> Path:
    """W-TALC's Thumos14reduced layout made from the same annotations: bytes strings,
    (n, 1) durations, lower-case subsets, 0.64 s snippets; VGGish audio when audio_dim."""
    adir = root / THUMOS_WTALC.annotation_dir
    adir.mkdir(parents=True)
    names = list(database)
    labels = {a["label"]: a["label_id"] for e in database.values() for a in e["annotations"]}
    anns = [database[n]["annotations"] for n in names]
    arrays = {
        "classlist": np.array([c.encode() for c in sorted(labels, key=labels.get)]),
        "subset": np.array([database[n]["subset"].lower().encode() for n in names]),
        "videoname": np.array([n.encode() for n in names]),
        "duration": np.array([[database[n]["duration"]] for n in names]),
        "segments": _objects([[a["segment"] for a in x] for x in anns]),
        "labels": _objects([[a["label"].encode() for a in x] for x in anns]),
        "labels_all": _objects([sorted({a["label"].encode() for a in x}) for x in anns]),
    }
    for name, arr in arrays.items():
        _save(adir / f"{name}.npy", arr)
    rng = np.random.default_rng(1)
    lengths = [max(1, round(database[n]["duration"] / 0.64)) for n in names]
    visual = [rng.standard_normal((t, dim)).astype(np.float32) for t in lengths]
    for i, x in enumerate(visual):
        x[:, 0] = i
    _save(root / THUMOS_WTALC.visual_file, _objects(visual))
    if audio_dim:
        audio = [rng.standard_normal((t, audio_dim)).astype(np.float32) for t in lengths]
        _save(root / THUMOS_WTALC.audio_file, _objects(audio))
    return root


@pytest.fixture(scope="module")
def database(thumos_dir: Path) -> dict:
    return json.loads((thumos_dir / "thumos14.json").read_text())["database"]


@pytest.fixture(scope="module")
def small(database: dict) -> dict:
    """The 12 shortest Validation and 6 shortest Test videos (8.9 to 33.6 s), as they are."""
    def shortest(subset: str, n: int) -> list[str]:
        vids = [v for v, e in database.items() if e["subset"] == subset]
        return sorted(vids, key=lambda v: database[v]["duration"])[:n]
    return {v: database[v] for v in shortest("Validation", 12) + shortest("Test", 6)}


@pytest.fixture(scope="module")
def af_dir(tmp_path_factory, database: dict) -> Path:
    return write_actionformer(tmp_path_factory.mktemp("actionformer"), database)


@pytest.fixture(scope="module")
def wt_dir(tmp_path_factory, database: dict) -> Path:
    return write_wtalc(tmp_path_factory.mktemp("wtalc"), database)


def _all(ds) -> list:
    return [v for split in ds.splits.values() for v in split]


# ---------------------------------------------------------------- the real annotations


@pytest.mark.parametrize("layout", ["af_dir", "wt_dir"])
def test_real_annotations_in_both_layouts(request, database: dict, layout: str) -> None:
    ds = load_dataset(AF if layout == "af_dir" else WT, request.getfixturevalue(layout))
    assert (ds.name, ds.task, ds.num_classes, ds.has_audio) == ("thumos14", "action", 20, False)
    assert ds.classes[:3] == ["BaseballPitch", "BasketballDunk", "Billiards"]
    assert ds.classes == sorted(ds.classes)  # label_id order is alphabetical
    sizes = {s: len(v) for s, v in ds.splits.items()}
    assert sizes["train"] + sizes["val"] == 200 and sizes["test"] == 212
    assert 17 <= sizes["val"] <= 23  # about val_fraction = 0.1 of each class

    def instances(split: str) -> int:
        return sum(len(ds.annotations[v.vid].segments) for v in ds.splits[split])
    assert instances("train") + instances("val") == 3007 and instances("test") == 3358
    order = list(database)
    for v in _all(ds):  # each video got its own file's features and its own labels
        assert order[int(v.visual[0, 0])] == v.vid and v.audio.shape == (v.length, 0)
        names = {ds.classes[c] for c in np.flatnonzero(v.labels)}
        assert names == {a["label"] for a in database[v.vid]["annotations"]}
    assert {v.vid for v in ds.splits["test"]} == {
        v for v, e in database.items() if e["subset"] == "Test"}


def test_both_layouts_give_the_same_dataset_but_the_timing(af_dir: Path, wt_dir: Path) -> None:
    a, w = load_dataset(AF, af_dir), load_dataset(WT, wt_dir)
    assert a.classes == w.classes
    for split in ("train", "val", "test"):
        assert [v.vid for v in a.splits[split]] == [v.vid for v in w.splits[split]]
    assert all(a.annotations[k].segments == w.annotations[k].segments for k in a.annotations)
    assert w.timing(NAMES_51) == Timing(0.64) and w.snippet_seconds == 0.64


def test_held_out_val_is_the_seeded_stratified_holdout(af_dir: Path, database: dict) -> None:
    ds = load_dataset(AF, af_dir)
    train = sorted(ds.splits["train"] + ds.splits["val"], key=lambda v: int(v.visual[0, 0]))
    _, held = holdout([v.labels for v in train], 0.1, seed=0)
    assert {train[i].vid for i in held} == {v.vid for v in ds.splits["val"]}
    other = load_dataset(dataclasses.replace(AF, split_seed=1), af_dir)
    assert {v.vid for v in other.splits["val"]} != {v.vid for v in ds.splits["val"]}


def test_segments_past_the_end_of_their_video_are_kept(af_dir: Path) -> None:
    """The release's own flaw (30 segments in 5 videos); the official evaluation counts them."""
    ds = load_dataset(AF, af_dir)
    past = Counter(vid for vid, ann in ds.annotations.items() for s in ann.segments
                   if s.end > ann.duration)
    assert sum(past.values()) == 30 and len(past) == 5 and past["video_test_0000270"] == 22
    from avloc.scoring.metrics import ground_truth_from_annotations

    gt = ground_truth_from_annotations([ds.annotations[v.vid] for v in ds.splits["test"]])
    assert len(gt.label) == 3358


# ---------------------------------------------------------------- timing


def test_each_video_has_its_own_snippet_timing(af_dir: Path, database: dict) -> None:
    ds = load_dataset(AF, af_dir)
    for vid, fps in (("video_validation_0000051", 30.0), ("video_validation_0000311", 25.0),
                     ("video_test_0000591", 29.97), ("video_validation_0000411", 24.0)):
        assert database[vid]["fps"] == fps
        timing = ds.timing(vid)
        assert timing.seconds == pytest.approx(16 / fps) and timing.offset == 0.0
        video = next(v for v in _all(ds) if v.vid == vid)
        assert video.length == math.ceil(raw_length(database[vid]["duration"], fps) / 4)
        # the grid ends before the video does, by less than a snippet and the 12 frames
        # that start no window of 16 frames
        assert 0 < database[vid]["duration"] - timing.at(video.length) < (16 + 12) / fps
    assert ds.snippet_seconds == pytest.approx(16 / 30)  # nominal: 381 of 412 are at 30 fps
    every = load_dataset(dataclasses.replace(AF, downsample=1), af_dir)
    t = every.timing(NAMES_51)  # features every 4 frames, centred on their 16-frame window
    assert (t.seconds, t.offset) == pytest.approx((4 / 30, 6 / 30))
    assert float(t.at(0.5)) == pytest.approx(8 / 30)  # feature 0's centre: frame 8


def test_default_fps_stands_for_every_video(tmp_path: Path, small: dict) -> None:
    root = write_actionformer(tmp_path / "thumos", small)
    _edit_json(root, lambda db: [e.update(fps=25.0) for e in db.values()])  # wrong: they are 30
    with pytest.raises(AvlocError, match=r"snippets but"):
        load_dataset(AF, root)
    ds = load_dataset(dataclasses.replace(AF, default_fps=30.0), root)
    assert {ds.timing(v.vid) for v in _all(ds)} == {Timing(16 / 30)}


def test_snippet_timing_formula() -> None:
    assert snippet_timing(30.0, AF) == Timing(16 / 30, 0.0)
    assert snippet_timing(25.0, dataclasses.replace(AF, downsample=2)) == Timing(8 / 25, 4 / 25)
    t = snippet_timing(30.0, dataclasses.replace(AF, downsample=8))  # 32 frames per snippet
    assert t.offset == pytest.approx(-8 / 30)  # centred on a 16-frame window: starts before it


def test_localization_converts_snippets_to_seconds_per_video(af_dir: Path) -> None:
    """The same snippets [10, 20) are different seconds at 30 and at 25 fps."""
    ds = load_dataset(AF, af_dir)
    cfg = Config()
    preds = []
    for vid in ("video_validation_0000051", "video_validation_0000311"):
        video = next(v for v in _all(ds) if v.vid == vid)
        c = int(np.flatnonzero(video.labels)[0])
        p = np.zeros((video.length, ds.num_classes + 1))
        p[:, 0] = 1.0
        p[10:20, 0], p[10:20, c + 1] = 0.1, 0.9
        preds.append(VideoPrediction(vid, p, 1 - p[:, 0]))
    dets = action_detections(ds, preds, cfg)
    assert dets["video_validation_0000051"][0]["segment"] == pytest.approx([16 / 3, 32 / 3])
    assert dets["video_validation_0000311"][0]["segment"] == pytest.approx([6.4, 12.8])
    every = load_dataset(dataclasses.replace(AF, downsample=1), af_dir)
    p = np.zeros((next(v for v in _all(every) if v.vid == NAMES_51).length, 21))  # (1269, C+1)
    p[:, 0], p[40:80, 0], p[40:80, 1] = 1.0, 0.1, 0.9
    seg = action_detections(every, [VideoPrediction(NAMES_51, p, 1 - p[:, 0])], cfg)
    assert seg[NAMES_51][0]["segment"] == pytest.approx([40 * 4 / 30 + 0.2, 80 * 4 / 30 + 0.2])


def test_the_release_feature_count_passes_the_length_check(tmp_path: Path, database) -> None:
    """video_validation_0000051 has 1269 features in ActionFormer's release."""
    one = {NAMES_51: database[NAMES_51]}
    for k in (1, 4):
        root = write_actionformer(tmp_path / f"ok{k}", one, lengths={NAMES_51: 1269})
        assert load_dataset(dataclasses.replace(AF, downsample=k), root).splits["train"]
    root = write_actionformer(tmp_path / "short", one, lengths={NAMES_51: 1260})
    with pytest.raises(AvlocError, match=r"video_validation_0000051\.npy: video video_validation_"
                       r"0000051: 315 snippets but \(duration 169\.79 s - 0\.4 s\) / 0\.533333 s "
                       r"= 317\.61 snippets \(allowed 316\.\.319"):
        load_dataset(AF, root)


# ---------------------------------------------------------------- bad input


def _json(root: Path) -> dict:
    return json.loads((root / "annotations" / "thumos14.json").read_text())


def _edit_json(root: Path, fn) -> None:
    doc = _json(root)
    fn(doc["database"])
    (root / "annotations" / "thumos14.json").write_text(json.dumps(doc))


def _first(db: dict) -> dict:
    return next(iter(db.values()))


def _features(root: Path, vid: str, x) -> None:
    np.save(root / "i3d_features" / f"{vid}.npy", x)


V0 = "video_validation_0000190"  # the shortest video: 8.93 s at 30 fps, 63 features
BAD_AF = {
    "missing json": (lambda r: (r / "annotations" / "thumos14.json").unlink(),
                     r"missing THUMOS'14 annotations \(ActionFormer JSON\) \(looked for "
                     r"annotations/thumos14\.json, thumos14\.json\)"),
    "missing feature folder": (lambda r: shutil.rmtree(r / "i3d_features"),
                               r"missing folder of per-video I3D features"),
    "missing feature file": (lambda r: (r / "i3d_features" / f"{V0}.npy").unlink(),
                             rf"{V0}\.npy: missing file \(features of video {V0}\)"),
    "corrupt feature file": (lambda r: (r / "i3d_features" / f"{V0}.npy").write_bytes(b"x" * 99),
                             rf"{V0}\.npy: cannot read as \.npy"),
    "3-d features": (lambda r: _features(r, V0, np.zeros((63, 4, 2), np.float32)),
                     rf"{V0}\.npy: video {V0}: visual features have shape \(63, 4, 2\)"),
    "nan": (lambda r: _features(r, V0, np.full((63, 4), np.nan, np.float32)),
            rf"{V0}\.npy: video {V0}: visual features contain NaN/Inf"),
    "zero snippets": (lambda r: _features(r, V0, np.zeros((0, 4), np.float32)),
                      rf"{V0}\.npy: video {V0}: video has zero snippets"),
    "too long": (lambda r: _features(r, V0, np.zeros((90, 4), np.float32)),
                 rf"{V0}\.npy: video {V0}: 23 snippets but \(duration 8\.93 s - 0\.4 s\)"),
    "dims differ": (lambda r: _features(r, "video_test_0000062", np.zeros((108, 5), np.float32)),
                    r"video_test_0000062\.npy: video video_test_0000062: feature dimensions "
                    r"\(audio, visual\) = \(0, 5\) differ from \(0, 4\)"),
    "unknown subset": (lambda r: _edit_json(r, lambda db: db[V0].update(subset="Training")),
                       rf"video {V0}: subset 'Training': expected Validation or Test"),
    "no fps": (lambda r: _edit_json(r, lambda db: db[V0].pop("fps")),
               rf"video {V0}: fps None is not a positive number \(set data\.default_fps"),
    "bad duration": (lambda r: _edit_json(r, lambda db: db[V0].update(duration=-2)),
                     rf"video {V0}: duration -2 must be a positive number"),
    "ends before start": (
        lambda r: _edit_json(r, lambda db: db[V0]["annotations"][0].update(segment=[5, 2])),
        rf"video {V0}: annotation 0: segment \[5, 2\] ends before it starts"),
    "negative start": (
        lambda r: _edit_json(r, lambda db: db[V0]["annotations"][0].update(segment=[-1, 2])),
        rf"video {V0}: annotation 0: segment \[-1, 2\] lies outside the video"),
    "not a pair": (
        lambda r: _edit_json(r, lambda db: db[V0]["annotations"][0].update(segment=[1])),
        rf"video {V0}: annotation 0: segment \[1\] is not a \[start, end\] pair"),
    "label_id clash": (
        lambda r: _edit_json(r, lambda db: db[V0]["annotations"][0].update(label_id=7)),
        r"video video_test_0000981: label 'CricketBowling' has label_id 5 here but 7 elsewhere"),
    "label_id shared": (
        lambda r: _edit_json(r, lambda db: db[V0]["annotations"][0].update(label="Curling")),
        r"thumos14\.json: labels 'Curling' and 'CricketBowling' share label_id 5"),
    "label_id not a number": (
        lambda r: _edit_json(r, lambda db: [a.update(label_id="5") for a in db[V0][
            "annotations"] + db["video_test_0000981"]["annotations"]]),
        r"label 'CricketBowling': label_id '5' is not an integer"),
    "not a file name": (lambda r: _edit_json(r, lambda db: db.update({"../up": db.pop(V0)})),
                        r"video \.\./up: video id '\.\./up' cannot be used as a file name"),
    "duplicate video": (
        lambda r: (r / "annotations" / "thumos14.json").write_text(
            (r / "annotations" / "thumos14.json").read_text().replace(
                '"video_test_0000062"', f'"{V0}"')),
        rf"thumos14\.json: key '{V0}' appears twice"),
}


def _wt_edit(root: Path, name: str, fn) -> None:
    path = root / THUMOS_WTALC.annotation_dir / f"{name}.npy"
    arr = fn(np.load(path, allow_pickle=True))
    path.unlink()
    _save(path, arr)


BAD_WT = {
    "missing features": (lambda r: (r / THUMOS_WTALC.visual_file).unlink(),
                         r"Thumos14reduced-I3D-JOINTFeatures\.npy: missing file"),
    "subset of ActivityNet": (lambda r: _wt_edit(r, "subset", lambda a: np.where(
        a == b"test", b"training", a)), r"subset 'training' \(expected validation or test\)"),
    "label not in classlist": (lambda r: _wt_edit(r, "classlist", lambda a: a[1:]),
                               r"label 'BaseballPitch' is not in the class list"),
    "length": (lambda r: _wt_edit(r, "duration", lambda a: a * 2),
               r"JOINTFeatures\.npy: video video_validation_0000190: 14 snippets but duration "
               r"17\.86 s / 0\.64 s"),
    "duplicate videoname": (lambda r: _wt_edit(r, "videoname", lambda a: a[[0, 0, *range(2,
                            len(a))]]), r"videoname\.npy: duplicate video id"),
}


LAYOUTS = {"actionformer": (write_actionformer, AF), "wtalc": (write_wtalc, WT)}
BAD = {("actionformer", k): v for k, v in BAD_AF.items()} | {
    ("wtalc", k): v for k, v in BAD_WT.items()}


@pytest.mark.parametrize("layout, case", list(BAD), ids=[f"{a}-{b}" for a, b in BAD])
def test_bad_input_is_one_line_naming_file_and_video(
    tmp_path: Path, small: dict, layout: str, case: str
) -> None:
    write, cfg = LAYOUTS[layout]
    root = write(tmp_path / "thumos", small)
    load_dataset(cfg, root)
    damage, message = BAD[layout, case]
    damage(root)
    with pytest.raises(AvlocError, match=message) as err:
        load_dataset(cfg, root)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


# ---------------------------------------------------------------- ground truth


def test_ground_truth_from_either_layout_or_a_dataset(
    af_dir: Path, wt_dir: Path, tmp_path: Path, database: dict
) -> None:
    counts = {"videos": 412, "Validation": 200, "Validation_instances": 3007,
              "Test": 212, "Test_instances": 3358}
    assert main(["data", "export-gt", "--format", "thumos14", "--data", str(af_dir),
                 "--out", str(tmp_path / "af.json")]) == 0
    assert export_thumos_gt(wt_dir, tmp_path / "wt.json", WT) == counts
    assert export_thumos_gt(load_dataset(AF, af_dir), tmp_path / "ds.json") == counts
    docs = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("af", "wt", "ds")]
    assert docs[0]["database"] == docs[1]["database"] == docs[2]["database"]
    assert [n["nodeName"] for n in docs[0]["taxonomy"]][:2] == ["BaseballPitch", "BasketballDunk"]
    entry = docs[0]["database"]["video_test_0000004"]
    want = database["video_test_0000004"]
    assert (entry["subset"], entry["duration"]) == ("Test", want["duration"])
    assert entry["annotations"] == [{"segment": a["segment"], "label": a["label"]}
                                    for a in want["annotations"]]


def test_score_thumos_ground_truth_with_its_thresholds(af_dir: Path, tmp_path: Path,
                                                       capsys) -> None:
    """The exported ground truth as results scores AP 1 at every THUMOS tIoU, except the
    classes with segments past their video's end, which are scored (as the official code
    does) and reported; the detections leave those segments out."""
    export_thumos_gt(af_dir, tmp_path / "gt.json")
    db = json.loads((tmp_path / "gt.json").read_text())["database"]
    results = {vid: [{"label": a["label"], "segment": a["segment"], "score": 1.0}
                     for a in e["annotations"] if a["segment"][1] <= e["duration"]]
               for vid, e in db.items() if e["subset"] == "Test"}
    (tmp_path / "det.json").write_text(json.dumps({"results": results}))
    argv = ["score", str(tmp_path / "gt.json"), str(tmp_path / "det.json"), "--subset", "Test",
            "--tiou", "0.1:0.7:0.1", "--json", str(tmp_path / "m.json")]
    assert main(argv) == 0
    assert "note: 26 instances reach more than 1 s outside their video" in capsys.readouterr().out
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["instances_beyond_duration"] == 26 and m["subset"] == "Test"  # 30 past the end
    assert list(m["mAP"]) == ["0.10", "0.20", "0.30", "0.40", "0.50", "0.60", "0.70"]
    ap = m["per_class_AP"]  # only the classes with instances past the end miss some
    assert {c for c, v in ap.items() if min(v) < 1} == {"HammerThrow", "ThrowDiscus", "Diving"}
    assert 0.98 < m["average_mAP"] < 1


# ---------------------------------------------------------------- visual-only training


@pytest.mark.parametrize("layout", ["actionformer", "wtalc"])
def test_visual_only_training_and_eval_through_the_cli(
    tmp_path: Path, small: dict, capsys, layout: str
) -> None:
    write, cfg = LAYOUTS[layout]
    root = write(tmp_path / "data", small, dim=16)
    extra = [f"data.format={cfg.format}"]
    run = tmp_path / "run"
    assert main(["train", "--config", "thumos14", "--data", str(root), "--out", str(run),
                 "train.epochs=1", "model.d_x=64", "data.val_fraction=0.5",
                 "train.progress=false", *extra]) == 0
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if "no audio features" in line]
    assert said == ["avloc: dataset thumos14 has no audio features: training the visual-only "
                    "model (model.modality=visual model.stages=0)"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["model"]["modality"], saved["model"]["stages"]) == ("visual", 0)
    assert saved["eval"]["tiou"] == "0.1:0.7:0.1"
    ckpt = read_checkpoint(run / "best.pt")
    assert ckpt["feature_dims"] == [0, 16] and ckpt["config"]["model"]["modality"] == "visual"
    assert not any(k.startswith("f_u") for k in ckpt["model"])
    assert main(["eval", str(run), "--data", str(root), "--split", "test",
                 "--json", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert {"mAP", "average_mAP"} <= set(m)
    assert list(m["mAP"]) == ["0.10", "0.20", "0.30", "0.40", "0.50", "0.60", "0.70"]
    assert 0 <= m["average_mAP"] <= 1
    assert json.loads((run / "metrics.json").read_text())["test"]["mAP"] == m["mAP"]


def test_with_audio_features_the_audio_visual_model_trains(tmp_path: Path, small: dict) -> None:
    root = write_wtalc(tmp_path / "data", small, dim=16, audio_dim=8)
    ds = load_dataset(WT, root)
    assert ds.has_audio and ds.feature_dims == (8, 16)
    cfg = load_config("thumos14")
    assert fit_modality(cfg, ds) is cfg  # the full model: 2-stage cross attention


def test_no_audio_means_visual_only_everywhere(af_dir: Path, capsys) -> None:
    ds = load_dataset(AF, af_dir)
    cfg = fit_modality(load_config("thumos14"), ds)
    assert (cfg.model.modality, cfg.model.stages) == ("visual", 0)
    assert "no audio features" in capsys.readouterr().out
    with pytest.raises(AvlocError, match=r"model\.modality=audio: dataset thumos14 has no audio"):
        fit_modality(load_config("thumos14", ["model.modality=audio", "model.stages=0"]), ds)
    with pytest.raises(AvlocError, match=r"model\.modality=av: the features have no audio"):
        build_model(load_config("thumos14").model, 0, 4, 20)
    batch = collate(ds.splits["test"][:3])
    assert batch.audio.shape[:2] == batch.visual.shape[:2] and batch.audio.shape[2] == 0
    model = build_model(cfg.model, *ds.feature_dims, ds.num_classes)
    out = model(batch.audio, batch.visual, batch.mask)
    assert out["log_p"].shape == (3, batch.visual.shape[1], 21)
    assert torch.isfinite(out["log_p"]).all()


def test_a_split_without_some_classes_is_scored_on_its_own(tmp_path: Path, small: dict) -> None:
    """A small held-out val may lack classes the model predicts: those are not scored."""
    from avloc.scoring.evaluate import action_metrics

    ds = load_dataset(AF, write_actionformer(tmp_path / "thumos", small))
    video = ds.splits["test"][0]
    truth = int(np.flatnonzero(video.labels)[0])
    other = next(c for c in range(ds.num_classes) if not any(v.labels[c] for v in ds.splits[
        "test"]))
    p = np.zeros((video.length, ds.num_classes + 1))
    p[:, 0] = 1.0
    p[2:6, 0], p[2:6, truth + 1], p[8:12, 0], p[8:12, other + 1] = 0.1, 0.9, 0.1, 0.9
    m = action_metrics(ds, [VideoPrediction(video.vid, p, 1 - p[:, 0])], load_config("thumos14"))
    assert set(m["per_class_AP"]) == {ds.classes[truth]}


def test_visual_only_data_converts_to_the_generic_layout(tmp_path: Path, small: dict) -> None:
    from avloc.data.convert import convert_to_generic

    ds = load_dataset(WT, write_wtalc(tmp_path / "wt", small))
    convert_to_generic(ds, tmp_path / "generic")
    back = load_dataset(DataConfig(format="generic", snippet_seconds=0.64), tmp_path / "generic")
    assert not back.has_audio and back.feature_dims == ds.feature_dims
    assert [v.vid for v in back.splits["test"]] == [v.vid for v in ds.splits["test"]]
    af = load_dataset(AF, write_actionformer(tmp_path / "af", small))
    with pytest.raises(AvlocError, match=r"dataset thumos14: its videos have snippet grids of "
                                         r"their own"):
        convert_to_generic(af, tmp_path / "generic2")
    assert not (tmp_path / "generic2").exists()
