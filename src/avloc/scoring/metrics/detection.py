"""ActivityNet detection mAP@tIoU, as the official evaluator computes it.

The official code: github.com/activitynet/ActivityNet, Evaluation/eval_detection.py
(ANETdetection, compute_average_precision_detection) and Evaluation/utils.py (segment_iou,
interpolated_prec_rec). Everything it does is done here, in the same order:

- The ground truth is one subset of the file (`validation` by default); its classes, in
  order of first appearance, are the classes scored. A detection with a label outside them
  is an error there (a KeyError) and here (`unknown_labels="error"`); avloc's own
  validation drops them instead (`"drop"`), reporting how many.
- Every detection of the results file counts, also those on videos outside the subset
  (other subsets, or ids the ground truth doesn't have): they are false positives.
- Per class, the detections of that class, in file order (videos in the JSON's order, then
  each video's list), are ranked by `scores.argsort()[::-1]`: NumPy's default sort, then
  reversed. Equal scores are ordered by that sort, which depends on the NumPy version and
  the CPU (SIMD sorts); the official number inherits this, and so does ours on the same
  machine. `ties="stable"` orders equal scores by file order instead (machine-independent).
- Each detection visits the instances of its class in its video in the order
  `tiou.argsort()[::-1]` and takes the first one that no higher-ranked detection took,
  unless it meets one with `tiou < threshold` first (then it is a false positive). A NaN
  tIoU (a zero-length detection on a zero-length instance at the same time: 0 / 0) is not
  `< threshold`, sorts last and so is visited first: such a pair matches, as there.
- AP is the area under the interpolated (monotone) precision-recall curve; a class with
  no detections scores 0; mAP averages classes, average_mAP averages thresholds.

Speed: the official loop visits every detection in Python. Here a detection whose video
has no instance of its class, or no instance it could match at the lowest threshold, is a
false positive found by array operations. The greedy matching of the rest jumps from one
taken instance to the next, for all (class, video, threshold) states at once
(`_greedy_match`), so it loops at most (instances of one class in one video) times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config.values import parse_tiou
from avloc.scoring.anet_json import (
    GroundTruth,
    Predictions,
    beyond_duration,
    predictions_from_results,
    read_ground_truth,
    read_predictions,
)
from avloc.util.errors import AvlocError

# ActivityNet's thresholds 0.50, 0.55, ..., 0.95: eval.tiou's default "0.5:0.95:0.05"
TIOU = np.linspace(0.5, 0.95, 10)


def tiou_keys(thresholds: Sequence[float] | np.ndarray) -> list[str]:
    """Thresholds as the metrics' keys: "0.50", "0.55", ..."""
    return [f"{t:.2f}" for t in thresholds]


TIOU_KEYS = tuple(tiou_keys(TIOU))  # "0.50" ... "0.95": the columns of the paper's tables


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
    candidate's group can match at tIoU_k, i.e. `not tiou < tIoU_k` (NaN included).

    iou: (S,) flat pair tIoU; candidate q owns pairs start[q] ... start[q] + count[q] - 1.
    """
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # (Sq,)
    pair = np.repeat(start, count) + within  # (Sq,) candidates' pairs, candidate-major
    first = np.cumsum(count) - count  # (Q,) first pair of each candidate
    bits = (~(iou[pair][None, :] < thresholds[:, None])).astype(np.uint64)  # (K, Sq)
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


def _first_free(visit: np.ndarray, start: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """(E,) instance each event candidate takes: among `avail` (E, m), the one it visits
    first. visit: (S,) position of each pair in its detection's visiting order."""
    m = avail.shape[1]
    idx = np.minimum(start[:, None] + np.arange(m), len(visit) - 1)  # (E, m)
    return np.where(avail, visit[idx], np.iinfo(np.int64).max).argmin(axis=1)


def _greedy_match(
    iou: np.ndarray,
    visit: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    thresholds: np.ndarray,
) -> np.ndarray:
    """The official greedy matching for Q candidates already in ranking order.

    iou: (S,) flat tIoU of (detection, instance) pairs, visit: (S,) each pair's position in
    its detection's visiting order; candidate q owns `count[q]` pairs from `start[q]`, one
    per instance of its (class, video) group `group[q]`. Returns (K, Q) true-positive flags.

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
        slot = _first_free(visit, start[c], avail)  # (E,)
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


def _label_codes(gt: GroundTruth, preds: Predictions, unknown_labels: str) -> np.ndarray:
    """(P,) class code of every detection; -1: a label the ground truth has no instance of,
    dropped with unknown_labels="drop", an error (as in the official code) otherwise."""
    p_cls = _lookup({c: i for i, c in enumerate(gt.classes)}, preds.label)
    unknown = np.flatnonzero(p_cls < 0)
    if unknown.size and unknown_labels == "error":
        j = unknown[0]
        raise AvlocError(
            f"{preds.source}: video {preds.video[j]}: label {preds.label[j]!r} is not a class "
            f"of the ground truth {gt.source}{_scope(gt)} (the official evaluator stops here too)"
        )
    return p_cls


def _scope(gt: GroundTruth) -> str:
    return f" (subset {gt.subset!r})" if gt.subset is not None else ""


def rank_detections(score: np.ndarray, cls: np.ndarray, n_classes: int, ties: str) -> np.ndarray:
    """Detection indices, class by class, each class's detections in ranking order.

    official: the class's detections in file order, then `scores.argsort()[::-1]` on that
    array (NumPy's default sort, whatever it does with equal scores on this machine);
    stable: descending score, equal scores in file order.
    """
    by_class = np.argsort(cls, kind="stable")  # (P,) class-major, file order inside
    bounds = np.searchsorted(cls[by_class], np.arange(n_classes + 1))  # (C+1,)
    ranked = []
    for c in range(n_classes):
        idx = by_class[bounds[c] : bounds[c + 1]]  # this class's detections, file order
        s = score[idx]
        order = s.argsort()[::-1] if ties == "official" else np.argsort(-s, kind="stable")
        ranked.append(idx[order])
    return np.concatenate(ranked) if ranked else np.zeros(0, dtype=np.int64)


def _visiting_order(
    iou: np.ndarray, first: np.ndarray, count: np.ndarray, lowest: float, ties: str
) -> np.ndarray:
    """(S,) position of each (detection, instance) pair in the order its detection visits
    its instances: `tiou.argsort()[::-1]` (official) or `argsort(kind="stable")[::-1]`.

    Distinct tIoU values have one such order, found for all detections at once. Only the
    order of instances that can match matters (`not tiou < lowest`: the visit stops at the
    first that cannot), so a detection runs the sort itself only when two of those tie
    (equal values, or NaN), and ties fall as that sort leaves them.
    """
    owner = np.repeat(np.arange(len(first)), count)  # (S,)
    key = np.where(np.isnan(iou), -np.inf, -iou)  # descending, NaN first (argsort puts it last)
    order = np.lexsort((key, owner))  # (S,) owner-major, visiting order inside if no ties
    visit = np.empty(len(iou), dtype=np.int64)
    visit[order] = np.arange(len(iou)) - np.repeat(first, count)
    o, k = owner[order], key[order]
    tied = (o[1:] == o[:-1]) & (k[1:] == k[:-1]) & (k[1:] <= -lowest)  # both can match
    for d in np.unique(o[1:][tied]):
        a, n = first[d], count[d]
        tiou = iou[a : a + n]
        rank = tiou.argsort() if ties == "official" else tiou.argsort(kind="stable")
        visit[a + rank[::-1]] = np.arange(n)
    return visit


def _true_positives(
    gt: GroundTruth, preds: Predictions, p_cls: np.ndarray, ranked: np.ndarray,
    thresholds: np.ndarray, ties: str,
) -> np.ndarray:
    """Which ranked detections are true positives: (K, R) bool, [k, r] True when detection
    `ranked[r]` matches an instance at `thresholds[k]` (the official greedy matching).

    p_cls: (P,) class code of every detection; ranked: (R,) the detections to match, class
    by class in ranking order (`rank_detections`); ties: the visiting order of equal tIoU.
    """
    vid_code = {v: i for i, v in enumerate(gt.durations)}
    n_vid = len(vid_code)
    gt_cls = _lookup({c: i for i, c in enumerate(gt.classes)}, gt.label)  # (N,)
    gt_order, gkeys, gfirst = _groups(gt_cls * n_vid + _lookup(vid_code, gt.video))
    gcount = np.diff(np.append(gfirst, len(gt_order)))  # (G,) instances per group
    p_vid = _lookup(vid_code, preds.video[ranked])  # (R,) -1: outside the subset
    pkey = p_cls[ranked] * n_vid + p_vid  # (R,)
    g = np.searchsorted(gkeys, pkey).clip(max=len(gkeys) - 1)  # (R,)
    has_gt = np.flatnonzero((p_vid >= 0) & (gkeys[g] == pkey))  # video holds its class

    # every (detection, instance) pair of the same group: ragged, flattened
    n = gcount[g[has_gt]]  # (H,) instances per detection
    first = np.cumsum(n) - n  # (H,) pairs are contiguous per detection
    within = np.arange(n.sum()) - np.repeat(first, n)  # (S,) instance in the group
    pair_gt = gt_order[np.repeat(gfirst[g[has_gt]], n) + within]  # (S,)
    seg = preds.segment[ranked[has_gt]]  # (H, 2)
    iou = segment_iou(np.repeat(seg, n, axis=0), gt.segment[pair_gt])  # (S,)

    # candidates: some instance can match at the lowest threshold; the rest are FPs
    tp = np.zeros((len(thresholds), len(ranked)), dtype=bool)
    if not has_gt.size:
        return tp
    can = np.logical_or.reduceat(~(iou < thresholds.min()), first)  # (H,)
    cand = has_gt[can]  # (Q,) in ranking order
    if cand.size:
        visit = _visiting_order(iou, first, n, thresholds.min(), ties)
        tp[:, cand] = _greedy_match(iou, visit, first[can], n[can], g[cand], len(gkeys),
                                    thresholds)
    return tp


def detection_map(
    gt: GroundTruth,
    preds: Predictions | Mapping[str, list[dict[str, Any]]],
    tiou_thresholds: Sequence[float] | np.ndarray = TIOU,
    ties: str = "official",
    unknown_labels: str = "error",
) -> dict[str, Any]:
    """ActivityNet detection mAP, as fractions in [0, 1] (see the module docstring).

    preds: Predictions, or {vid: [{label, score, segment}, ...]} as avloc.scoring.segments returns.
    ties: "official" | "stable"; unknown_labels: "error" | "drop".
    Returns the metrics JSON (a public contract):
        {"mAP": {"0.50": ..., ..., "0.95": ...}, "average_mAP": ...,
         "average_mAP_ranges": {"0.50:0.95": ...},  # the ranges papers print, when scored
         "per_class_AP": {label: [AP at each threshold]},
         "subset": ..., "videos": ..., "instances": ..., "detections": ...,
         "detections_outside_subset": ..., "detections_dropped": ..., "ties": ...}
    """
    if ties not in ("official", "stable"):
        raise AvlocError(f"ties={ties!r}: expected official or stable")
    if not isinstance(preds, Predictions):
        preds = predictions_from_results(preds)
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)  # (K,)
    classes = gt.classes
    p_cls = _label_codes(gt, preds, unknown_labels)  # (P,)
    kept = np.flatnonzero(p_cls >= 0)  # (P',) file order
    ranked = kept[rank_detections(preds.score[kept], p_cls[kept], len(classes), ties)]
    tp = _true_positives(gt, preds, p_cls, ranked, thresholds, ties)  # (K, P')
    bounds = np.searchsorted(p_cls[ranked], np.arange(len(classes) + 1))
    npos = np.bincount(_lookup({c: i for i, c in enumerate(classes)}, gt.label),
                       minlength=len(classes))
    ap = np.zeros((len(thresholds), len(classes)))  # (K, C) like the official matrix
    for c in range(len(classes)):
        ap[:, c] = _average_precision(tp[:, bounds[c] : bounds[c + 1]], int(npos[c]))
    mean_ap = ap.mean(axis=1)  # (K,)
    by_threshold = dict(zip(tiou_keys(thresholds), map(float, mean_ap), strict=True))
    outside = [v for v in preds.video[kept].tolist() if v not in gt.durations]
    return {
        "mAP": by_threshold,
        "average_mAP": float(mean_ap.mean()),
        "average_mAP_ranges": range_averages(by_threshold),
        "per_class_AP": {name: ap[:, c].tolist() for c, name in enumerate(classes)},
        "subset": gt.subset,
        "videos": len(gt.durations),
        "instances": len(gt.label),
        "detections": len(preds.label),
        "detections_outside_subset": len(outside),
        "detections_on_other_subsets": sum(v in gt.other_videos for v in outside),
        "detections_dropped": len(preds.label) - len(kept),
        "detections_beyond_duration": _beyond_duration(gt, preds.video, preds.segment),
        "instances_beyond_duration": _beyond_duration(gt, gt.video, gt.segment),
        "ties": ties,
    }


# the tIoU ranges whose average mAP papers print: THUMOS'14 (three) and ActivityNet
PAPER_RANGES = ("0.1:0.5:0.1", "0.3:0.7:0.1", "0.1:0.7:0.1", "0.5:0.95:0.05")


def range_averages(by_threshold: Mapping[str, float]) -> dict[str, float]:
    """{"0.10:0.50": mean mAP over 0.1, 0.2, ..., 0.5, ...} for each paper range whose
    thresholds were all scored."""
    out = {}
    for text in PAPER_RANGES:
        keys = tiou_keys(parse_tiou(text))
        if all(k in by_threshold for k in keys):
            out[f"{keys[0]}:{keys[-1]}"] = float(np.mean([by_threshold[k] for k in keys]))
    return out


def _beyond_duration(gt: GroundTruth, video: np.ndarray, segment: np.ndarray) -> int:
    """How many of these segments of scored videos reach outside their video."""
    code = _lookup({v: i for i, v in enumerate(gt.durations)}, video)  # (N,) -1: not scored
    durations = np.array(list(gt.durations.values()))[code[code >= 0]]
    return int(beyond_duration(segment[code >= 0], durations).sum())


def score_files(
    gt_path: str | Path, pred_path: str | Path, subset: str = "validation",
    tiou_thresholds: Sequence[float] | np.ndarray = TIOU, ties: str = "official",
) -> dict[str, Any]:
    """`avloc score`: read an ActivityNet ground-truth and a results file and score them
    as the official evaluator does (default: its `validation` subset)."""
    gt = read_ground_truth(gt_path, subset)
    return detection_map(gt, read_predictions(pred_path), tiou_thresholds, ties)
