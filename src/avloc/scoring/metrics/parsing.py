"""Audio-visual video parsing (LLP): segment-level and event-level F-scores per modality.

The metrics of Tian, Li and Xu, "Unified Multisensory Perception: Weakly-Supervised
Audio-Visual Video Parsing", ECCV 2020, computed as their official code does
(github.com/YapengTian/AVVP-ECCV20: `utils/eval_metrics.py` `segment_level`,
`event_level`, `extract_event`, `event_wise_metric`; `main_avvp.py` `eval`):

- Per video, binary (C, T) matrices: predicted audio events SO_a, visual SO_v, and
  audio-visual SO_av = SO_a * SO_v (an event heard *and* seen); the same for the ground
  truth (GT_av = GT_a * GT_v).
- Segment level: per class, TP / FP / FN count segments. Event level: per class, the
  events are the runs of 1s of its row; a predicted event is a TP when some ground-truth
  event of the class has sum(x1 * x2) >= 0.5 * sum(x1 + x2 - x1 * x2) with it (tIoU >= 0.5
  on the segment vectors), else an FP; a ground-truth event no prediction reaches is an FN.
- F per class = 2 TP / (2 TP + FP + FN), only over the classes with TP + FP + FN > 0
  (a class neither predicted nor present is skipped); the video's F is their mean, and
  1.0 when no class counts ("all true negatives"). Event@AV pools the audio and visual
  counts of a class (TP_a + TP_v, ...) before its F.
- Each F is averaged over the videos; Type@AV = mean of the audio, visual and
  audio-visual averages, Event@AV the average of the pooled F.

Values are fractions in [0, 1] (the official code prints percent). Videos may have
different T; the official code assumes T = 10 (LLP's ten one-second segments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avloc.config.values import PARSING_LEVELS as LEVELS
from avloc.config.values import PARSING_METRICS as METRIC_NAMES  # "LEVEL.NAME", selectable
from avloc.config.values import PARSING_SUMMARIES as SUMMARIES
from avloc.util.errors import AvlocError

# the protocol's decision rule (main_avvp.py `eval`): an event is predicted where its
# video-level probability and the modality's per-segment probability are >= 0.5
OFFICIAL_THRESHOLD = 0.5
MODALITIES = ("audio", "visual", "audio_visual")
LABELS = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual",
          "type_av": "Type@AV", "event_av": "Event@AV"}


def stack(mats: Sequence[np.ndarray], what: str = "matrices", dtype: Any = np.uint8
          ) -> np.ndarray:
    """(N, C, T_max) from N (C, T) matrices, zero-padded: zeros add no segment and no
    event, so videos of any length share one array."""
    if not len(mats):
        raise AvlocError("parsing metrics: no videos to score")
    if isinstance(mats, np.ndarray) and mats.ndim == 3:  # stacked already
        return mats.astype(dtype, copy=False)
    if any(np.ndim(m) != 2 for m in mats) or len({np.shape(m)[0] for m in mats}) != 1:
        raise AvlocError(f"parsing metrics: {what} must be (C, T) matrices with one C")
    out = np.zeros((len(mats), np.shape(mats[0])[0], max(np.shape(m)[1] for m in mats)), dtype)
    for i, m in enumerate(mats):
        out[i, :, :np.shape(m)[1]] = m
    return out


def _binary(mats: Sequence[np.ndarray], what: str) -> np.ndarray:
    """`stack` of 0/1 matrices; any other value is an error."""
    raw = stack(mats, what, np.float64)
    if not np.isin(raw, (0, 1)).all():
        bad = int(np.argwhere(~np.isin(raw, (0, 1)))[0, 0])
        raise AvlocError(f"parsing metrics: {what} of video {bad} holds values other than 0/1")
    return raw.astype(np.uint8)


def segment_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, C, T) predictions and truth -> (3, N, C) segment TP, FP, FN per video and class."""
    p, g = pred.astype(np.int64), gt.astype(np.int64)
    return np.stack([(p * g).sum(-1), (p * (1 - g)).sum(-1), ((1 - p) * g).sum(-1)])


def runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, T) 0/1 rows -> (row, start, end) of every run of 1s, end exclusive, row-major:
    the events `extract_event` finds in each row."""
    edges = np.diff(np.pad(x.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # (R, T+1)
    row, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    return row, start, end


def _matched(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], rows: int) -> np.ndarray:
    """For every run of `a`, whether some run of `b` in the same row has tIoU >= 0.5 with it
    (`event_wise_metric`: intersection >= 0.5 * union, counted in segments)."""
    ra, sa, ea = a
    rb, sb, eb = b
    # the runs of b in each row: rows are sorted, so each row's runs are one slice
    first = np.searchsorted(rb, np.arange(rows), side="left")  # (R,)
    last = np.searchsorted(rb, np.arange(rows), side="right")  # (R,)
    count = (last - first)[ra]  # (A,) candidates of each run of a
    owner = np.repeat(np.arange(len(ra)), count)  # (P,) the run of a of each pair
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    other = first[ra][owner] + offset  # (P,) the run of b of each pair
    inter = np.clip(np.minimum(ea[owner], eb[other]) - np.maximum(sa[owner], sb[other]), 0,
                    None)
    union = (ea[owner] - sa[owner]) + (eb[other] - sb[other]) - inter
    hit = np.zeros(len(ra), dtype=bool)
    hit[owner[inter >= 0.5 * union]] = True
    return hit


def event_matches(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray,
                                                              tuple[np.ndarray, ...], np.ndarray]:
    """(R, T) 0/1 rows of predictions and truth -> the events (runs: row, start, end) of
    each and whether each finds one of the other's in its row at tIoU >= 0.5: a predicted
    event that does is a TP, else an FP; a true event no predicted one finds is an FN."""
    rows = pred.shape[0]
    p_runs, g_runs = runs(pred), runs(gt)
    return p_runs, _matched(p_runs, g_runs, rows), g_runs, _matched(g_runs, p_runs, rows)


def event_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, C, T) predictions and truth -> (3, N, C) event TP, FP, FN per video and class."""
    n, c, t = pred.shape
    p_runs, p_hit, g_runs, g_hit = event_matches(pred.reshape(n * c, t), gt.reshape(n * c, t))
    per_row = lambda rows, keep: np.bincount(rows[keep], minlength=n * c)  # noqa: E731
    tp = per_row(p_runs[0], p_hit)
    fp = per_row(p_runs[0], ~p_hit)
    fn = per_row(g_runs[0], ~g_hit)
    return np.stack([tp, fp, fn]).reshape(3, n, c)


def video_f(counts: np.ndarray) -> np.ndarray:
    """(3, N, C) TP, FP, FN -> (N,) per-video F: the mean over classes with TP + FP + FN > 0
    of 2 TP / (2 TP + FP + FN); 1.0 for a video where no class counts."""
    tp, fp, fn = counts.astype(np.float64)
    active = (tp + fp + fn) > 0  # (N, C) the official (TP+FP != 0 or TP+FN != 0)
    f = np.where(active, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)  # (N, C)
    n_active = active.sum(1)
    return np.where(n_active > 0, f.sum(1) / np.maximum(n_active, 1), 1.0)


def _level(count: Any, pa: np.ndarray, pv: np.ndarray, ga: np.ndarray, gv: np.ndarray
           ) -> dict[str, np.ndarray]:
    """Per-video F of one level: audio, visual, audio-visual and the pooled Event@AV."""
    ca, cv, cav = count(pa, ga), count(pv, gv), count(pa * pv, ga * gv)
    return {"audio": video_f(ca), "visual": video_f(cv), "audio_visual": video_f(cav),
            "event_av": video_f(ca + cv)}


def per_video_scores(
    pred_audio: Sequence[np.ndarray], pred_visual: Sequence[np.ndarray],
    gt_audio: Sequence[np.ndarray], gt_visual: Sequence[np.ndarray],
    levels: Sequence[str] = LEVELS,
) -> dict[str, dict[str, np.ndarray]]:
    """Every video's F-scores: {level: {audio, visual, audio_visual, event_av: (N,)}}.

    Each argument: one (C, T) 0/1 matrix per video (rows = classes, columns = segments),
    or all of them as one (N, C, T) array (`stack`).
    """
    n = len(pred_audio)
    if not (len(pred_visual) == len(gt_audio) == len(gt_visual) == n):
        raise AvlocError(f"parsing metrics: {n} audio predictions, {len(pred_visual)} visual, "
                         f"{len(gt_audio)} and {len(gt_visual)} ground truths")
    inputs = (pred_audio, pred_visual, gt_audio, gt_visual)
    stacked = all(isinstance(x, np.ndarray) and x.ndim == 3 for x in inputs)
    if not (stacked and len({x.shape for x in inputs}) == 1):  # else check video by video
        for i in range(n):
            shapes = {np.shape(x[i]) for x in inputs}
            if len(shapes) != 1:
                raise AvlocError(f"parsing metrics: video {i}: predictions and ground truth "
                                 f"have shapes {sorted(shapes)}")
    pa, pv = _binary(pred_audio, "audio predictions"), _binary(pred_visual, "visual predictions")
    ga, gv = _binary(gt_audio, "audio ground truth"), _binary(gt_visual, "visual ground truth")
    count = {"segment_level": segment_counts, "event_level": event_counts}
    return {level: _level(count[level], pa, pv, ga, gv) for level in levels}


def summarize(per_video: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Averages over videos, plus Type@AV (mean of audio, visual, audio-visual)."""
    out: dict[str, Any] = {}
    for level, scores in per_video.items():
        mean = {k: float(np.mean(v)) for k, v in scores.items()}
        mean["type_av"] = (mean["audio_visual"] + mean["audio"] + mean["visual"]) / 3
        out[level] = {k: mean[k] for k in SUMMARIES}
    out["videos"] = int(len(next(iter(next(iter(per_video.values())).values()))))
    return out


def parsing_scores(
    pred_audio: Sequence[np.ndarray], pred_visual: Sequence[np.ndarray],
    gt_audio: Sequence[np.ndarray], gt_visual: Sequence[np.ndarray],
    levels: Sequence[str] = LEVELS,
) -> dict[str, Any]:
    """The official LLP numbers: {"segment_level": {audio, visual, audio_visual, type_av,
    event_av}, "event_level": {...}, "videos": N}; see the module docstring. `levels`: only
    these (threshold tuning needs one)."""
    return summarize(per_video_scores(pred_audio, pred_visual, gt_audio, gt_visual, levels))


def modality_specific(
    pred_audio: Sequence[np.ndarray], pred_visual: Sequence[np.ndarray],
    gt_audio: Sequence[np.ndarray], gt_visual: Sequence[np.ndarray],
) -> dict[str, float | None]:
    """avloc's diagnostic, not an official number: of the segments where an event is heard
    but not seen (`heard_only`), the fraction the predictions put in audio and not in
    visual; the same for seen but not heard (`seen_only`). Pooled over videos; None without
    such segments. A model that cannot tell the modalities apart scores 0."""
    out: dict[str, float | None] = {}
    pa, pv = _binary(pred_audio, "audio predictions"), _binary(pred_visual, "visual predictions")
    ga, gv = _binary(gt_audio, "audio ground truth"), _binary(gt_visual, "visual ground truth")
    for name, mine, other, truth, absent in (("heard_only", pa, pv, ga, gv),
                                             ("seen_only", pv, pa, gv, ga)):
        where = (truth == 1) & (absent == 0)
        found = where & (mine == 1) & (other == 0)
        out[name] = float(found.sum() / where.sum()) if where.any() else None
    return out


__all__ = [
    "LEVELS", "METRIC_NAMES", "MODALITIES", "OFFICIAL_THRESHOLD", "SUMMARIES", "event_counts",
    "event_matches",
    "modality_specific", "parsing_scores", "per_video_scores", "runs",
    "segment_counts", "stack", "summarize", "video_f",
]
