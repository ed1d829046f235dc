"""`avloc data labels`: annotations.json from video-level labels (a CSV, LLP's TSV, a folder
per class), with durations from the features, the videos or the feature count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avloc.cli import main
from avloc.config import DataConfig
from avloc.data import load_dataset
from avloc.data.labels import read_class_folders, read_label_table, write_labels
from avloc.extract.store import write_features
from avloc.util.errors import AvlocError

# the first lines of the real LLP file (../shared/data/llp/AVVP_train.csv), as they are
LLP_HEAD = ("filename\tevent_labels\n"
            "BjCEufrlXm4_20_30\tSpeech,Dog\n"
            "7nSYwyaP4QE_50_60\tSinging,Banjo\n"
            "MVWVECUju4w_0_10\tAccordion\n"
            "GN3k_CvthEg_80_90\tBasketball_bounce,Speech\n")
GENERIC = DataConfig(format="generic")


def _features(folder: Path, vid: str, length: int, meta: dict | None = None) -> None:
    """`length` snippets; with `meta`, as `avloc extract` writes them, else bare arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(length)
    audio, visual = rng.standard_normal((length, 4)), rng.standard_normal((length, 3))
    if meta is None:
        np.savez(folder / f"{vid}.npz", audio=audio, visual=visual)
    else:
        write_features(folder / f"{vid}.npz", audio, visual, meta)


def _meta(duration: float, seconds: float = 1.0) -> dict:
    return {"duration": duration, "snippet_seconds": seconds, "audio_backend": "rms",
            "visual_backend": "meanrgb", "frames_per_snippet": 1}


# ---------------------------------------------------------------- listings


def test_llp_table_format(tmp_path: Path) -> None:
    path = tmp_path / "AVVP_train.csv"
    path.write_text(LLP_HEAD)
    rows = read_label_table(path)
    assert [(r.vid, r.labels) for r in rows] == [
        ("BjCEufrlXm4_20_30", ["Speech", "Dog"]), ("7nSYwyaP4QE_50_60", ["Singing", "Banjo"]),
        ("MVWVECUju4w_0_10", ["Accordion"]), ("GN3k_CvthEg_80_90", ["Basketball_bounce",
                                                                   "Speech"])]
    assert rows[2].where.endswith("AVVP_train.csv: line 4")


def test_real_llp_training_list(tmp_path: Path) -> None:
    from conftest import _shared

    rows = read_label_table(_shared("llp") / "AVVP_train.csv")
    assert len(rows) == 10_000
    assert (rows[0].vid, rows[0].labels) == ("BjCEufrlXm4_20_30", ["Speech", "Dog"])
    classes = {x for r in rows for x in r.labels}
    assert len(classes) == 25 and "Frying_(food)" in classes


def test_comma_table_header_comments_quotes_suffixes_and_no_label(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text("# my tags\nvideo,labels\nclip1.mp4,dog,speech\n\nclip2,\"cat, dog\"\n"
                    "quiet\nclip3.npz , dog , dog\n")
    rows = read_label_table(path)
    assert [(r.vid, r.labels) for r in rows] == [("clip1", ["dog", "speech"]),
                                                 ("clip2", ["cat", "dog"]), ("quiet", []),
                                                 ("clip3", ["dog"])]


@pytest.mark.parametrize("text, message", [
    ("a,dog\nb,cat\na,cat\n", r"tags\.csv: line 3: video a is listed again \(first on line 1\)"),
    ("a,dog\n../x,cat\n", r"tags\.csv: line 2: video id '\.\./x' cannot be used as a file name"),
    ("# nothing\nvideo,label\n", r"tags\.csv: lists no videos"),
])
def test_bad_tables(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "tags.csv").write_text(text)
    with pytest.raises(AvlocError, match=message):
        read_label_table(tmp_path / "tags.csv")


def test_class_folders(tmp_path: Path) -> None:
    files = {"dog": ["a.mp4", "b.mkv"], "speech": ["a.mp4", "c.npz", "notes.txt"]}
    for cls, names in files.items():
        (tmp_path / cls).mkdir()
        for name in names:
            (tmp_path / cls / name).write_bytes(b"")
    rows = {r.vid: r for r in read_class_folders(tmp_path)}
    assert {v: r.labels for v, r in rows.items()} == {"a": ["dog", "speech"], "b": ["dog"],
                                                      "c": ["speech"]}
    assert rows["c"].file == tmp_path / "speech" / "c.npz"
    (tmp_path / "loose.mp4").write_bytes(b"")
    with pytest.raises(AvlocError, match=r"loose\.mp4: outside the class folders"):
        read_class_folders(tmp_path)
    (tmp_path / "loose.mp4").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvlocError, match=r"empty: no video or \.npz files in this class folder"):
        read_class_folders(tmp_path)


# ---------------------------------------------------------------- durations and the JSON


def test_durations_from_meta_or_feature_count_and_the_result_loads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _features(data / "features", "clip1", 10, _meta(10.03))
    _features(data / "features", "clip2", 7, _meta(7.4))
    (tmp_path / "tags.csv").write_text("clip1,dog,speech\nclip2,cat\n")
    assert main(["data", "labels", "--csv", str(tmp_path / "tags.csv"),
                 "--out", str(data / "annotations.json")]) == 0
    doc = json.loads((data / "annotations.json").read_text())
    assert doc["classes"] == ["cat", "dog", "speech"] and doc["snippet_seconds"] == 1.0
    assert doc["database"]["clip1"] == {"subset": "training", "duration": 10.03,
                                        "labels": ["dog", "speech"]}
    ds = load_dataset(GENERIC, data)
    assert all(ds.annotations[v].weak for v in ("clip1", "clip2"))

    # features made elsewhere record nothing: T x --snippet-seconds
    _features(tmp_path / "bare", "clip1", 20)
    result = write_labels(tmp_path / "bare.json", tmp_path / "tags.csv",
                          features=tmp_path / "bare", snippet_seconds=0.5, skip_missing=True)
    assert [(v.vid, v.duration, v.source) for v in result.videos] == [
        ("clip1", 10.0, "feature length")]
    assert result.missing == ["clip2"] and result.doc["snippet_seconds"] == 0.5


def test_snippet_seconds_must_agree_with_the_features(tmp_path: Path) -> None:
    _features(tmp_path / "features", "a", 10, _meta(10.0, seconds=1.0))
    (tmp_path / "tags.csv").write_text("a,dog\nb,cat\n")
    out = tmp_path / "annotations.json"
    with pytest.raises(AvlocError, match=r"--snippet-seconds 0.64: the features were extracted "
                                         r"with 1 s snippets"):
        write_labels(out, tmp_path / "tags.csv", snippet_seconds=0.64, skip_missing=True)
    _features(tmp_path / "features", "b", 15, _meta(9.6, seconds=0.64))
    with pytest.raises(AvlocError, match=r"features of a have 1 s snippets but those of b 0.64 s"):
        write_labels(out, tmp_path / "tags.csv")
    assert not out.exists()


def test_missing_videos_stop_unless_skipped_and_no_partial_output(tmp_path: Path) -> None:
    _features(tmp_path / "features", "a", 10, _meta(10.0))
    (tmp_path / "tags.csv").write_text("a,dog\nb,cat\n")
    out = tmp_path / "annotations.json"
    with pytest.raises(AvlocError, match=r"tags\.csv: line 2: video b: no features or video "
                                         r"file found .*--skip-missing"):
        write_labels(out, tmp_path / "tags.csv")
    assert not out.exists()
    write_labels(out, tmp_path / "tags.csv", skip_missing=True)
    with pytest.raises(AvlocError, match=r"annotations\.json: already exists; --add"):
        write_labels(out, tmp_path / "tags.csv", skip_missing=True)


def test_add_weak_training_videos_to_annotated_test_videos(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _features(data / "features", "t1", 8, _meta(8.0))
    _features(data / "features", "w1", 10, _meta(10.0))
    (data / "annotations.json").write_text(json.dumps({"classes": ["dog"], "database": {
        "t1": {"subset": "testing", "duration": 8.0,
               "annotations": [{"segment": [1, 3], "label": "dog"}]}}}))
    (tmp_path / "tags.csv").write_text("w1,speech,dog\n")
    write_labels(data / "annotations.json", tmp_path / "tags.csv", add=True)
    doc = json.loads((data / "annotations.json").read_text())
    assert doc["classes"] == ["dog", "speech"] and doc["snippet_seconds"] == 1.0
    ds = load_dataset(GENERIC, data)
    assert [v.vid for v in ds.splits["test"]] == ["t1"] and not ds.annotations["t1"].weak
    assert [v.vid for v in ds.splits["train"]] == ["w1"] and ds.annotations["w1"].weak
    with pytest.raises(AvlocError, match=r"annotations\.json: already lists video w1"):
        write_labels(data / "annotations.json", tmp_path / "tags.csv", add=True)


def test_labels_cli_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["data", "labels", "--csv", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "a.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.csv: missing file" in err


# ---------------------------------------------------------------- the real clip


def test_llp_names_and_class_folders_find_the_real_clip(tmp_path: Path, real_video: Path,
                                                        capsys) -> None:
    """LLP lists the clip as BjCEufrlXm4_20_30; the file is BjCEufrlXm4.mp4 (10.03 s)."""
    pytest.importorskip("av")
    (tmp_path / "AVVP_train.csv").write_text(LLP_HEAD)
    out = tmp_path / "data" / "annotations.json"
    out.parent.mkdir()
    assert main(["data", "labels", "--csv", str(tmp_path / "AVVP_train.csv"), "--videos",
                 str(real_video.parent), "--out", str(out), "--skip-missing"]) == 0
    assert "left out 3 listed videos" in capsys.readouterr().out
    entry = json.loads(out.read_text())["database"]["BjCEufrlXm4"]
    assert entry["labels"] == ["Speech", "Dog"] and entry["duration"] == pytest.approx(10.03,
                                                                                      abs=0.02)
    for cls in ("Dog", "Speech"):
        (tmp_path / "byclass" / cls).mkdir(parents=True)
        shutil.copy(real_video, tmp_path / "byclass" / cls)
    result = write_labels(tmp_path / "f.json", folders=tmp_path / "byclass")
    assert [(v.vid, v.labels, v.source) for v in result.videos] == [
        ("BjCEufrlXm4", ["Dog", "Speech"], "video")]


def test_real_clip_from_tags_to_a_trained_model_through_the_cli(tmp_path: Path, real_video: Path,
                                                               capsys, one_torch_thread) -> None:
    """README's walkthrough on the real clip (diagnostic back-ends, so it is quick): extract,
    LLP's list -> annotations.json (durations from the .npz meta), train on tags alone
    (said: no validation videos), localize; extracting again on another grid says why."""
    pytest.importorskip("av")
    (tmp_path / "videos").mkdir()
    shutil.copy(real_video, tmp_path / "videos")
    (tmp_path / "AVVP_train.csv").write_text(LLP_HEAD)
    data, back = tmp_path / "mydata", ["--audio-backend", "rms", "--visual-backend", "meanrgb"]
    assert main(["extract", str(tmp_path / "videos"), "--out", str(data / "features"),
                 *back]) == 0
    assert main(["data", "labels", "--csv", str(tmp_path / "AVVP_train.csv"), "--out",
                 str(data / "annotations.json"), "--skip-missing"]) == 0
    capsys.readouterr()
    entry = json.loads((data / "annotations.json").read_text())["database"]["BjCEufrlXm4"]
    assert entry["labels"] == ["Speech", "Dog"] and 10.0 <= entry["duration"] <= 10.1
    run = tmp_path / "runs" / "mine"
    assert main(["train", "--config", "demo", "--data", str(data), "--out", str(run),
                 "data.format=generic", "model.d_x=8", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "avloc: no validation videos (all 1 training videos have video-level labels only" \
        in out and "val" not in json.loads((run / "metrics.json").read_text())
    assert main(["localize", str(tmp_path / "videos" / "BjCEufrlXm4.mp4"), "--checkpoint",
                 str(run), "--out", str(tmp_path / "results")]) == 0
    assert (tmp_path / "results" / "BjCEufrlXm4_segments.json").is_file()
    assert main(["extract", str(tmp_path / "videos"), "--out", str(data / "features"), *back,
                 "--snippet-seconds", "0.64"]) == 1
    assert "snippet_seconds 1.0 (now 0.64); --overwrite re-extracts it" in capsys.readouterr().err


def test_real_clip_parsing_path_tags_to_events_through_the_cli(tmp_path: Path, real_video: Path,
                                                              capsys, one_torch_thread) -> None:
    """README's parsing walkthrough on the real clip (diagnostic back-ends, so it is quick):
    extract, tags -> annotations.json with --task parsing, a hand-annotated test clip with
    per-modality events, train the parsing head, localize: audio and visual events; eval
    --out's files scored by avloc score give eval's numbers."""
    pytest.importorskip("av")
    (tmp_path / "videos").mkdir()
    for name in ("BjCEufrlXm4", "clip2", "clip3", "test1"):
        shutil.copy(real_video, tmp_path / "videos" / f"{name}.mp4")
    data, back = tmp_path / "mydata", ["--audio-backend", "rms", "--visual-backend", "meanrgb"]
    assert main(["extract", str(tmp_path / "videos"), "--out", str(data / "features"),
                 *back]) == 0
    (tmp_path / "tags.csv").write_text("BjCEufrlXm4,Speech,Dog\nclip2,Speech\nclip3,Dog\n")
    assert main(["data", "labels", "--csv", str(tmp_path / "tags.csv"), "--task", "parsing",
                 "--out", str(data / "annotations.json")]) == 0
    doc = json.loads((data / "annotations.json").read_text())
    assert doc["task"] == "parsing"
    doc["database"]["test1"] = {"subset": "testing", "duration": 10.0, "annotations": [
        {"segment": [0, 10], "label": "Speech", "modality": "audio"},
        {"segment": [3, 7], "label": "Dog", "modality": "audio"},
        {"segment": [0, 10], "label": "Dog", "modality": "visual"}]}
    (data / "annotations.json").write_text(json.dumps(doc))
    run = tmp_path / "runs" / "parse"
    assert main(["train", "--config", "llp_demo", "--data", str(data), "--out", str(run),
                 "data.format=generic", "model.d_x=8", "train.epochs=2"]) == 0
    assert "(LLP protocol)" in capsys.readouterr().out  # the closing summary
    assert main(["localize", str(tmp_path / "videos" / "BjCEufrlXm4.mp4"), "--checkpoint",
                 str(run), "--out", str(tmp_path / "loc")]) == 0
    out = capsys.readouterr().out
    assert out.count("parsing events decided at thresholds") == 1 and "modality" in out
    results = json.loads((tmp_path / "loc" / "results.json").read_text())
    assert results["avloc"]["task"] == "parsing" and "thresholds" in results["avloc"]
    assert all(e["modality"] in ("audio", "visual") for e in results["results"]["BjCEufrlXm4"])
    assert main(["eval", str(run), "--out", str(tmp_path / "ev"), "--json",
                 str(tmp_path / "m.json")]) == 0  # the run's own data: no --data
    assert main(["score", str(tmp_path / "ev" / "ground_truth.json"),
                 str(tmp_path / "ev" / "results.json"), "--json", str(tmp_path / "s.json")]) == 0
    m, s = (json.loads((tmp_path / f).read_text()) for f in ("m.json", "s.json"))
    for level in ("segment_level", "event_level"):
        assert s[level] == pytest.approx(m[level], abs=1e-12)
