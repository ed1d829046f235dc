"""Snippets to labels (AVE) and to segments (W-TALC two-stage thresholding)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from avloc.config import LocalizeConfig, load_config
from avloc.scoring.anet_json import parse_ground_truth, predictions_from_results, results_json
from avloc.scoring.metrics import detection_map
from avloc.scoring.segments import (
    _moving_average,
    argmax_labels,
    segments_from_cas,
    video_class_scores,
)
from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic

CLASSES = ["run", "swim", "jump"]
LOW, HIGH = 0.1, 0.9


def test_argmax_labels_with_background():
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_array_equal(argmax_labels(p), [0, 1, 2])
    assert argmax_labels(p).dtype == np.int64


def test_video_class_scores_top_k_mean():
    cas = np.arange(20, dtype=float)[:, None] * np.array([1.0, -1.0])  # (20, 2)
    # k = ceil(20 / 8) = 3: class 0 -> mean(19, 18, 17); class 1 -> mean(0, -1, -2)
    np.testing.assert_allclose(video_class_scores(cas, 8), [18.0, -1.0])
    np.testing.assert_allclose(video_class_scores(cas[:3], 8), [2.0, 0.0])  # k >= 1


def _cas(t: int, runs: dict[int, list[tuple[int, int]]]) -> np.ndarray:
    """(T, 3) activations: HIGH on the given [s, e) snippet runs of each class, LOW elsewhere."""
    cas = np.full((t, len(CLASSES)), LOW)
    for c, spans in runs.items():
        for s, e in spans:
            cas[s:e, c] = HIGH
    return cas


def test_runs_become_segments_in_seconds():
    cas = _cas(20, {0: [(3, 8), (12, 14), (17, 18)]})  # the last run is one snippet long
    scores = np.array([0.8, 0.1, 0.1])
    out = segments_from_cas(cas, scores, 0.5, CLASSES)
    assert [d["segment"] for d in out] == [[1.5, 4.0], [6.0, 7.0]]
    assert all(d["label"] == "run" for d in out)
    # score = max activation inside + 0.7 * video score
    assert out[0]["score"] == pytest.approx(HIGH + 0.7 * 0.8)


def test_min_snippets_and_run_at_the_edges():
    cas = _cas(10, {0: [(0, 1), (8, 10)]})
    cfg = LocalizeConfig(min_snippets=1)
    out = segments_from_cas(cas, np.array([1.0, 0, 0]), 1.0, CLASSES, cfg)
    assert sorted(d["segment"] for d in out) == [[0.0, 1.0], [8.0, 10.0]]


def test_relative_threshold_is_per_class():
    # class 0 peaks at 0.3 over a floor of 0.1: the threshold is 0.2, so 0.25 counts
    cas = np.full((12, 3), 0.1)
    cas[2:5, 0] = 0.25
    cas[8:11, 0] = 0.3
    cas[4:7, 1] = 0.15  # class 1: threshold 0.1 + 0.5 (0.2 - 0.1) = 0.15, not exceeded here
    cas[5, 1] = 0.2  # ... only snippet 5 is above it: a one-snippet run, too short
    out = segments_from_cas(cas, np.array([0.5, 0.5, 0.0]), 1.0, CLASSES)
    assert [(d["label"], d["segment"]) for d in out] == [("run", [8.0, 11.0]), ("run", [2.0, 5.0])]
    high = LocalizeConfig(act_threshold=0.9)  # 0.1 + 0.9 * 0.2 = 0.28: only the 0.3 run
    out = segments_from_cas(cas, np.array([0.5, 0.5, 0.0]), 1.0, CLASSES, high)
    assert [d["segment"] for d in out] == [[8.0, 11.0]]


def test_threshold_is_strict():
    # min 0, max 1, t = 0.5: the threshold is exactly 0.5 and snippets at 0.5 stay out (W-TALC >)
    cas = np.zeros((10, 3))
    cas[1:8, 0] = 0.5
    cas[3:6, 0] = 1.0
    out = segments_from_cas(cas, np.array([1.0, 0, 0]), 1.0, CLASSES)
    assert [d["segment"] for d in out] == [[3.0, 6.0]]


def test_class_filter_keeps_a_class_at_the_mean():
    cas = _cas(10, {0: [(1, 4)], 1: [(5, 8)], 2: [(2, 6)]})
    out = segments_from_cas(cas, np.array([1.0, 0.5, 0.0]), 1.0, CLASSES)  # mean 0.5
    assert sorted(d["label"] for d in out) == ["run", "swim"]


def test_constant_sequence_gives_nothing():
    out = segments_from_cas(np.full((8, 3), 0.4), np.full(3, 0.4), 1.0, CLASSES)
    assert out == []


def test_class_filter_mean():
    cas = _cas(10, {0: [(1, 4)], 1: [(5, 8)], 2: [(2, 6)]})
    scores = np.array([0.9, 0.8, 0.1])  # mean 0.6: class 2 is dropped
    out = segments_from_cas(cas, scores, 1.0, CLASSES)
    assert sorted(d["label"] for d in out) == ["run", "swim"]
    out = segments_from_cas(cas, scores, 1.0, CLASSES, LocalizeConfig(class_filter="none"))
    assert sorted(d["label"] for d in out) == ["jump", "run", "swim"]
    jump = [d for d in out if d["label"] == "jump"][0]
    assert jump["segment"] == [2.0, 6.0] and jump["score"] == pytest.approx(HIGH + 0.07)


def test_sorted_by_score():
    cas = _cas(10, {0: [(1, 4)], 1: [(5, 8)]})
    out = segments_from_cas(cas, np.array([0.5, 0.9, 0.0]), 1.0, CLASSES)
    assert [d["label"] for d in out] == ["swim", "run"]
    assert out[0]["score"] > out[1]["score"]


def test_clipped_to_duration():
    cas = _cas(10, {0: [(5, 10)], 1: [(9, 10)]})
    cfg = LocalizeConfig(min_snippets=1)
    scores = np.array([1.0, 1.0, 0])
    # 10 snippets of 0.64 s = 6.4 s of features for a shorter video: ends are clipped
    out = segments_from_cas(cas, scores, 0.64, CLASSES, cfg, duration=5.9)
    got = sorted((d["label"], d["segment"]) for d in out)
    assert got == [("run", [pytest.approx(3.2), 5.9]), ("swim", [pytest.approx(5.76), 5.9])]
    # the swim run starts at 5.76 s, after the end of a 5.7 s video: dropped
    out = segments_from_cas(cas, scores, 0.64, CLASSES, cfg, duration=5.7)
    assert [(d["label"], d["segment"][1]) for d in out] == [("run", 5.7)]


def test_smoothing_fills_a_one_snippet_gap():
    cas = _cas(12, {0: [(2, 5), (6, 9)]})  # a dip at snippet 5
    scores = np.array([1.0, 0, 0])
    assert len(segments_from_cas(cas, scores, 1.0, CLASSES)) == 2
    out = segments_from_cas(cas, scores, 1.0, CLASSES, LocalizeConfig(smooth=3))
    assert [d["segment"] for d in out] == [[2.0, 9.0]]


def test_moving_average():
    x = np.array([[0.0], [3.0], [6.0], [3.0]])
    np.testing.assert_allclose(_moving_average(x, 3)[:, 0], [1.5, 3.0, 4.0, 4.5])  # ends: 2 taps
    np.testing.assert_allclose(_moving_average(x, 2)[:, 0], [1.5, 4.5, 4.5, 3.0])
    assert _moving_average(x, 1) is x


def test_multi_threshold_and_nms():
    cas = np.full((20, 3), 0.0)
    cas[2:12, 0] = 0.6
    cas[5:9, 0] = 1.0  # a peak inside a plateau
    scores = np.array([1.0, 0.0, 0.0])
    multi = LocalizeConfig(act_threshold=0.5, act_threshold_step=0.2)  # t = 0.5, 0.7, 0.9
    out = segments_from_cas(cas, scores, 1.0, CLASSES, multi)
    # t = 0.5 -> [2, 12); t = 0.7 and 0.9 -> [5, 9) (found twice, kept once)
    assert sorted(d["segment"] for d in out) == [[2.0, 12.0], [5.0, 9.0]]
    # tIoU([5, 9], [2, 12]) = 0.4: NMS at 0.3 keeps only the best-scored; at 0.5 keeps both
    out = segments_from_cas(cas, scores, 1.0, CLASSES, replace(multi, nms_iou=0.3))
    assert len(out) == 1
    out = segments_from_cas(cas, scores, 1.0, CLASSES, replace(multi, nms_iou=0.5))
    assert len(out) == 2


def test_nms_is_per_class():
    cas = _cas(10, {0: [(2, 6)], 1: [(2, 6)]})
    cfg = LocalizeConfig(nms_iou=0.1)
    out = segments_from_cas(cas, np.array([1.0, 1.0, 0]), 1.0, CLASSES, cfg)
    assert sorted(d["label"] for d in out) == ["run", "swim"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("class_filter", "max"), ("act_threshold", 1.5), ("smooth", 0), ("min_snippets", 0),
     ("nms_iou", 1.0), ("act_threshold_step", -0.1), ("segment_score", "mean"),
     ("oic_inflation", -0.5)],
)
def test_bad_settings(field, value):
    """Refused when the settings load (config.validate), not when segments are first made."""
    with pytest.raises(AvlocError, match=f"localize.{field}"):
        load_config("demo", [f"localize.{field}={value}"])


def naive_oic(cas, c, start, end, inflation):
    """BaS-Net's get_proposal_oic for one run [start, end) of class c, written out."""
    length = end - start
    outer_s = max(0, int(start - inflation * length))
    outer_e = min(len(cas), int(end + inflation * length))
    outer = [cas[t, c] for t in range(outer_s, start)] + [cas[t, c] for t in range(end, outer_e)]
    inner = sum(cas[t, c] for t in range(start, end)) / length
    return inner - (sum(outer) / len(outer) if outer else 0.0)


@pytest.mark.parametrize("inflation", [0.25, 1.0])
def test_oic_scores_match_the_outer_inner_contrast_written_out(inflation):
    rng = np.random.default_rng(0)
    cas = rng.random((40, 3))  # (T, C) noisy: many runs, some at the video's ends
    scores = np.array([0.8, 0.5, 0.1])
    cfg = LocalizeConfig(class_filter="none", min_snippets=1, segment_score="oic",
                         oic_inflation=inflation, score_weight=0.2)
    out = segments_from_cas(cas, scores, 1.0, CLASSES, cfg)
    assert len(out) > 10
    for d in out:
        c, (a, b) = CLASSES.index(d["label"]), (int(d["segment"][0]), int(d["segment"][1]))
        want = naive_oic(cas, c, a, b, inflation) + 0.2 * scores[c]
        assert d["score"] == pytest.approx(want, abs=1e-12)
    # the same segments as max scoring, ranked differently
    plain = segments_from_cas(cas, scores, 1.0, CLASSES, replace(cfg, segment_score="max"))
    assert sorted(map(tuple, (d["segment"] for d in out))) == sorted(
        map(tuple, (d["segment"] for d in plain)))


def test_oic_ranks_a_run_as_high_as_its_surroundings_last():
    cas = np.full((30, 3), LOW)
    cas[2:6, 0] = HIGH  # a clear peak
    cas[10:30, 0] = 0.85  # a long plateau with a higher bump on it
    cas[14:18, 0] = 0.95
    cfg = LocalizeConfig(class_filter="none", min_snippets=1, act_threshold=0.9)
    scores = np.array([0.5, 0.1, 0.1])
    by_max = segments_from_cas(cas, scores, 1.0, CLASSES, cfg)
    by_oic = segments_from_cas(cas, scores, 1.0, CLASSES, replace(cfg, segment_score="oic"))
    assert [d["segment"] for d in by_max] == [[14.0, 18.0], [2.0, 6.0]]
    assert [d["segment"] for d in by_oic] == [[2.0, 6.0], [14.0, 18.0]]


def test_shape_mismatch():
    with pytest.raises(ValueError, match="C = 3"):
        segments_from_cas(np.zeros((4, 2)), np.zeros(2), 1.0, CLASSES)
    assert segments_from_cas(np.zeros((0, 3)), np.zeros(3), 1.0, CLASSES) == []


def test_results_json_scores_perfectly(tmp_path):
    """Localize -> results JSON -> official reader -> mAP: exact runs give AP 1."""
    durations = {"a": 10.0, "b": 8.0}
    per_video = {
        "a": segments_from_cas(_cas(20, {0: [(4, 10)]}), np.array([1.0, 0, 0]), 0.5, CLASSES,
                               duration=durations["a"]),
        "b": segments_from_cas(_cas(16, {1: [(0, 6)], 2: [(10, 16)]}), np.array([0, 1.0, 1.0]),
                               0.5, CLASSES, duration=durations["b"]),
    }
    path = tmp_path / "results.json"
    write_json_atomic(path, results_json(per_video))
    data = json.loads(path.read_text())
    assert set(data) == {"version", "results", "external_data"}
    assert data["results"]["a"] == [{"label": "run", "score": pytest.approx(HIGH + 0.7),
                                     "segment": [2.0, 5.0]}]
    gt = parse_ground_truth({"database": {
        "a": {"duration": 10.0, "annotations": [{"segment": [2.0, 5.0], "label": "run"}]},
        "b": {"duration": 8.0, "annotations": [{"segment": [0.0, 3.0], "label": "swim"},
                                               {"segment": [5.0, 8.0], "label": "jump"}]},
    }}, "gt")
    m = detection_map(gt, predictions_from_results(data["results"]))
    assert m["average_mAP"] == 1.0


def test_event_segments_are_runs_of_argmax_classes():
    from avloc.scoring.segments import event_segments

    p = np.zeros((7, 3))
    p[:, 0] = 0.6  # background wins where nothing else is set
    p[1:3, 1] = [0.8, 0.9]
    p[4:7, 2] = 0.7
    segs = event_segments(p, 0.5, ["a", "b"])
    assert [s["label"] for s in segs] == ["a", "b"]
    assert segs[0]["segment"] == [0.5, 1.5] and segs[1]["segment"] == [2.0, 3.5]
    assert segs[0]["score"] == pytest.approx(0.85)
    assert event_segments(np.tile([1.0, 0.0, 0.0], (4, 1)), 1.0, ["a", "b"]) == []
