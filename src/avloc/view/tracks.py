"""What the page draws for one video, by task: its tracks, the outcome of each segment and
the video's own numbers.

- action (detection) and event (AVE) models: ground truth, predicted segments with their
  outcome (avloc.view.diagnose), the activation of the top classes, mu; event models also
  the video's snippet accuracy (the AVE protocol);
- parsing (LLP) models: for audio and for visual, the ground-truth events, the predicted
  events and the per-segment probabilities; each event judged as the LLP event level
  judges it, and the video's LLP F-scores.

A track is {key, title, kind, lanes, ...}: kind "truth" (items [start, end, label,
outcome]), "pred" ([start, end, label, score, outcome]), "heat" (one row of activations
per lane, base64 bytes) or "line" (mu, base64 bytes). view.js draws each kind the same way
whatever the task.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avloc.data.base import Timing, snippets_in
from avloc.scoring.results import CasRecord
from avloc.view.diagnose import diagnose

HEAT_CLASSES = 8  # rows of an activation heat map: the classes a reader cares about first
LANES = 10  # predicted-segment lanes; further classes share the last one
MODALITIES = ("audio", "visual")
HEARD_SEEN = {"audio": "heard", "visual": "seen"}

# outcome -> (name, colour, the rule, as the page explains it)
DETECTION_OUTCOMES = {
    "tp": ("correct", "#2b6cb0", "tIoU >= {tiou} with an instance of its class that no "
           "better detection took"),
    "boundaries": ("poor boundaries", "#e08e0b", "overlaps an instance of its class with "
                   "0.1 <= tIoU < {tiou}"),
    "wrong_class": ("wrong class", "#8e44ad", "overlaps (tIoU >= 0.1) only instances of "
                    "other classes"),
    "false_positive": ("false positive", "#c0392b", "overlaps no instance (tIoU < 0.1), or "
                       "repeats an instance a better detection already found"),
    "": ("not judged", "#7f8c8d", "ranked below this video's G best detections (G = its "
         "ground-truth instances, at least 1): the diagnosis judges a video's G best only, "
         "while mAP counts every detection"),
    "found": ("instance found", "#2ca02c", "a judged detection took it at tIoU >= {tiou}"),
    "missed": ("instance missed", "#e74c3c", "no judged detection took it at tIoU >= {tiou} "
               "(a detection below the G best may still overlap it: drawn grey, not judged)"),
}
PARSING_OUTCOMES = {
    "tp": ("correct", "#2b6cb0", "a true event of its class in its modality has tIoU >= 0.5 "
           "with it, counted in segments (the LLP event level)"),
    "false_positive": ("false positive", "#c0392b", "no true event of its class in its "
                       "modality reaches tIoU >= 0.5 with it"),
    "found": ("event found", "#2ca02c", "a predicted event of its class in its modality "
              "reaches tIoU >= 0.5 with it"),
    "missed": ("event missed", "#e74c3c", "no predicted event of its class in its modality "
               "reaches tIoU >= 0.5 with it"),
}


def outcomes(task: str, tiou: float) -> dict[str, dict[str, str]]:
    """The outcomes the page names, for its legend, filters and tooltips."""
    table = PARSING_OUTCOMES if task == "parsing" else DETECTION_OUTCOMES
    return {k: {"name": n, "color": c, "rule": r.format(tiou=f"{tiou:g}")}
            for k, (n, c, r) in table.items()}


@dataclass
class Detections:
    """One video's entries of results.json, best first."""

    segment: np.ndarray  # (D, 2) seconds
    label: list[str]
    score: np.ndarray  # (D,)
    modality: list[str]  # "audio" | "visual" for parsing models, "" otherwise


@dataclass
class Truth:
    """One video's ground truth."""

    segment: np.ndarray  # (G, 2) seconds
    label: list[str]
    modality: list[str]


@dataclass
class VideoView:
    tracks: list[dict[str, Any]]
    errors: dict[str, int]  # outcome -> count, for the index and its filter
    scores: dict[str, float]  # the video's own numbers (accuracy, F-scores), fractions
    by_modality: dict[str, dict[str, int]] | None = None  # parsing: errors per modality


def b64(x: np.ndarray) -> str:
    """Values in [0, 1] as base64 bytes of round(255 x)."""
    q = np.round(np.clip(np.nan_to_num(x), 0, 1) * 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _lanes(labels: Sequence[str]) -> list[str]:
    lanes = list(dict.fromkeys(labels))
    return lanes if len(lanes) <= LANES else [*lanes[: LANES - 1], "(other classes)"]


def _heat(name: str, title: str, probs: np.ndarray, classes: list[str],
          rows: list[int], absolute: bool = False) -> dict[str, Any]:
    """A heat-map track of `probs` (T, C) for the class rows `rows`, on the video's range
    (an unsure model still shows its leanings), or on [0, 1] when `absolute` (probabilities
    decided at fixed thresholds)."""
    heat = probs[:, rows].T  # (K, T)
    low, high = (float(heat.min()), float(heat.max())) if heat.size else (0.0, 1.0)
    if absolute:
        low, high = 0.0, 1.0
    span = max(high - low, 1e-6)
    return {"key": name, "title": title, "kind": "heat", "lanes": [classes[c] for c in rows],
            "data": b64((heat - low) / span), "range": [low, low + span]}


def heat_rows(probs: np.ndarray, first: Sequence[str], classes: list[str]) -> list[int]:
    """The true classes, those predicted, then the strongest activations, at most
    HEAT_CLASSES."""
    peak = probs.max(axis=0) if len(probs) else np.zeros(len(classes))  # (C,)
    names = [*first, *(classes[c] for c in np.argsort(-peak, kind="stable"))]
    index = {c: i for i, c in enumerate(classes)}
    return [index[n] for n in dict.fromkeys(names) if n in index][:HEAT_CLASSES]


def detection_view(det: Detections, truth: Truth | None, rec: CasRecord | None, task: str,
                   tiou: float) -> VideoView:
    """Action and event models: ground truth, predictions judged (DETAD), activation, mu."""
    kinds, missed = [""] * len(det.label), []
    tracks = []
    if truth is not None:
        kinds, missed = diagnose(det.segment, det.label, det.score, truth.segment, truth.label,
                                 tiou)
        tracks.append({"key": "gt", "title": "ground truth", "kind": "truth",
                       "lanes": list(dict.fromkeys(truth.label)) or ["(none)"],
                       "items": [[float(s), float(e), c, "missed" if m else "found"]
                                 for (s, e), c, m in zip(truth.segment, truth.label, missed,
                                                         strict=True)]})
    tracks.append({"key": "pred", "title": "predicted (score)", "kind": "pred",
                   "lanes": _lanes(det.label) or ["(none)"],
                   "items": [[float(s), float(e), c, float(sc), k] for (s, e), c, sc, k
                             in zip(det.segment, det.label, det.score, kinds, strict=True)]})
    scores: dict[str, float] = {}
    if rec is not None:
        rows = heat_rows(rec.cas, [*(truth.label if truth else []), *det.label], rec.classes)
        tracks.append(_heat("heat", "class activation", rec.cas, rec.classes, rows))
        tracks.append({"key": "mu", "title": "μ (foreground reliability)", "kind": "line",
                       "data": b64(rec.mu)})
        if task == "event" and truth is not None:
            correct, total = snippet_hits(rec, truth)
            scores["accuracy"] = correct / max(total, 1)
            scores["snippets"] = total
    errors = {k: kinds.count(k) for k in ("tp", "boundaries", "wrong_class", "false_positive")}
    return VideoView(tracks, errors | {"missed": int(sum(missed))}, scores)


def snippet_hits(rec: CasRecord, truth: Truth) -> tuple[int, int]:
    """AVE protocol on one video: snippets whose argmax over C + 1 (0 = background) is the
    true label (a snippet whose start lies in a segment has its class), and snippets."""
    from avloc.scoring.segments import argmax_labels

    labels = np.zeros(len(rec.cas), np.int64)  # (T,) background
    for (s, e), c in zip(truth.segment, truth.label, strict=True):
        if c in rec.classes:
            labels[snippets_in(s, e, len(rec.cas), rec.timing)] = rec.classes.index(c) + 1
    return int((argmax_labels(rec.p) == labels).sum()), len(labels)


def parsing_view(det: Detections, truth: Truth | None, rec: CasRecord | None,
                 timing: Timing, length: int, scores: dict[str, float]) -> VideoView:
    """Parsing models: per modality, the true and predicted events as the LLP protocol sees
    them (runs of segments on the grid), each judged by its event-level rule, and the
    probabilities; `scores`: the video's F-scores."""
    from avloc.scoring.metrics.parsing import event_matches

    classes = sorted({*det.label, *(truth.label if truth else [])}) or ["(none)"]
    pred = _matrices(det.segment, det.label, det.modality, classes, length, timing)
    gt = _matrices(truth.segment, truth.label, truth.modality, classes, length, timing) \
        if truth is not None else None
    tracks, errors = [], {"tp": 0, "false_positive": 0, "missed": 0}
    by_modality = {}
    for m, name in enumerate(MODALITIES):
        truth_m = gt[m] if gt is not None else np.zeros_like(pred[m])
        p_runs, p_hit, g_runs, g_hit = event_matches(pred[m], truth_m)
        judged = gt is not None
        if judged:
            tracks.append({"key": f"gt_{name}", "title": f"{name}: ground truth "
                           f"({HEARD_SEEN[name]})", "kind": "truth",
                           "lanes": _used(classes, g_runs[0]) or ["(none)"],
                           "items": [[*_seconds(timing, a, b), classes[c],
                                      "found" if hit else "missed"]
                                     for c, a, b, hit in zip(*g_runs, g_hit, strict=True)]})
        items = [[*_seconds(timing, a, b), classes[c],
                  _score(det, name, classes[c], *_seconds(timing, a, b)),
                  ("tp" if hit else "false_positive") if judged else ""]
                 for c, a, b, hit in zip(*p_runs, p_hit, strict=True)]
        tracks.append({"key": f"pred_{name}", "title": f"{name}: predicted (score)",
                       "kind": "pred", "lanes": _used(classes, p_runs[0]) or ["(none)"],
                       "items": items})
        if rec is not None and rec.audio is not None:
            probs = rec.audio if name == "audio" else rec.visual
            rows = heat_rows(probs, [classes[c] for c in (*g_runs[0], *p_runs[0])],
                             rec.classes)
            tracks.append(_heat(f"heat_{name}", f"{name}: probability", probs, rec.classes,
                                rows, absolute=True))
        counts = {"tp": int(p_hit.sum()), "false_positive": int((~p_hit).sum()),
                  "missed": int((~g_hit).sum()) if judged else 0}
        by_modality[name] = counts
        errors = {k: errors[k] + counts[k] for k in errors}
    return VideoView(tracks, errors, scores, by_modality)


def _matrices(segment: np.ndarray, label: list[str], modality: list[str], classes: list[str],
              length: int, timing: Timing) -> tuple[np.ndarray, np.ndarray]:
    """(C, T) audio and visual 0/1 matrices of events (segments.truth_matrices)."""
    from avloc.data.base import Segment
    from avloc.scoring.segments import truth_matrices

    segments = [Segment(float(s), float(e), c, m)
                for (s, e), c, m in zip(segment, label, modality, strict=True)]
    return truth_matrices(segments, classes, length, timing)


def _used(classes: list[str], rows: np.ndarray) -> list[str]:
    return [classes[c] for c in sorted(set(rows.tolist()))]


def _seconds(timing: Timing, start: int, end: int) -> list[float]:
    return [float(timing.at(start)), float(timing.at(end))]


def _score(det: Detections, modality: str, label: str, start: float, end: float) -> float:
    """The best score of the results' entries of this class and modality inside an event."""
    best = [float(sc) for (s, e), c, m, sc in zip(det.segment, det.label, det.modality,
                                                 det.score, strict=True)
            if c == label and m == modality and s < end and e > start]
    return max(best, default=0.0)
