"""Evaluation: AVE snippet accuracy, ActivityNet detection mAP and the JSON readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avloc.data.base import Annotation, Segment
from avloc.scoring.anet_json import (
    GroundTruth,
    Predictions,
    ground_truth_from_annotations,
    parse_ground_truth,
    read_ground_truth,
    read_predictions,
    results_json,
)
from avloc.scoring.metrics import (
    TIOU,
    detection_map,
    interpolated_ap,
    oracle_accuracy,
    range_averages,
    score_files,
    snippet_accuracy,
)
from avloc.scoring.reports import format_map_table, format_scope
from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic

KEYS = ["0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90", "0.95"]


# ---------------------------------------------------------------------------------------
# a naive reference: the official per-prediction loop (Evaluation/eval_detection.py), as
# plain Python over the same arrays the official pandas code hands to NumPy


def _official_iou(target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    tt1 = np.maximum(target[0], candidates[:, 0])
    tt2 = np.minimum(target[1], candidates[:, 1])
    inter = (tt2 - tt1).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter.astype(float) / union


def _official_interp(prec: np.ndarray, rec: np.ndarray) -> float:
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _argsort(values: np.ndarray, ties: str) -> np.ndarray:
    return values.argsort() if ties == "official" else values.argsort(kind="stable")


def naive_ap(gt: GroundTruth, preds: Predictions, thresholds=TIOU, ties="official"):
    """(K, C) AP, classes in first-appearance order; one prediction at a time.

    As the official code: every prediction of the class counts (also on videos outside
    the ground truth: false positives); ranking `scores.argsort()[::-1]` over the class's
    predictions in file order; instances visited by `tiou.argsort()[::-1]`, stopping at the
    first one with `tiou < threshold`. ties="stable" swaps in stable sorts.
    """
    classes = list(dict.fromkeys(gt.label.tolist()))
    ap = np.zeros((len(thresholds), len(classes)))
    for ci, c in enumerate(classes):
        gidx = [i for i in range(len(gt.label)) if gt.label[i] == c]
        pidx = np.array([i for i in range(len(preds.label)) if preds.label[i] == c], dtype=int)
        if not len(pidx):
            continue
        scores = preds.score[pidx]
        if ties == "official":
            pidx = pidx[scores.argsort()[::-1]]
        else:
            pidx = pidx[np.argsort(-scores, kind="stable")]
        lock = -np.ones((len(thresholds), len(gidx)))
        tp = np.zeros((len(thresholds), len(pidx)))
        fp = np.zeros((len(thresholds), len(pidx)))
        for idx, p in enumerate(pidx):
            mine = [j for j in range(len(gidx)) if gt.video[gidx[j]] == preds.video[p]]
            if not mine:
                fp[:, idx] = 1
                continue
            tiou = _official_iou(preds.segment[p], gt.segment[[gidx[j] for j in mine]])
            for t, thr in enumerate(thresholds):
                for jdx in _argsort(tiou, ties)[::-1]:
                    if tiou[jdx] < thr:
                        fp[t, idx] = 1
                        break
                    if lock[t, mine[jdx]] >= 0:
                        continue
                    tp[t, idx] = 1
                    lock[t, mine[jdx]] = idx
                    break
                if fp[t, idx] == 0 and tp[t, idx] == 0:
                    fp[t, idx] = 1
        tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
        for t in range(len(thresholds)):
            ap[t, ci] = _official_interp(tp_c[t] / (tp_c[t] + fp_c[t]), tp_c[t] / len(gidx))
    return ap


def assert_matches_reference(gt, preds, thresholds=TIOU, ties="official"):
    m = detection_map(gt, preds, thresholds, ties)
    ref = naive_ap(gt, preds, thresholds, ties)
    got = np.array([m["per_class_AP"][c] for c in gt.classes]).T  # (K, C)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(list(m["mAP"].values()), ref.mean(axis=1))
    assert m["average_mAP"] == ref.mean(axis=1).mean()
    return m


# ---------------------------------------------------------------------------------------
# helpers


def make_gt(rows, durations=None) -> GroundTruth:
    """rows: (video, start, end, label); every video lasts 100 s unless given."""
    vids = dict.fromkeys(r[0] for r in rows)
    durations = durations or {v: 100.0 for v in vids}
    db = {v: {"duration": d, "annotations": []} for v, d in durations.items()}
    for v, s, e, label in rows:
        db[v]["annotations"].append({"segment": [s, e], "label": label})
    return parse_ground_truth({"database": db}, "gt.json")


def make_preds(rows) -> Predictions:
    """rows: (video, start, end, label, score)."""
    return Predictions(
        video=np.array([r[0] for r in rows], dtype=object),
        segment=np.array([[r[1], r[2]] for r in rows], dtype=np.float64).reshape(-1, 2),
        label=np.array([r[3] for r in rows], dtype=object),
        score=np.array([r[4] for r in rows], dtype=np.float64),
        source="pred.json",
    )


def ap_of(metrics, label) -> np.ndarray:
    return np.array(metrics["per_class_AP"][label])


# ---------------------------------------------------------------------------------------
# hand-worked cases


def test_perfect_predictions_score_one():
    rows = [("v1", 0, 10, "A"), ("v1", 20, 30, "A"), ("v2", 5, 50, "B"), ("v3", 1, 2, "A")]
    gt = make_gt(rows)
    preds = make_preds([(v, s, e, c, 1.0) for v, s, e, c in rows])
    m = detection_map(gt, preds)
    assert list(m["mAP"]) == KEYS
    assert all(v == 1.0 for v in m["mAP"].values())
    assert m["average_mAP"] == 1.0
    assert set(m["per_class_AP"]) == {"A", "B"}


def test_duplicate_detection_is_a_false_positive():
    gt = make_gt([("v", 0, 10, "A"), ("v", 20, 30, "A")])
    # TP, duplicate (FP), TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    preds = make_preds([("v", 0, 10, "A", 0.9), ("v", 0, 10, "A", 0.8), ("v", 20, 30, "A", 0.7)])
    # envelope: 1 on (0, 1/2], 2/3 on (1/2, 1] -> AP = 1/2 + 1/3
    np.testing.assert_allclose(ap_of(detection_map(gt, preds), "A"), 5 / 6)


def test_lower_scored_match_does_not_steal_a_taken_instance():
    gt = make_gt([("v", 0, 10, "A")])
    # tIoU 0.78 at score 0.9, then a perfect segment at 0.5
    preds = make_preds([("v", 0, 7.8, "A", 0.9), ("v", 0, 10, "A", 0.5)])
    ap = ap_of(detection_map(gt, preds), "A")
    # thresholds <= 0.75: the first takes the instance, the perfect one is a FP -> AP 1
    np.testing.assert_allclose(ap[:6], 1.0)
    # thresholds >= 0.80: the first is a FP, the second matches at precision 1/2 -> AP 1/2
    np.testing.assert_allclose(ap[6:], 0.5)


def test_match_goes_to_highest_tiou_free_instance():
    gt = make_gt([("v", 0, 10, "A"), ("v", 5, 15, "A")])
    # p1 overlaps both, best with [0, 10]; p2 wants [0, 10] (taken), its tIoU with [5, 15]
    # is 6/14 < 0.5 -> FP; p3 matches [5, 15]
    preds = make_preds(
        [("v", 0, 10, "A", 0.9), ("v", 1, 11, "A", 0.8), ("v", 5, 15, "A", 0.7)]
    )
    # TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 5/6
    np.testing.assert_allclose(ap_of(detection_map(gt, preds), "A"), 5 / 6)


@pytest.mark.parametrize("ties", ["official", "stable"])
def test_equal_tiou_visits_instances_in_the_reversed_argsort_order(ties):
    # p1 has tIoU 9.5 / 10.5 ~ 0.905 with both instances. The visiting order is
    # tiou.argsort()[::-1]: for two equal values NumPy's sorts keep them in place, so the
    # later one ([1, 11]) comes first and p2 still finds [0, 10] free at tIoU 1: two TPs
    # up to 0.90. (Taking [0, 10] would leave p2 with tIoU 9/11 ~ 0.82.)
    gt = make_gt([("v", 0, 10, "A"), ("v", 1, 11, "A")])
    preds = make_preds([("v", 0.5, 10.5, "A", 0.9), ("v", 0, 10, "A", 0.8)])
    assert list(np.array([0.9, 0.9]).argsort()[::-1]) == [1, 0]  # the premise
    ap = ap_of(assert_matches_reference(gt, preds, ties=ties), "A")
    np.testing.assert_array_equal(ap[:9], 1.0)
    assert ap[9] == 0.25  # at 0.95 p1 misses: precision 0 then 1/2, recall 1/2


def test_prediction_in_video_without_its_class_and_class_without_predictions():
    gt = make_gt([("v1", 0, 10, "A"), ("v2", 0, 10, "B")])
    preds = make_preds([("v2", 0, 10, "A", 0.9), ("v1", 0, 10, "A", 0.5)])
    m = detection_map(gt, preds)
    np.testing.assert_allclose(ap_of(m, "A"), 0.5)  # FP then TP
    np.testing.assert_allclose(ap_of(m, "B"), 0.0)  # no predictions
    np.testing.assert_allclose(list(m["mAP"].values()), 0.25)
    assert m["average_mAP"] == pytest.approx(0.25)


def test_zero_length_instance_counts_but_never_matches_a_real_segment():
    gt = make_gt([("v", 0, 0, "A"), ("v", 10, 20, "A")])
    preds = make_preds([("v", 10, 20, "A", 1.0), ("v", 0, 1, "A", 0.5)])
    np.testing.assert_allclose(ap_of(assert_matches_reference(gt, preds), "A"), 0.5)


def test_zero_length_detections_are_scored_as_the_official_code_scores_them():
    # A zero-length detection has tIoU 0 with a real instance, and 0 / 0 = NaN with a
    # zero-length one wherever it lies; NaN is not < threshold and is visited first, so
    # [5, 5] takes the instance [0, 0] (TP), [0, 0] then finds it taken and meets [4, 8]
    # at tIoU 0 (FP), and [4, 8] matches: TP, FP, TP -> AP 1/2 + 1/2 * 2/3.
    gt = make_gt([("v", 0, 0, "A"), ("v", 4, 8, "A")])
    preds = make_preds([("v", 5, 5, "A", 0.9), ("v", 0, 0, "A", 0.8), ("v", 4, 8, "A", 0.7)])
    ap = ap_of(assert_matches_reference(gt, preds), "A")
    np.testing.assert_allclose(ap, 5 / 6)
    # without the zero-length instance both zero-length detections are plain FPs
    gt = make_gt([("v", 4, 8, "A")])
    np.testing.assert_allclose(ap_of(assert_matches_reference(gt, preds), "A"), 1 / 3)


def test_unknown_label_names_label_and_file_even_outside_the_subset():
    gt = make_gt([("v", 0, 10, "A")])
    with pytest.raises(AvlocError, match=r"pred\.json.*'Zumba'.*gt\.json.*official"):
        detection_map(gt, make_preds([("v", 0, 10, "Zumba", 1.0)]))
    with pytest.raises(AvlocError, match=r"video other: label 'Zumba'"):
        detection_map(gt, make_preds([("v", 0, 10, "A", 1.0), ("other", 0, 1, "Zumba", 1.0)]))
    m = detection_map(gt, make_preds([("other", 0, 1, "Zumba", 1.0), ("v", 0, 10, "A", 0.5)]),
                      unknown_labels="drop")
    assert m["average_mAP"] == 1.0 and m["detections_dropped"] == 1


def test_instance_outside_its_video_is_scored_and_counted():
    # the real THUMOS'14 test set holds [187.3, 193.4] in a video of 176.25 s
    gt = make_gt([("v", 187.3, 193.4, "A"), ("v", -3, 2, "A")], durations={"v": 176.25})
    m = assert_matches_reference(gt, make_preds([("v", 187.3, 193.4, "A", 1.0)]))
    assert m["instances_beyond_duration"] == 2 and m["average_mAP"] == 0.5
    assert "note: 2 instances reach more than 1 s outside their video" in format_scope(m)


def test_detection_outside_its_video_is_scored_and_counted():
    gt = make_gt([("v", 0, 10, "A")], durations={"v": 30.0})
    m = assert_matches_reference(gt, make_preds([("v", 20, 40, "A", 1.0), ("v", 0, 10, "A", .5)]))
    assert m["detections_beyond_duration"] == 1 and m["average_mAP"] == 0.5
    m = detection_map(gt, make_preds([("v", 20, 30.9, "A", 1.0)]))  # within the tolerance
    assert m["detections_beyond_duration"] == 0


def test_detections_outside_the_ground_truth_are_false_positives():
    gt = make_gt([("v", 0, 10, "A")])
    preds = make_preds([("other", 0, 10, "A", 0.9), ("v", 0, 10, "A", 0.1)])
    m = assert_matches_reference(gt, preds)
    assert m["average_mAP"] == 0.5 and m["detections_outside_subset"] == 1


def test_accepts_per_video_dict_from_localize():
    gt = make_gt([("v", 0, 10, "A")])
    m = detection_map(gt, {"v": [{"label": "A", "score": 0.3, "segment": [0, 10]}]})
    assert m["average_mAP"] == 1.0


def test_interpolated_ap_envelope():
    # precision 1, 0, 2/3 at recall 1/2, 1/2, 1: envelope 1 then 2/3
    assert interpolated_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1])) == pytest.approx(
        5 / 6
    )
    assert interpolated_ap(np.array([0.0]), np.array([0.0])) == 0.0


# ---------------------------------------------------------------------------------------
# against the naive reference on random data with many ties


def _random_case(rng: np.random.Generator, n_vid: int, n_gt: int, n_pred: int, grid: bool,
                 step: int = 1):
    """grid: integer segments (multiples of `step`) and scores in quarters: many ties.
    Some instances and detections have zero length; some detections lie on a video that
    is not in the ground truth."""
    classes = ["A", "B", "C", "D"]
    vids = [f"v{i}" for i in range(n_vid)]
    gt_rows = []
    for _ in range(n_gt):
        s = float(rng.integers(0, 40) // step * step) if grid else float(rng.uniform(0, 40))
        e = s + (float(rng.integers(1, 4) * step) if grid else float(rng.uniform(0.5, 20)))
        e = s if rng.random() < 0.05 else e
        gt_rows.append((str(rng.choice(vids)), s, e, str(rng.choice(classes))))
    pred_rows = []
    for _ in range(n_pred):
        if rng.random() < 0.7:  # near an instance: many candidates per (class, video)
            v, s, e, c = gt_rows[rng.integers(len(gt_rows))]
            jitter = rng.integers(-3, 4, size=2) if step == 1 else rng.integers(-1, 2, 2) * step
            s = max(0.0, s + float(jitter[0]))
            e = s + max(float(step), e - s + float(jitter[1]))
        else:
            v, c = str(rng.choice(vids + ["unseen"])), str(rng.choice(classes[:3]))
            s = float(rng.integers(0, 50) // step * step)
            e = s + float(rng.integers(1, 20) // step * step + step)
        e = s if rng.random() < 0.05 else e
        score = float(rng.integers(0, 5)) / 4 if grid else float(rng.random())  # ties
        pred_rows.append((v, s, e, c, score))
    return make_gt(gt_rows), make_preds(pred_rows)


@pytest.mark.parametrize("ties", ["official", "stable"])
@pytest.mark.parametrize("seed", range(12))
def test_matches_naive_reference(seed, ties):
    rng = np.random.default_rng(seed)
    gt, preds = _random_case(rng, n_vid=6, n_gt=25, n_pred=300, grid=seed % 2 == 0)
    assert_matches_reference(gt, preds, ties=ties)


@pytest.mark.parametrize("seed", range(6))
def test_matches_naive_reference_dense_ties(seed):
    # few videos and coarse segments: many instances of a class per video with equal tIoU
    rng = np.random.default_rng(100 + seed)
    gt, preds = _random_case(rng, n_vid=2, n_gt=30, n_pred=200, grid=True, step=5)
    assert_matches_reference(gt, preds)


def test_matches_naive_reference_on_other_thresholds():
    rng = np.random.default_rng(99)
    gt, preds = _random_case(rng, n_vid=4, n_gt=20, n_pred=200, grid=True)
    thr = np.array([0.1, 0.3, 0.5, 0.7])
    m = assert_matches_reference(gt, preds, thr)
    assert list(m["mAP"]) == ["0.10", "0.30", "0.50", "0.70"]


def _tied(preds: Predictions, score: np.ndarray) -> Predictions:
    return Predictions(preds.video, preds.segment, preds.label, score, preds.source)


@pytest.mark.parametrize("ties", ["official", "stable"])
@pytest.mark.parametrize("case", ["all_equal", "rounded_0.1", "one_video_all_1", "integers"])
def test_tied_scores_rank_as_the_official_code(case, ties):
    """Equal scores across videos and classes, far more than 16 detections per class (NumPy
    switches sort algorithm there), detections on videos outside the ground truth, and
    zero-length segments: the numbers equal the official procedure's."""
    rng = np.random.default_rng(7)
    gt, preds = _random_case(rng, n_vid=8, n_gt=40, n_pred=600, grid=False)
    s = preds.score
    score = {
        "all_equal": np.ones_like(s),
        "rounded_0.1": np.round(s, 1),
        "one_video_all_1": np.where(preds.video == preds.video[0], 1.0, s),
        "integers": np.round(s * 3).astype(np.int64),
    }[case]
    assert np.bincount(np.unique(preds.label, return_inverse=True)[1]).min() > 16
    assert_matches_reference(gt, _tied(preds, score), ties=ties)


def test_integer_scores_keep_the_official_dtype(tmp_path):
    gt_path = _gt_file(tmp_path)
    ints = _pred_file(tmp_path, {"v_val1": [{"label": "Archery", "score": 1, "segment": [5, 20]}]})
    mixed = _pred_file(tmp_path, {"v_val1": [{"label": "Archery", "score": 1, "segment": [5, 20]},
                                             {"label": "Archery", "score": 0.5,
                                              "segment": [5, 20]}]}, "mixed.json")
    assert read_predictions(ints).score.dtype == np.int64
    assert read_predictions(mixed).score.dtype == np.float64
    assert score_files(gt_path, ints)["per_class_AP"]["Archery"] == [1.0] * 10


# ---------------------------------------------------------------------------------------
# files: reading, subset, errors, score_files


def _gt_file(tmp_path: Path) -> Path:
    db = {
        "v_val1": {"subset": "validation", "duration": 60.0,
                   "annotations": [{"segment": [5.0, 20.0], "label": "Archery"}]},
        "v_val2": {"subset": "validation", "duration": 30.0,
                   "annotations": [{"segment": [0.0, 10.0], "label": "Ballet"}]},
        "v_train": {"subset": "training", "duration": 50.0,
                    "annotations": [{"segment": [1.0, 9.0], "label": "Archery"}]},
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"version": "VERSION 1.2", "taxonomy": [], "database": db}))
    return path


def _pred_file(tmp_path: Path, per_video, name="pred.json") -> Path:
    path = tmp_path / name
    write_json_atomic(path, results_json(per_video))
    return path


def test_subset_filter_and_score_files(tmp_path):
    gt_path = _gt_file(tmp_path)
    gt = read_ground_truth(gt_path, "validation")
    assert sorted(gt.durations) == ["v_val1", "v_val2"] and len(gt.label) == 2
    assert gt.subset == "validation" and gt.other_videos == {"v_train"}
    assert len(read_ground_truth(gt_path).label) == 3
    pred = _pred_file(tmp_path, {
        "v_val1": [{"label": "Archery", "score": 0.9, "segment": [5.0, 20.0]}],
        # a training video and an unknown id: false positives, as in the official code
        "v_train": [{"label": "Archery", "score": 0.95, "segment": [30.0, 40.0]}],
        "v_unknown": [{"label": "Ballet", "score": 0.5, "segment": [0.0, 1.0]}],
    })
    m = score_files(gt_path, pred)  # the official default: the validation subset
    assert m["per_class_AP"] == {"Archery": [0.5] * 10, "Ballet": [0.0] * 10}
    assert m["average_mAP"] == 0.25
    assert (m["subset"], m["videos"], m["instances"], m["detections"]) == ("validation", 2, 2, 3)
    assert m["detections_outside_subset"] == 2 and m["detections_on_other_subsets"] == 1
    assert m["average_mAP_ranges"] == {"0.50:0.95": 0.25}
    assert score_files(gt_path, pred, None)["per_class_AP"]["Archery"][0] == pytest.approx(0.25)
    table = format_map_table(m)
    assert "0.50" in table and "0.95" in table and "25.00" in table
    scope = format_scope(m)
    assert "subset 'validation': 2 videos, 2 instances, 3 detections" in scope
    assert "2 detections on videos outside" in scope and "1 on other subsets" in scope


def test_missing_default_subset_names_the_subsets_present(tmp_path):
    path = tmp_path / "thumos.json"
    path.write_text(json.dumps({"database": {
        "a": {"subset": "Validation", "duration": 9.0, "annotations": []},
        "b": {"subset": "Test", "duration": 9.0,
              "annotations": [{"segment": [1, 2], "label": "X"}]}}}))
    with pytest.raises(AvlocError, match=r"no videos in subset 'validation' \(subsets "
                       r"present: Test, Validation; avloc score takes --subset NAME\)"):
        read_ground_truth(path, "validation")
    assert read_ground_truth(path, "Test").durations == {"b": 9.0}


def test_paper_range_averages_and_table():
    m = {"0.10": 0.5, "0.20": 0.4, "0.30": 0.3, "0.40": 0.2, "0.50": 0.1, "0.60": 0.05,
         "0.70": 0.0}
    got = range_averages(m)
    assert list(got) == ["0.10:0.50", "0.30:0.70", "0.10:0.70"]
    assert got["0.10:0.50"] == pytest.approx(0.3) and got["0.30:0.70"] == pytest.approx(0.13)
    table = format_map_table({"mAP": m, "average_mAP": np.mean(list(m.values())),
                              "average_mAP_ranges": got})
    assert "0.10:0.50 30.00" in table and "0.30:0.70 13.00" in table


def test_metrics_json_round_trip(tmp_path):
    gt_path = _gt_file(tmp_path)
    pred = _pred_file(tmp_path, {"v_val2": [{"label": "Ballet", "score": 1, "segment": [0, 10]}]})
    m = score_files(gt_path, pred, "validation")
    out = tmp_path / "sub" / "metrics.json"
    write_json_atomic(out, m)
    assert json.loads(out.read_text()) == m
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_unknown_subset(tmp_path):
    with pytest.raises(AvlocError, match=r"gt\.json: no videos in subset 'test'.*training"):
        read_ground_truth(_gt_file(tmp_path), "test")


def test_unknown_class_in_prediction_file(tmp_path):
    pred = _pred_file(tmp_path, {"v_val1": [{"label": "Zumba", "score": 1, "segment": [1, 2]}]})
    with pytest.raises(AvlocError, match=r"pred\.json: video v_val1: label 'Zumba'"):
        score_files(_gt_file(tmp_path), pred, "validation")


GOOD_GT = {"duration": 10.0, "subset": "validation",
           "annotations": [{"segment": [1.0, 2.0], "label": "A"}]}


def _video(**kw):
    return {"database": {"v": {**GOOD_GT, **kw}}}


def _ann(**kw):
    return _video(annotations=[{"segment": [1, 2], "label": "A", **kw}])


BAD_GT = [
    ('{"database": ', "not valid JSON"),
    ({"version": 1}, "missing key 'database'"),
    ({"database": []}, "'database' must be an object"),
    ({"database": {"v": {"duration": 10.0, "subset": "validation"}}}, "missing key 'annotations'"),
    ({"database": {"v": {"annotations": [], "subset": "validation"}}}, "missing key 'duration'"),
    ({"database": {"v": {"duration": 10.0, "annotations": []}}}, "video v: missing key 'subset'"),
    (_video(duration="long"), "video v: duration must be a positive number"),
    (_video(annotations={}), "'annotations' must be a list"),
    (_ann(segment=[5, 2]), "annotation 0: segment end 2 is before its start 5"),
    (_ann(segment=[1]), "segment must be \\[start, end\\]"),
    (_ann(segment=["1", "2"]), "segment must be \\[start, end\\]"),
    (_ann(label=3), "label must be a string"),
    (_video(annotations=[{"label": "A"}]), "annotation 0: missing key 'segment'"),
    ('{"database": {"v": {"duration": 1, "annotations": []}, "v": {"duration": 2, '
     '"annotations": []}}}', "key 'v' appears twice"),
]


@pytest.mark.parametrize(("content", "message"), BAD_GT)
def test_bad_ground_truth_file(tmp_path, content, message):
    path = tmp_path / "bad_gt.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(AvlocError, match=message) as err:
        read_ground_truth(path, "validation")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _det(**kw):
    return {"results": {"v": [{"label": "A", "score": 0.5, "segment": [1, 2], **kw}]}}


BAD_PRED = [
    ("[1, 2", "not valid JSON"),
    ({"version": "x"}, "missing key 'results'"),
    ({"results": {"v": {"label": "A"}}}, "video v: expected a list"),
    (_det(score=float("nan")), "detection 0: score must be a finite number, got nan"),
    (_det(score=float("inf")), "score must be a finite number, got inf"),
    (_det(score="high"), "score must be a finite number"),
    ({"results": {"v": [{"label": "A", "segment": [1, 2]}]}}, "missing key 'score'"),
    (_det(segment=[2, 1]), "detection 0: segment \\[2, 1\\] ends before it starts"),
    (_det(segment=[1, float("nan")]), "is not finite"),
    ('{"results": {"v": [], "w": [], "v": []}}', "key 'v' appears twice"),
]


@pytest.mark.parametrize(("content", "message"), BAD_PRED)
def test_bad_prediction_file(tmp_path, content, message):
    path = tmp_path / "bad_pred.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(AvlocError, match=message) as err:
        read_predictions(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(AvlocError, match=r"nope\.json: cannot read"):
        read_ground_truth(tmp_path / "nope.json")
    with pytest.raises(AvlocError, match=r"nope2\.json: cannot read"):
        score_files(_gt_file(tmp_path), tmp_path / "nope2.json")


def test_ground_truth_from_annotations_keeps_videos_without_instances():
    anns = [
        Annotation("a", 20.0, [Segment(1.0, 5.0, "X"), Segment(6.0, 9.0, "Y")]),
        Annotation("b", 15.0, []),
    ]
    gt = ground_truth_from_annotations(anns)
    assert gt.durations == {"a": 20.0, "b": 15.0} and gt.classes == ["X", "Y"]
    preds = {"a": [{"label": "X", "score": 1.0, "segment": [1.0, 5.0]}],
             "b": [{"label": "Y", "score": 2.0, "segment": [1.0, 5.0]}]}
    m = detection_map(gt, preds)
    assert m["per_class_AP"] == {"X": [1.0] * 10, "Y": [0.0] * 10}


# ---------------------------------------------------------------------------------------
# AVE snippet accuracy


def test_snippet_accuracy_pools_all_snippets():
    truth = [np.array([0, 3, 3, 3, 0]), np.array([0, 0, 0])]
    pred = [np.array([0, 3, 3, 1, 1]), np.array([0, 0, 2])]
    assert snippet_accuracy(pred, truth) == pytest.approx(5 / 8)  # not the mean of 3/5, 2/3


def test_oracle_accuracy():
    truth = [np.array([0, 3, 3, 3, 0]), np.array([0, 0, 0]), np.array([5, 5, 2, 0])]
    # video 1: 3 of 5; background video: 3 of 3 (all 0); video 3: class 5 -> 2 of 4
    assert oracle_accuracy(truth) == pytest.approx(8 / 12)


def test_snippet_accuracy_errors():
    with pytest.raises(AvlocError, match="video 1"):
        snippet_accuracy([np.zeros(3), np.zeros(2)], [np.zeros(3), np.zeros(4)])
    with pytest.raises(AvlocError, match="no videos"):
        snippet_accuracy([], [])


# ---------------------------------------------------------------------------------------
# the real ActivityNet 1.2 validation ground truth (skipped when absent)


def anet_validation(anet_dir: Path) -> GroundTruth:
    def load(name):
        return np.load(anet_dir / f"{name}.npy", allow_pickle=True, encoding="bytes")

    names, subset, duration = load("videoname"), load("subset"), load("duration")
    segments, labels = load("segments"), load("labels")
    db = {}
    for i in np.nonzero(subset == b"validation")[0]:
        db[names[i].decode()] = {
            "duration": float(duration[i]),
            "annotations": [{"segment": [float(s), float(e)], "label": lab.decode()}
                            for (s, e), lab in zip(segments[i], labels[i], strict=True)],
        }
    return parse_ground_truth({"database": db}, "activitynet12")


def test_real_validation_ground_truth(anet_dir):
    gt = anet_validation(anet_dir)
    assert len(gt.label) == 3582 and len(gt.classes) == 100 and len(gt.durations) == 2383
    valid = gt.segment[:, 1] > gt.segment[:, 0]  # three instances are [0, 0]
    preds = Predictions(gt.video[valid], gt.segment[valid], gt.label[valid],
                        np.ones(int(valid.sum())), "perfect")
    m = detection_map(gt, preds)
    for c in gt.classes:
        npos = np.sum(gt.label == c)
        matched = np.sum((gt.label == c) & valid)
        # all matched detections come first with precision 1: AP = recall reached
        np.testing.assert_allclose(m["per_class_AP"][c], matched / npos)
    # sums of recall steps such as 3 x 1/3 round to 1 - 1e-16, as in the official code
    short = {c for c, v in m["per_class_AP"].items() if v[0] < 1 - 1e-9}
    assert short == set(gt.label[~valid])


# ---------------------------------------------------------------------------------------
# the command line


def test_cli_score_defaults_to_validation_and_takes_tiou_and_ties(tmp_path, capsys):
    from avloc.cli import main

    gt_path = _gt_file(tmp_path)
    pred = _pred_file(tmp_path, {
        "v_val1": [{"label": "Archery", "score": 0.9, "segment": [5.0, 20.0]}],
        "v_train": [{"label": "Archery", "score": 0.95, "segment": [30.0, 40.0]}]})
    out = tmp_path / "m.json"
    assert main(["score", str(gt_path), str(pred), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scored subset 'validation': 2 videos, 2 instances, 2 detections" in text
    assert "1 detections on videos outside the scored videos (1 on other subsets" in text
    assert json.loads(out.read_text())["average_mAP"] == 0.25
    assert main(["score", str(gt_path), str(pred), "--tiou", "0.1:0.7:0.1", "--ties", "stable",
                 "--json", str(out)]) == 0
    m = json.loads(out.read_text())
    assert list(m["mAP"]) == ["0.10", "0.20", "0.30", "0.40", "0.50", "0.60", "0.70"]
    assert set(m["average_mAP_ranges"]) == {"0.10:0.50", "0.30:0.70", "0.10:0.70"}
    assert m["ties"] == "stable"
    capsys.readouterr()
    assert main(["score", str(gt_path), str(pred), "--tiou", "0.1:0.7:0.25"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avloc: error: --tiou='0.1:0.7:0.25'")
    assert main(["score", str(gt_path), str(pred), "--subset", "Test"]) == 1
    assert "subsets present: training, validation" in capsys.readouterr().err
