"""LLP (Look, Listen and Parse): the annotation CSVs, both feature layouts, the release's
flaws reported and treated as the official evaluation treats them, and the LLP-structured
synthetic data built on the real files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from avloc.config import load_config
from avloc.data import load_dataset
from avloc.data.base import Segment
from avloc.data.llp import LLP_CLASSES, read_llp_annotations
from avloc.scoring.segments import truth_matrices
from avloc.util.errors import AvlocError


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# ---- the real annotation files --------------------------------------------------------------
def test_real_annotations_counts_and_reported_flaws(llp_dir):
    ann = read_llp_annotations(llp_dir)
    assert [len(ann.lists[s]) for s in ("train", "val", "test")] == [10000, 649, 1200]
    assert ann.lists["train"][0] == ("BjCEufrlXm4_20_30", ["Speech", "Dog"])
    notes = "\n".join(ann.notes)
    # the 8 clip names of the evaluation files in neither list, one a mangled listed clip
    assert "14 events of 8 clips in neither the validation nor the test list" in notes
    assert "19jWnmYnlD8_30_400 (like 19jWnmYnlD8_30_40)" in notes
    assert "5 events end where or before they start" in notes  # e.g. 9-0 Cheering
    assert "line 894: LcFWKgFphXI_20_30 Clapping,Clapping" in notes
    scored = {c for s in ("val", "test") for c, _ in ann.lists[s]}
    n_audio = sum(1 for r in rows(llp_dir / "AVVP_eval_audio.csv")
                  if r["filename"] in scored and int(r["offset"]) > int(r["onset"]))
    assert sum(s.modality == "audio" for ev in ann.events.values() for s in ev) == n_audio
    assert n_audio == 4131 - 14 - 5


def test_ground_truth_matrices_match_the_official_construction(llp_dir):
    """GT[class, onset:offset] = 1 for every row of the evaluation file whose filename is the
    evaluated clip's (main_avvp.eval), reversed rows included (an empty slice)."""
    ann = read_llp_annotations(llp_dir)
    raw = {m: rows(llp_dir / f"AVVP_eval_{m}.csv") for m in ("audio", "visual")}
    by_clip: dict[str, dict[str, list[dict[str, str]]]] = {}
    for m, items in raw.items():
        for r in items:
            by_clip.setdefault(r["filename"], {"audio": [], "visual": []})[m].append(r)
    for split in ("val", "test"):
        for clip, _ in ann.lists[split][::7]:
            want = {}
            for m in ("audio", "visual"):
                gt = np.zeros((25, 10), np.uint8)
                for r in by_clip.get(clip, {}).get(m, []):
                    gt[LLP_CLASSES.index(r["event_labels"]), int(r["onset"]):int(r["offset"])] = 1
                want[m] = gt
            got_a, got_v = truth_matrices(ann.events[clip], LLP_CLASSES, 10, 1.0)
            np.testing.assert_array_equal(got_a, want["audio"], err_msg=clip)
            np.testing.assert_array_equal(got_v, want["visual"], err_msg=clip)


def test_embedded_statistics_are_the_real_files(llp_dir):
    """The demo embeds derived statistics only; they are what the real files give."""
    from avloc.data.synthetic_llp import EMBEDDED, llp_statistics

    assert llp_statistics(read_llp_annotations(llp_dir)) == EMBEDDED


# ---- a small LLP folder in both feature layouts ----------------------------------------------
CLIPS = {  # split -> [(clip, labels)]
    "train": [("aaaaaaaaaaa_0_10", "Speech,Dog"), ("bbbbbbbbbbb_5_15", "Dog"),
              ("ccccccccccc_0_10", "Car")],
    "val": [("ddddddddddd_0_10", "Speech")],
    "test": [("-eeeeeeeeee_30_40", "Dog,Car")],
}
EVENTS = {
    "audio": [("ddddddddddd_0_10", 0, 4, "Speech"), ("-eeeeeeeeee_30_40", 2, 10, "Dog"),
              ("eeeeeeeeee_30_40", 0, 3, "Car"),  # mangled name: in no list
              ("-eeeeeeeeee_30_40", 9, 0, "Car")],  # reversed: marks nothing
    "visual": [("-eeeeeeeeee_30_40", 0, 10, "Car")],
}


def write_llp(root: Path, layout: str = "release", frames: int = 80) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
    for split, name in names.items():
        lines = ["filename\tevent_labels"] + [f"{c}\t{lab}" for c, lab in CLIPS[split]]
        (root / name).write_text("\n".join(lines) + "\n")
    for m, events in EVENTS.items():
        lines = ["filename\tonset\toffset\tevent_labels"]
        lines += [f"{c}\t{a}\t{b}\t{lab}" for c, a, b, lab in events]
        (root / f"AVVP_eval_{m}.csv").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    clips = [c for items in CLIPS.values() for c, _ in items]
    if layout == "release":
        for sub, shape in (("vggish", (10, 6)), ("res152", (frames, 8)),
                           ("r2plus1d_18", (10, 4))):
            (root / "feats" / sub).mkdir(parents=True)
            for clip in clips:  # named by the YouTube id, as the release names them
                np.save(root / "feats" / sub / f"{clip[:11]}.npy",
                        rng.standard_normal(shape).astype(np.float32))
    else:
        from avloc.extract.store import write_features

        (root / "features").mkdir(parents=True)
        meta = {"audio_backend": "yamnet", "visual_backend": "efficientnet_lite0",
                "snippet_seconds": 1.0, "frames_per_snippet": 1}
        for clip in clips:
            write_features(root / "features" / f"{clip}.npz",
                           rng.standard_normal((11, 6)).astype(np.float32),
                           rng.standard_normal((11, 5)).astype(np.float32), dict(meta))
    return root


def llp_cfg(*overrides: str):
    return load_config("llp", ["model.d_x=8", *overrides])


def test_release_layout_pools_frames_per_second_and_reports_flaws(tmp_path, capsys):
    root = write_llp(tmp_path / "llp")
    ds = load_dataset(llp_cfg().data, root)
    assert ds.task == "parsing" and ds.classes == LLP_CLASSES
    assert [len(ds.splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert ds.feature_dims == (6, 8 + 4)  # res152 pooled per second + r2plus1d_18
    v = ds.splits["train"][0]
    frames = np.load(root / "feats" / "res152" / "aaaaaaaaaaa.npy")  # (80, 8)
    np.testing.assert_allclose(v.visual[3, :8], frames[24:32].mean(0), rtol=1e-6)
    assert v.labels[LLP_CLASSES.index("Speech")] == v.labels[LLP_CLASSES.index("Dog")] == 1
    test_events = ds.annotations["-eeeeeeeeee_30_40"].segments
    assert Segment(2.0, 10.0, "Dog", "audio") in test_events
    assert Segment(0.0, 10.0, "Car", "visual") in test_events
    assert len(test_events) == 2  # the reversed Car row marks nothing
    err = capsys.readouterr().err
    assert "eeeeeeeeee_30_40 (like -eeeeeeeeee_30_40)" in err
    assert "end where or before they start" in err
    only = load_dataset(llp_cfg("data.llp_visual=res152").data, root)
    assert only.feature_dims == (6, 8)


def test_extract_layout_cuts_to_ten_seconds_and_keeps_the_extractors(tmp_path):
    root = write_llp(tmp_path / "llp", layout="extract")
    ds = load_dataset(llp_cfg().data, root)
    assert ds.feature_dims == (6, 5)
    assert all(v.length == 10 for videos in ds.splits.values() for v in videos)
    assert ds.extractors["audio_backend"] == "yamnet"


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "AVVP_val_pd.csv").unlink(), "AVVP_val_pd.csv: missing file"),
    (lambda r: (r / "AVVP_train.csv").write_text("name\tlabels\nx_0_10\tDog\n"),
     "line 1: expected the header"),
    (lambda r: (r / "AVVP_train.csv").write_text("filename\tevent_labels\nx_0_10\tDogs\n"),
     "line 2 (clip x_0_10): label 'Dogs' is not one of the 25 LLP classes"),
    (lambda r: (r / "AVVP_eval_visual.csv").write_text(
        "filename\tonset\toffset\tevent_labels\nddddddddddd_0_10\t1.5\t3\tSpeech\n"),
     "onset '1.5' is not a whole second"),
    (lambda r: (r / "AVVP_eval_audio.csv").write_text(
        "filename\tonset\toffset\tevent_labels\nddddddddddd_0_10\t0\t12\tSpeech\n"),
     "offset 12 lies outside the clip"),
    (lambda r: (r / "AVVP_test_pd.csv").write_text(
        "filename\tevent_labels\nddddddddddd_0_10\tSpeech\n"),
     "clip ddddddddddd_0_10 is also in AVVP_val_pd.csv"),
    (lambda r: (r / "feats" / "vggish" / "bbbbbbbbbbb.npy").unlink(),
     "missing features of clip bbbbbbbbbbb_5_15 (looked for bbbbbbbbbbb_5_15.npy"),
    (lambda r: np.save(r / "feats" / "res152" / "bbbbbbbbbbb.npy", np.zeros((75, 8))),
     "res152 has 75 rows, expected a multiple of 10"),
    (lambda r: np.save(r / "feats" / "vggish" / "bbbbbbbbbbb.npy", np.zeros((9, 6))),
     "audio has 9 rows, expected 10"),
    (lambda r: np.save(r / "feats" / "vggish" / "bbbbbbbbbbb.npy", np.full((10, 6), np.nan)),
     "audio features contain NaN/Inf"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, damage, message):
    root = write_llp(tmp_path / "llp")
    damage(root)
    with pytest.raises(AvlocError, match=None) as info:
        load_dataset(llp_cfg().data, root)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_annotations_found_in_data_subfolder_or_by_setting(tmp_path):
    root = write_llp(tmp_path / "llp")
    sub = root / "data"
    sub.mkdir()
    for f in root.glob("AVVP_*.csv"):
        f.rename(sub / f.name)
    assert len(load_dataset(llp_cfg().data, root).splits["train"]) == 3
    elsewhere = tmp_path / "csv"
    sub.rename(elsewhere)
    cfg = llp_cfg(f"data.annotations={elsewhere}")
    assert len(load_dataset(cfg.data, root).splits["test"]) == 1
    with pytest.raises(AvlocError, match="AVVP_train.csv: missing file"):
        load_dataset(llp_cfg().data, root)


def test_conversion_to_the_generic_layout_keeps_events_modalities_and_labels(tmp_path):
    """LLP -> generic (task parsing): the same splits, features, labels and per-modality
    events; training clips keep their labels only (their events are unknown), and a test
    clip whose labels and events differ keeps both (the official evaluation scores the
    events as annotated)."""
    from avloc.data.convert import convert_to_generic

    ds = load_dataset(llp_cfg().data, write_llp(tmp_path / "llp"))
    convert_to_generic(ds, tmp_path / "out")
    back = load_dataset(llp_cfg("data.format=generic").data, tmp_path / "out")
    assert back.task == "parsing"
    for split in ("train", "val", "test"):
        assert [v.vid for v in back.splits[split]] == [v.vid for v in ds.splits[split]]
        for a, b in zip(ds.splits[split], back.splits[split], strict=True):
            np.testing.assert_array_equal(a.visual, b.visual)
            np.testing.assert_array_equal(a.labels[[LLP_CLASSES.index(c) for c in back.classes]],
                                          b.labels)
            assert sorted(back.annotations[b.vid].segments, key=str) == sorted(
                ds.annotations[a.vid].segments, key=str)
            assert back.annotations[b.vid].weak == (split == "train")
    doc = (tmp_path / "out" / "annotations.json").read_text()
    assert '"modality": "visual"' in doc


def test_missing_features_stop_unless_a_setting_leaves_them_out(tmp_path, capsys):
    root = write_llp(tmp_path / "llp")
    (root / "feats" / "vggish" / "bbbbbbbbbbb.npy").unlink()  # a training clip
    with pytest.raises(AvlocError, match="missing features of clip bbbbbbbbbbb_5_15.*"
                       "data.missing_features=skip_train"):
        load_dataset(llp_cfg().data, root)
    ds = load_dataset(llp_cfg("data.missing_features=skip_train").data, root)
    assert [v.vid for v in ds.splits["train"]] == ["aaaaaaaaaaa_0_10", "ccccccccccc_0_10"]
    assert "bbbbbbbbbbb_5_15" not in ds.annotations
    assert "left out 1 of the 3 train clips, which have no features (e.g. bbbbbbbbbbb_5_15)" \
        in capsys.readouterr().err
    (root / "feats" / "res152" / "ddddddddddd.npy").unlink()  # the validation clip
    with pytest.raises(AvlocError, match="missing features of clip ddddddddddd_0_10"):
        load_dataset(llp_cfg("data.missing_features=skip_train").data, root)  # never silently
    ds = load_dataset(llp_cfg("data.missing_features=skip").data, root)
    assert ds.splits["val"] == [] and len(ds.splits["test"]) == 1
    assert "left out 1 of the 1 val clips" in capsys.readouterr().err
    with pytest.raises(AvlocError, match="data.missing_features='maybe': expected one of"):
        llp_cfg("data.missing_features=maybe")


# ---- the LLP-structured synthetic data ---------------------------------------------------------
def test_synthetic_without_files_is_deterministic_and_parses():
    cfg = load_config("llp_demo", ["data.synth_videos=40"]).data
    a, b = load_dataset(cfg, None), load_dataset(cfg, None)
    assert [len(a.splits[s]) for s in ("train", "val", "test")] == [40, 10, 10]
    assert a.task == "parsing" and a.feature_dims == (128, 256)
    for va, vb in zip(a.splits["train"], b.splits["train"], strict=True):
        np.testing.assert_array_equal(va.audio, vb.audio)
    # every label is heard, seen, both or neither; events carry their modality
    modalities = {s.modality for ann in a.annotations.values() for s in ann.segments}
    assert modalities == {"audio", "visual"}


def test_events_show_only_in_their_modality():
    from avloc.data.synthetic_llp import EMBEDDED, _Prototypes, clip_features

    cfg = load_config("llp_demo", ["data.synth_noise=0"]).data
    rng = np.random.default_rng(1)
    protos = _Prototypes(cfg, rng)
    events = [Segment(2.0, 5.0, "Dog", "audio"), Segment(6.0, 9.0, "Car", "visual")]
    audio, visual = clip_features(protos, events, cfg, np.random.default_rng(2))
    dog, car = LLP_CLASSES.index("Dog"), LLP_CLASSES.index("Car")
    heard = audio @ protos.audio[dog] - audio[0] @ protos.audio[dog]  # (10,) over the ambient
    seen = visual @ protos.visual[car] - visual[0] @ protos.visual[car]
    assert np.flatnonzero(np.abs(heard) > 1e-3).tolist() == [2, 3, 4]
    assert np.flatnonzero(np.abs(seen) > 1e-3).tolist() == [6, 7, 8]
    assert EMBEDDED.modality_counts[0][0] > EMBEDDED.modality_counts[0][1]  # speech: heard


def test_synthetic_on_the_real_files_uses_their_clips_labels_and_events(llp_dir):
    cfg = load_config("llp_demo", ["data.synth_videos=50"]).data
    ds = load_dataset(cfg, llp_dir)
    ann = read_llp_annotations(llp_dir)
    assert [v.vid for v in ds.splits["train"]] == [c for c, _ in ann.lists["train"][:50]]
    assert [v.vid for v in ds.splits["test"]] == [c for c, _ in ann.lists["test"]]
    for v, (clip, labels) in zip(ds.splits["val"], ann.lists["val"], strict=True):
        assert v.vid == clip
        assert {LLP_CLASSES[i] for i in np.flatnonzero(v.labels)} == set(labels)
        assert ds.annotations[clip].segments == ann.events[clip]
