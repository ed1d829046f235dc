"""Evaluation: AVE snippet accuracy and ActivityNet detection mAP@tIoU.

Detection mAP reproduces the official ActivityNet evaluator
(github.com/activitynet/ActivityNet, Evaluation/eval_detection.py: ANETdetection,
compute_average_precision_detection; Evaluation/utils.py: segment_iou,
interpolated_prec_rec):

- tIoU thresholds 0.5:0.05:0.95; the classes are those in the ground truth of the subset.
- Per class, predictions in descending score; each one tries the ground-truth instances of
  its own video in descending tIoU and takes the first with tIoU >= threshold that no
  higher-scored prediction has taken; otherwise it is a false positive.
- AP is the area under the interpolated (monotone) precision-recall curve; a class with no
  predictions scores 0; mAP averages classes, average_mAP averages thresholds.

Deterministic ties (the official code uses NumPy's default, unstable sorts):
- equal scores: the prediction that comes first in the input goes first (stable sort);
- equal tIoU with two instances: the instance that comes later in the ground truth is tried
  first, i.e. `argsort(kind="stable")[::-1]`, which is what the official
  `tiou_arr.argsort()[::-1]` does for the short per-video arrays it sorts.
Predictions for videos outside the evaluated ground truth are ignored (the official code
would count them as false positives), so one results file can be scored per subset.

Speed: the official loop visits every prediction in Python. Here a prediction whose best
tIoU is below the lowest threshold, or whose video has no instance of its class, is a false
positive found by array operations. The greedy matching of the rest jumps from one taken
instance to the next, for all (class, video, threshold) states at once (`_greedy_match`),
so it loops at most (instances of one class in one video) times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from avloc.anet_json import (
    TOLERANCE_S,
    GroundTruth,
    Predictions,
    ground_truth_from_annotations,
    predictions_from_results,
    read_ground_truth,
    read_predictions,
)
from avloc.errors import AvlocError

__all__ = [
    "TIOU",
    "GroundTruth",
    "Predictions",
    "detection_map",
    "format_map_table",
    "ground_truth_from_annotations",
    "interpolated_ap",
    "oracle_accuracy",
    "score_files",
    "segment_iou",
    "snippet_accuracy",
]

TIOU = np.linspace(0.5, 0.95, 10)  # ActivityNet thresholds 0.50, 0.55, ..., 0.95


def parse_tiou(text: str, where: str = "setting eval.tiou") -> np.ndarray:
    """tIoU thresholds from "START:STOP:STEP" (STOP included) or "a,b,c".

    A range is `np.linspace(START, STOP, n)`, the form the official code uses, so the
    default "0.5:0.95:0.05" is bit-identical to its `np.linspace(0.5, 0.95, 10)`.
    """
    text = str(text).strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            n = round((stop - start) / step) + 1 if step > 0 else 0
            if n < 1 or abs(start + (n - 1) * step - stop) > 1e-9:
                raise ValueError
            values = np.linspace(start, stop, n)
        else:
            values = np.array([float(x) for x in text.split(",")])
    except ValueError:
        raise AvlocError(f"{where}={text!r}: expected START:STOP:STEP (e.g. 0.1:0.7:0.1, STOP "
                         "reached by whole steps) or a comma list (e.g. 0.3,0.5,0.7)") from None
    if not np.all((values > 0) & (values <= 1)) or len(set(values.tolist())) != len(values):
        raise AvlocError(f"{where}={text!r}: thresholds must be distinct, in (0, 1]")
    return values


# ---------------------------------------------------------------------------------------
# AVE: snippet accuracy


def _pooled(truth: Sequence[np.ndarray]) -> np.ndarray:
    if not len(truth):
        raise AvlocError("snippet accuracy: no videos to score")
    return np.concatenate([np.asarray(t).reshape(-1) for t in truth])  # (sum T,)


def snippet_accuracy(pred: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """Fraction of correctly labelled snippets, pooled over all videos (AVE protocol).

    Background snippets (label 0) count like any other class, as in Tian et al. (2018).
    """
    if len(pred) != len(truth):
        raise AvlocError(f"snippet accuracy: {len(pred)} predictions for {len(truth)} videos")
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        if np.shape(p) != np.shape(t):
            raise AvlocError(
                f"snippet accuracy: video {i} has {np.shape(p)} predicted labels "
                f"for {np.shape(t)} true ones"
            )
    t = _pooled(truth)
    if t.size == 0:
        raise AvlocError("snippet accuracy: no snippets to score")
    return float(np.mean(_pooled(pred) == t))


def video_event_class(labels: np.ndarray) -> int:
    """The video's event class: its most frequent non-zero snippet label (0 if none)."""
    fg = np.asarray(labels)[np.asarray(labels) > 0]  # (T_fg,)
    return int(np.bincount(fg).argmax()) if fg.size else 0


def oracle_accuracy(truth: Sequence[np.ndarray]) -> float:
    """Accuracy of labelling every snippet with the video's true event class.

    The oracle knows the class but does no temporal localization, so `accuracy - oracle`
    is what a model gains (or loses) by separating the event from background.
    """
    oracle = [np.full(np.shape(t), video_event_class(t)) for t in truth]
    return snippet_accuracy(oracle, truth)


# ---------------------------------------------------------------------------------------
# ActivityNet: detection mAP


def segment_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal IoU of segment pairs: (..., 2) and (..., 2) -> (...).

    Same arithmetic as the official `segment_iou`, so the values are bit-identical.
    """
    inter = (np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
    union = (b[..., 1] - b[..., 0]) + (a[..., 1] - a[..., 0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


def _interpolated_ap_rows(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """(K, P) precision and recall -> (K,) area under each monotone precision envelope.

    The official interpolated_prec_rec (VOC 2011), for K curves at once. Each row ends with
    its own 1-D np.sum over the same numbers in the same order, so values are bit-identical.
    """
    zero, one = np.zeros((len(precision), 1)), np.ones((len(precision), 1))
    mprec = np.hstack([zero, precision, zero])  # (K, P+2)
    mrec = np.hstack([zero, recall, one])  # (K, P+2)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]  # envelope, right to left
    step = mrec[:, 1:] != mrec[:, :-1]  # (K, P+1) where recall moves
    area = (mrec[:, 1:] - mrec[:, :-1]) * mprec[:, 1:]  # (K, P+1)
    return np.array([np.sum(a[s]) for a, s in zip(area, step, strict=True)])


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the monotone precision envelope of one (P,) precision-recall curve."""
    return float(_interpolated_ap_rows(np.atleast_2d(precision), np.atleast_2d(recall))[0])


def _average_precision(tp: np.ndarray, npos: int) -> np.ndarray:
    """(K, P) true-positive flags in score order -> (K,) AP, one per threshold."""
    if tp.shape[1] == 0:
        return np.zeros(tp.shape[0])
    tp_cum = np.cumsum(tp, axis=1)  # (K, P) exact counts
    seen = np.arange(1, tp.shape[1] + 1)  # (P,) = tp_cum + fp_cum
    return _interpolated_ap_rows(tp_cum / seen, tp_cum / float(npos))


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, unique keys and first positions of each key in the sorted order."""
    order = np.argsort(keys, kind="stable")  # (N,)
    uniq, first = np.unique(keys[order], return_index=True)
    return order, uniq, first


def _eligible_words(
    iou: np.ndarray, start: np.ndarray, count: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """(W, K, Q) uint64 bitmasks: bit j of word j // 64 set where instance j of the
    candidate's group reaches tIoU_k.

    iou: (S,) flat pair tIoU; candidate q owns pairs start[q] ... start[q] + count[q] - 1.
    """
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # (Sq,)
    pair = np.repeat(start, count) + within  # (Sq,) candidates' pairs, candidate-major
    first = np.cumsum(count) - count  # (Q,) first pair of each candidate
    bits = (iou[pair][None, :] >= thresholds[:, None]).astype(np.uint64)  # (K, Sq)
    bits <<= (within % 64).astype(np.uint64)
    n_words = -(-int(count.max()) // 64)
    words = np.zeros((n_words, len(thresholds), len(start)), dtype=np.uint64)
    for w in range(n_words):  # one word per 64 instances of a group
        mine = bits if n_words == 1 else np.where(within // 64 == w, bits, np.uint64(0))
        words[w] = np.bitwise_or.reduceat(mine, first, axis=1)
    return words


def _unpack_bits(words: np.ndarray, m: int) -> np.ndarray:
    """(W, E) uint64 -> (E, m) bool."""
    raw = np.ascontiguousarray(words.T).astype("<u8").view(np.uint8)  # (E, 8 W) bytes
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :m].astype(bool)


def _best_free(iou: np.ndarray, start: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """(E,) instance each event candidate takes: highest tIoU among `avail` (E, m);
    among equal tIoU the later instance, as the official `argsort()[::-1]`."""
    m = avail.shape[1]
    idx = np.minimum(start[:, None] + np.arange(m), len(iou) - 1)  # (E, m)
    vals = np.where(avail, iou[idx], -np.inf)  # (E, m)
    is_best = vals == vals.max(axis=1, keepdims=True)  # (E, m)
    return m - 1 - np.argmax(is_best[:, ::-1], axis=1)


def _greedy_match(
    iou: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    thresholds: np.ndarray,
) -> np.ndarray:
    """The official greedy matching for Q candidates already in descending score order.

    iou: (S,) flat tIoU of (prediction, instance) pairs; candidate q owns `count[q]` pairs
    from `start[q]`, one per instance of its (class, video) group `group[q]`.
    Returns (K, Q) true-positive flags.

    A (threshold, group) state changes only when one of its instances gets taken. Each
    round, the first live candidate of every state takes its best free eligible instance;
    a candidate left with no free eligible instance stays a false positive for good
    (instances are never freed), so the live list only shrinks and the loop runs at most
    max(count) times.
    """
    k, q = len(thresholds), len(start)
    gm = np.argsort(group, kind="stable")  # (Q,) group-major, score order inside
    start, count, group = start[gm], count[gm], group[gm]
    words = _eligible_words(iou, start, count, thresholds)  # (W, K, Q)
    live_t, live_c = np.nonzero(words.any(axis=0))  # state-major, score order inside
    words = words.reshape(len(words), k * q)  # (W, K Q), column t * Q + c
    free = np.full((len(words), k * n_groups), np.iinfo(np.uint64).max, dtype=np.uint64)
    last = np.full(k * n_groups, -1)  # last candidate that took an instance, per state
    key = live_t * n_groups + group[live_c]  # (L,) state of each live pair
    col = live_t * q + live_c  # (L,) its column of `words`
    tp = np.zeros(k * q, dtype=bool)
    while col.size:
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # first live pair per state
        r, s, c = col[first], key[first], live_c[first]  # (E,)
        avail = _unpack_bits(words[:, r] & free[:, s], int(count.max()))  # (E, m)
        slot = _best_free(iou, start[c], avail)  # (E,)
        free[slot // 64, s] &= ~(np.uint64(1) << (slot % 64).astype(np.uint64))
        last[s] = c
        tp[r] = True
        alive = live_c > last[key]
        col, key, live_c = col[alive], key[alive], live_c[alive]
        alive = np.zeros(len(col), dtype=bool)
        for w in range(len(words)):  # some eligible instance still free
            alive |= (words[w, col] & free[w, key]) != 0
        col, key, live_c = col[alive], key[alive], live_c[alive]
    tp = tp.reshape(k, q)
    out = np.zeros_like(tp)
    out[:, gm] = tp
    return out


def _lookup(code: dict[str, int], names: np.ndarray) -> np.ndarray:
    """(N,) names -> (N,) int64 codes, -1 where absent."""
    return np.fromiter(map(code.get, names.tolist(), repeat(-1)), np.int64, len(names))


def _codes(gt: GroundTruth, preds: Predictions) -> tuple[np.ndarray, ...]:
    """Integer video / class codes; drops predictions for videos outside the ground truth."""
    vid_code = {v: i for i, v in enumerate(gt.durations)}
    cls_code = {c: i for i, c in enumerate(gt.classes)}
    gt_vid = _lookup(vid_code, gt.video)  # (N,)
    gt_cls = _lookup(cls_code, gt.label)  # (N,)
    p_vid = _lookup(vid_code, preds.video)  # (P,) -1: not an evaluated video
    keep = np.nonzero(p_vid >= 0)[0]  # (P',) input order
    p_cls = _lookup(cls_code, preds.label[keep])  # (P',) -1: unknown class
    unknown = np.nonzero(p_cls < 0)[0]
    if unknown.size:
        j = keep[unknown[0]]
        raise AvlocError(
            f"{preds.source}: video {preds.video[j]}: label {preds.label[j]!r} is not a class "
            f"of the ground truth {gt.source}"
        )
    return gt_vid, gt_cls, keep, p_vid[keep], p_cls


def _check_durations(gt: GroundTruth, preds: Predictions, keep: np.ndarray, vid: np.ndarray):
    """Predicted segments must lie inside their video (within TOLERANCE_S)."""
    dur = np.array(list(gt.durations.values()))[vid]  # (P',)
    seg = preds.segment[keep]  # (P', 2)
    bad = np.nonzero((seg[:, 0] < -TOLERANCE_S) | (seg[:, 1] > dur + TOLERANCE_S))[0]
    if bad.size:
        i = bad[0]
        raise AvlocError(
            f"{preds.source}: video {preds.video[keep[i]]}: segment [{seg[i, 0]:g}, "
            f"{seg[i, 1]:g}] lies outside the video [0, {dur[i]:g}] s"
        )


def _true_positives(
    gt: GroundTruth, preds: Predictions, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, P') true-positive flags and (P',) class codes, predictions in score order."""
    gt_vid, gt_cls, keep, p_vid, p_cls = _codes(gt, preds)
    _check_durations(gt, preds, keep, p_vid)
    rank = np.argsort(-preds.score[keep], kind="stable")  # (P',) descending score, stable
    p_vid, p_cls, p_seg = p_vid[rank], p_cls[rank], preds.segment[keep][rank]
    n_vid = len(gt.durations)

    # (class, video) groups of ground-truth instances, file order inside a group
    gt_order, gkeys, gfirst = _groups(gt_cls * n_vid + gt_vid)
    gcount = np.diff(np.append(gfirst, len(gt_order)))  # (G,)
    pkey = p_cls * n_vid + p_vid  # (P',)
    g = np.searchsorted(gkeys, pkey).clip(max=len(gkeys) - 1)  # (P',)
    has_gt = np.nonzero(gkeys[g] == pkey)[0]  # predictions whose video has an instance

    # every (prediction, instance) pair of the same group: ragged, flattened
    n = gcount[g[has_gt]]  # (H,) instances per prediction
    pair_pred = np.repeat(has_gt, n)  # (S,)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # (S,) instance in the group
    pair_gt = gt_order[np.repeat(gfirst[g[has_gt]], n) + within]  # (S,)
    iou = segment_iou(p_seg[pair_pred], gt.segment[pair_gt])  # (S,)

    # candidates: some pair reaches the lowest threshold; all others are false positives
    first_pair = np.cumsum(n) - n  # (H,) pairs are contiguous per prediction
    best = np.full(len(p_cls), -np.inf)  # (P',) best tIoU of each prediction
    if has_gt.size:
        best[has_gt] = np.maximum.reduceat(iou, first_pair)
    is_cand = best[has_gt] >= thresholds.min()  # (H,)
    cand = has_gt[is_cand]  # (Q,) in score order
    tp = np.zeros((len(thresholds), len(p_cls)), dtype=bool)
    if cand.size:
        tp[:, cand] = _greedy_match(
            iou, first_pair[is_cand], n[is_cand], g[cand], len(gkeys), thresholds
        )
    return tp, p_cls, np.bincount(gt_cls, minlength=len(gt.classes))


def detection_map(
    gt: GroundTruth,
    preds: Predictions | Mapping[str, list[dict[str, Any]]],
    tiou_thresholds: Sequence[float] | np.ndarray = TIOU,
) -> dict[str, Any]:
    """ActivityNet detection mAP, as fractions in [0, 1].

    preds: Predictions, or {vid: [{label, score, segment}, ...]} as avloc.localize returns.
    Returns the metrics JSON (a public contract):
        {"mAP": {"0.50": ..., ..., "0.95": ...}, "average_mAP": ...,
         "per_class_AP": {label: [AP at each threshold]}}
    """
    if not isinstance(preds, Predictions):
        preds = predictions_from_results(preds)
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)  # (K,)
    classes = gt.classes
    tp, p_cls, npos = _true_positives(gt, preds, thresholds)
    by_class = np.argsort(p_cls, kind="stable")  # score order kept inside each class
    bounds = np.searchsorted(p_cls[by_class], np.arange(len(classes) + 1))
    tp = tp[:, by_class]  # (K, P') class-major
    ap = np.zeros((len(thresholds), len(classes)))  # (K, C) like the official matrix
    for c in range(len(classes)):
        ap[:, c] = _average_precision(tp[:, bounds[c] : bounds[c + 1]], int(npos[c]))
    mean_ap = ap.mean(axis=1)  # (K,)
    return {
        "mAP": {f"{t:.2f}": float(v) for t, v in zip(thresholds, mean_ap, strict=True)},
        "average_mAP": float(mean_ap.mean()),
        "per_class_AP": {name: ap[:, c].tolist() for c, name in enumerate(classes)},
    }


def score_files(
    gt_path: str | Path, pred_path: str | Path, subset: str | None = None,
    tiou: str = "0.5:0.95:0.05", tolerance: float = TOLERANCE_S,
) -> dict:
    """`avloc score`: read an ActivityNet ground-truth and a results file and score them at
    the tIoU thresholds `tiou` (`parse_tiou`); ground-truth segments may pass [0, duration]
    by `tolerance` seconds."""
    thresholds = parse_tiou(tiou, "--tiou")
    if not tolerance >= 0:
        raise AvlocError(f"--tolerance {tolerance}: must be >= 0 seconds (or inf)")
    gt = read_ground_truth(gt_path, subset, tolerance)
    return detection_map(gt, read_predictions(pred_path), thresholds)


def format_map_table(metrics: Mapping[str, Any]) -> str:
    """mAP at each tIoU and their average, in percent, as a two-line table."""
    keys = list(metrics["mAP"])
    head = "tIoU     " + " ".join(f"{k:>6}" for k in keys) + " |    avg"
    row = "mAP (%)  " + " ".join(f"{100 * metrics['mAP'][k]:6.2f}" for k in keys)
    return f"{head}\n{row} | {100 * metrics['average_mAP']:6.2f}"
