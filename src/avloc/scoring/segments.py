"""From per-snippet probabilities to labels (events) and segments (actions): what is scored.

(`avloc localize`, which runs a raw video through a checkpoint, is avloc.infer.)

Event localization (AVE): every snippet takes the argmax of its C + 1 open-max
probabilities, background included (paper, Sec. 4.2).

Action localization (ActivityNet): the two-stage thresholding of W-TALC (Paul et al.,
2018; github.com/sujoyp/wtalc-pytorch detectionMAP.py getLocMAP, also used by 3C-Net):
1. class filter: keep the classes whose video-level score is at least the mean over classes
   (the paper's "average over all the classes"; W-TALC's logits use score > 0 instead);
2. per kept class, threshold its activation sequence at min + t (max - min) (t = 0.5 is
   W-TALC's max - 0.5 (max - min)); every run of snippets strictly above it of at least
   `min_snippets` snippets becomes a segment [s, e) in snippets, [s, e] * snippet_seconds in
   seconds (plus the video's snippet offset, `Timing`), scored max(activation inside) +
   score_weight * video score of the class.
Options beyond W-TALC: smoothing before thresholding, several thresholds, per-class NMS.

Audio-visual video parsing (LLP), as the official code decides (AVVP-ECCV20 `main_avvp.py`):
event c is in segment t of a modality when the video-level probability of c reaches
`parsing_video_threshold` and the modality's probability at t reaches its threshold (both
0.5 there; `>=`); its events are the runs of such segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avloc.config import LocalizeConfig
from avloc.data.base import Timing, snippets_in
from avloc.scoring.metrics import segment_iou

__all__ = ["argmax_labels", "event_segments", "parsing_decisions", "parsing_events",
           "segments_from_cas", "truth_matrices", "video_class_scores"]
PARSING_MODALITIES = ("audio", "visual")


def argmax_labels(p: np.ndarray) -> np.ndarray:
    """(T, C+1) open-max probabilities -> (T,) int64 predicted labels, 0 = background (the
    AVE protocol; the ground truth is `Annotation.snippet_labels`)."""
    return np.asarray(p).argmax(axis=1).astype(np.int64)


def event_segments(
    p: np.ndarray, snippet_seconds: float, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Event localization as segments: each run of snippets whose argmax is one action class
    becomes {label, score, segment}, scored by that class's mean probability over the run."""
    labels = argmax_labels(p)  # (T,)
    onehot = labels[None, :] == np.arange(1, p.shape[1])[:, None]  # (C, T)
    k, s, e = _runs(onehot)
    out = [
        {"label": classes[c], "score": float(p[a:b, c + 1].mean()),
         "segment": [float(a * snippet_seconds), float(b * snippet_seconds)]}
        for c, a, b in zip(k, s, e, strict=True)
    ]
    return sorted(out, key=lambda d: d["segment"][0])


def video_class_scores(cas: np.ndarray, topk_divisor: int = 8) -> np.ndarray:
    """(T, C) -> (C,): mean of the k = ceil(T / divisor) highest activations of each class.

    The same top-k pooling as the MIL loss (W-TALC), so the class filter ranks classes the
    way training scored them.
    """
    k = max(1, -(-len(cas) // topk_divisor))
    return np.sort(cas, axis=0)[-k:].mean(axis=0)  # (C,)


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along time; near the ends it averages the snippets available."""
    t = len(x)
    if window <= 1 or t == 0:
        return x
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])  # (T+1, K)
    left = (window - 1) // 2
    lo = np.clip(np.arange(t) - left, 0, t)  # (T,)
    hi = np.clip(np.arange(t) - left + window, 0, t)  # (T,)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]  # (T, K)


def _thresholds(cfg: LocalizeConfig) -> np.ndarray:
    """Relative thresholds t: just `act_threshold`, or t, t + step, ... below 1."""
    if cfg.act_threshold_step <= 0:
        return np.array([cfg.act_threshold])
    return np.arange(cfg.act_threshold, 1.0 - 1e-9, cfg.act_threshold_step)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, T) bool -> (column k, start s, end e) of every run of True, e exclusive."""
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # (K, T+1)
    k, start = np.nonzero(edges == 1)  # row-major: runs of a row in time order
    _, end = np.nonzero(edges == -1)
    return k, start, end


def _proposals(act: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(K, T) -> (3, R): class row, start, end (exclusive) of every run strictly above
    min + t (max - min) of its row, for each t; a run found at several t is kept once."""
    lo, hi = act.min(axis=1, keepdims=True), act.max(axis=1, keepdims=True)  # (K, 1)
    runs = [np.stack(_runs(act > lo + t * (hi - lo))) for t in thresholds]  # (3, R_t) each
    return np.unique(np.concatenate(runs, axis=1), axis=1)


def _outer_inner(act: np.ndarray, k: np.ndarray, s: np.ndarray, e: np.ndarray,
                 inflation: float) -> np.ndarray:
    """Outer-inner contrast of each run [s, e) of row k of act (K, T): its mean minus the
    mean of the `inflation` x length beside it on each side, cut at the video's ends (none
    left: 0), as BaS-Net's get_proposal_oic (AutoLoc's OIC) -> (S,)."""
    out = np.empty(len(k))
    for j, (i, a, b) in enumerate(zip(k, s, e, strict=True)):
        grow = inflation * (b - a)
        lo, hi = max(0, int(a - grow)), min(act.shape[1], int(b + grow))
        outer = np.concatenate([act[i, lo:a], act[i, b:hi]])
        out[j] = act[i, a:b].mean() - (outer.mean() if outer.size else 0.0)
    return out


def _nms(label: np.ndarray, seg: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Greedy per-class NMS: indices kept, best first; tIoU > iou with a kept one suppresses."""
    keep: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        rivals = np.array([j for j in keep if label[j] == label[i]], dtype=np.int64)
        if not np.any(segment_iou(seg[rivals], seg[i]) > iou):
            keep.append(int(i))
    return np.array(keep, dtype=np.int64)


def segments_from_cas(
    cas: np.ndarray,
    video_scores: np.ndarray,
    timing: Timing | float,
    classes: Sequence[str],
    cfg: LocalizeConfig | None = None,
    duration: float | None = None,
) -> list[dict[str, Any]]:
    """Two-stage thresholding of one video's class activation sequence.

    cas: (T, C) activations of the C action classes (open-max p[:, 1:] = mu * p_ac);
    video_scores: (C,) video-level class scores (top-k mean of cas, `video_class_scores`);
    timing: the video's snippet grid (`Dataset.timing(vid)`), or seconds per snippet;
    duration: seconds; segments are clipped to it (features may run past the video's end).
    Returns [{"label", "score", "segment": [start, end]}] in descending score, ready for
    the results JSON.
    """
    cfg = cfg or LocalizeConfig()  # checked by config.validate when the settings load
    cas = np.asarray(cas, dtype=np.float64)
    video_scores = np.asarray(video_scores, dtype=np.float64)
    if cas.ndim != 2 or cas.shape[1] != len(classes) or video_scores.shape != (len(classes),):
        raise ValueError(
            f"cas {cas.shape} and video_scores {video_scores.shape} must be (T, C) and (C,) "
            f"with C = {len(classes)} classes"
        )
    if len(cas) == 0:
        return []

    # stage 1: classes whose video score reaches the mean over classes
    kept = np.arange(len(classes))
    if cfg.class_filter == "mean":
        kept = np.nonzero(video_scores >= video_scores.mean())[0]  # (K,)
    act = _moving_average(cas[:, kept], cfg.smooth).T  # (K, T)

    # stage 2: runs above min + t (max - min) of each kept class
    k, s, e = _proposals(act, _thresholds(cfg))
    long = e - s >= cfg.min_snippets
    k, s, e = k[long], s[long], e[long]
    if cfg.segment_score == "oic":
        base = _outer_inner(act, k, s, e, cfg.oic_inflation)  # (S,)
    else:
        base = np.array([act[i, a:b].max() for i, a, b in zip(k, s, e, strict=True)])  # (S,)
    score = base + cfg.score_weight * video_scores[kept[k]]  # (S,)

    timing = timing if isinstance(timing, Timing) else Timing(float(timing))
    seg = timing.at(np.stack([s, e], axis=1)).reshape(-1, 2)  # (S, 2) seconds
    seg[:, 0] = np.maximum(seg[:, 0], 0.0)  # a negative offset puts snippet 0 before 0 s
    if duration is not None:
        seg[:, 1] = np.minimum(seg[:, 1], duration)
    valid = seg[:, 1] > seg[:, 0]  # a run starting past the video's end is dropped
    k, seg, score = k[valid], seg[valid], score[valid]

    if cfg.nms_iou > 0:
        order = _nms(k, seg, score, cfg.nms_iou)
    else:
        order = np.argsort(-score, kind="stable")
    return [
        {"label": classes[kept[k[i]]], "score": float(score[i]), "segment": seg[i].tolist()}
        for i in order
    ]


def parsing_decisions(
    audio: np.ndarray, visual: np.ndarray, video: np.ndarray, cfg: LocalizeConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) audio and visual probabilities and (C,) video-level ones -> the (C, T) 0/1
    audio and visual predictions the parsing metrics score; or, for N videos at once,
    (N, T, C) and (N, C) -> (N, C, T)."""
    present = (np.asarray(video) >= cfg.parsing_video_threshold)[..., None]  # (C, 1)
    heard = np.swapaxes(np.asarray(audio), -1, -2) >= cfg.parsing_audio_threshold  # (C, T)
    seen = np.swapaxes(np.asarray(visual), -1, -2) >= cfg.parsing_visual_threshold  # (C, T)
    return (heard & present).astype(np.uint8), (seen & present).astype(np.uint8)


def truth_matrices(segments: Sequence[Any], classes: Sequence[str], length: int,
                   timing: Timing | float) -> tuple[np.ndarray, np.ndarray]:
    """A parsing video's events -> (C, T) 0/1 audio and visual ground truth: each event
    marks the segments its [onset, offset) holds (`snippets_in`; LLP's whole seconds give
    the official GT[c, onset:offset] = 1), overlapping events of a class merge."""
    out = {m: np.zeros((len(classes), length), np.uint8) for m in PARSING_MODALITIES}
    for s in segments:
        if s.modality in out:
            out[s.modality][classes.index(s.label)] |= snippets_in(s.start, s.end, length, timing)
    return out["audio"], out["visual"]


def parsing_events(
    audio: np.ndarray, visual: np.ndarray, video: np.ndarray, timing: Timing | float,
    classes: Sequence[str], cfg: LocalizeConfig,
) -> list[dict[str, Any]]:
    """The audio and visual event tracks of one video: each run of segments where an event
    is decided (`parsing_decisions`) becomes {label, modality, score, segment}, scored by the
    modality's mean probability over the run; in time order, audio first."""
    grid = timing if isinstance(timing, Timing) else Timing(float(timing))
    out = []
    for modality, decided, prob in zip(PARSING_MODALITIES,
                                       parsing_decisions(audio, visual, video, cfg),
                                       (audio, visual), strict=True):
        k, s, e = _runs(decided)
        out += [{"label": classes[c], "modality": modality,
                 "score": float(np.asarray(prob)[a:b, c].mean()),
                 "segment": [float(grid.at(a)), float(grid.at(b))]}
                for c, a, b in zip(k, s, e, strict=True)]
    return sorted(out, key=lambda d: (d["modality"] != "audio", d["segment"][0], d["label"]))
