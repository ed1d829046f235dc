"""`avloc plot`: class activation sequences, attention maps, training curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from avloc.cli import main
from avloc.config import Config, load_config
from avloc.data.base import Annotation, Dataset, Segment
from avloc.report import curves as C
from avloc.report import figures as F
from avloc.report import loaded as R
from avloc.report import plot as P
from avloc.runs import layout
from avloc.scoring.predict import VideoPrediction
from avloc.util.errors import AvlocError

TINY = ["data.synth_videos=24", "data.synth_background_videos=4", "data.synth_classes=3",
        "data.synth_audio_dim=12", "data.synth_visual_dim=12", "model.d_x=16",
        "train.epochs=2", "train.batch_size=8", "train.similar_pairs=1", "train.progress=false",
        "train.device=cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny trained runs, laid out like `avloc reproduce` output: full and visual-only."""
    from avloc.train import train

    out = tmp_path_factory.mktemp("plots")
    dirs = {"full": out / "runs" / "full" / "seed0",
            "visual": out / "runs" / "visual" / "seed0"}
    train(load_config("demo", TINY + ["model.stages=1"]), None, dirs["full"])
    train(load_config("demo", TINY + ["model.modality=visual", "model.stages=0"]), None,
          dirs["visual"])
    return {**dirs, "out": out}


def _image(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img[..., :3].std() > 0.05  # not blank
    return img


def test_cas_figure_two_models(runs, tmp_path: Path, capsys):
    out = P.plot("cas", [str(runs["full"])], tmp_path / "cas.png", compare=str(runs["visual"]))
    img = _image(out)
    assert img.shape[0] > 500 and img.shape[1] > 900  # five strips and the mu panel
    said = capsys.readouterr().out
    assert "the test video where full (seed 0) localizes best relative to visual (seed 0)" in said


def test_cas_figure_named_video_through_the_cli(runs, tmp_path: Path, capsys):
    out = tmp_path / "fig.png"
    assert main(["plot", "cas", str(runs["full"]), "--video", "test_00001",
                 "--out", str(out)]) == 0
    _image(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_unknown_video_is_one_line(runs, tmp_path: Path, capsys):
    code = main(["plot", "cas", str(runs["full"]), "--video", "nope", "--out",
                 str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "video 'nope': not in the data" in err
    assert not (tmp_path / "x.png").exists()


def test_bad_output_name_fails_first(tmp_path: Path):
    with pytest.raises(AvlocError, match="--out .*fig.jpeg: a figure file ends in .png"):
        P.plot("cas", [str(tmp_path / "no-such-run")], tmp_path / "fig.jpeg")


def test_attention_rows_are_distributions(runs, tmp_path: Path):
    run = R.load_run(runs["full"])
    ds = R.load_data(run, None)
    video = ds.splits["test"][0]
    attn = F.attention_matrix(run, video)
    assert attn.shape == (video.length, video.length)
    assert (attn >= 0).all()
    np.testing.assert_allclose(attn.sum(axis=1), 1.0, atol=1e-5)
    _image(F.attention_figure(ds, run, video.vid, tmp_path / "attn.png"))
    with pytest.raises(AvlocError, match=r"visual \(seed 0\): has no cross attention"):
        P.plot("attention", [str(runs["visual"])], tmp_path / "a.png", video=video.vid)


def test_curves_from_a_reproduce_folder(runs, tmp_path: Path):
    groups = C.find_runs([runs["out"]])
    assert groups == {"full": [runs["full"]], "visual": [runs["visual"]]}
    _image(P.plot("curves", [str(runs["out"])], tmp_path / "curves.png"))
    with pytest.raises(AvlocError, match="no training log here"):
        C.find_runs([tmp_path])


def test_read_log_keeps_the_last_record_of_a_replayed_epoch(tmp_path: Path):
    lines = [{"epoch": 1, "loss_loss": 3.0}, {"epoch": 2, "loss_loss": 2.0},
             {"epoch": 2, "loss_loss": 1.5}]
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"epoch": 3, "loss'  # cut by a kill
    (tmp_path / "log.jsonl").write_text(text)
    assert layout.read_log(tmp_path) == [lines[0], lines[2]]


def _dataset(task: str) -> Dataset:
    ann = Annotation("v", 8.0, [Segment(2.0, 5.0, "b")], np.array([0, 0, 2, 2, 2, 0, 0, 0]))
    return Dataset("toy", task, ["a", "b"], 1.0, {"test": []}, {"v": ann})


def _prediction() -> VideoPrediction:
    p = np.full((8, 3), 0.05)  # (T, C+1): background, a, b
    p[:, 0] = 0.9
    p[1:4, 2], p[1:4, 0] = 0.9, 0.05  # class b on snippets 1-3
    p[6, 1], p[6, 0] = 0.9, 0.05  # class a on snippet 6
    return VideoPrediction("v", p, 1 - p[:, 0])


def test_predicted_segments_event_and_action():
    pred, cfg = _prediction(), Config()
    assert F.predicted_segments(_dataset("event"), cfg, pred, 1) == [(1.0, 4.0)]
    assert F.predicted_segments(_dataset("event"), cfg, pred, 0) == [(6.0, 7.0)]
    # action data: W-TALC thresholding, as the evaluation does (class a: too short, filtered)
    assert F.predicted_segments(_dataset("action"), cfg, pred, 1) == [(1.0, 4.0)]
    assert F.target_class(_dataset("event"), "v", pred.p) == 1


def test_ground_truth_snippets_are_those_the_labels_score():
    """A segment off the snippet grid: the figures' choice of video (its ground-truth strip
    as snippets) and the scored event labels count the same snippets (by snippet start)."""
    from avloc.data.base import snippets_in_any  # the figures' ground-truth strip
    from avloc.data.checks import snippet_labels_from_segments

    seg = Segment(0.4, 2.4, "a")  # snippet starts 0, 1, 2, 3: snippets 1 and 2 (centres: 0, 1)
    labels = snippet_labels_from_segments([seg], 4, 1.0, ["a"], "test")
    np.testing.assert_array_equal(snippets_in_any([(seg.start, seg.end)], 4, 1.0), labels > 0)
    np.testing.assert_array_equal(labels, [0, 1, 1, 0])


def test_cas_without_test_videos_suggests_video(tmp_path: Path, capsys):
    """Own data without a testing subset: the default (the best test video) cannot exist,
    so the error names --video and a video to try; that video then plots."""
    from test_data_generic import _doc, write_generic

    from avloc.train import train

    database = {f"v{i}": ("training", 6.0, [(1.0, 4.0, "ab"[i % 2])]) for i in range(6)}
    data = write_generic(tmp_path / "mine", _doc(database))
    train(load_config("demo", ["data.format=generic", "model.d_x=8", "train.epochs=1",
                               "train.progress=false", "data.val_fraction=0.34"]),
          data, tmp_path / "run")
    args = ["plot", "cas", str(tmp_path / "run"), "--data", str(data), "--out",
            str(tmp_path / "cas.png")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no test video with annotated segments to pick from; name the video to show with " \
           "--video VID (e.g. --video v" in err and err.count("\n") == 1
    vid = err.split("--video ")[-1].rstrip(")\n")
    assert main([*args, "--video", vid]) == 0
    _image(tmp_path / "cas.png")
