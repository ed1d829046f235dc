"""The official ActivityNet JSON formats: ground truth and detection results.

Ground truth (ActivityNet `activity_net.v1-2.min.json`; "version" / "taxonomy" ignored):
    {"database": {vid: {"subset": "validation", "duration": 123.4,
                        "annotations": [{"segment": [s, e], "label": "Archery"}, ...]}}}
Results (what `avloc predict` writes and the official evaluator reads):
    {"version": "VERSION 1.2", "external_data": {...},
     "results": {vid: [{"label": "Archery", "score": 0.9, "segment": [s, e]}, ...]}}

This module turns both into flat column arrays (`GroundTruth`, `Predictions`) that
avloc.metrics scores, and checks them on the way in: every problem is one AvlocError
line naming the file, the video / entry and what is wrong.

Deliberate differences from the official reader (ActivityNet Evaluation/eval_detection.py):
- Ground-truth segments with end == start are kept (the real ActivityNet 1.2 validation set
  has three [0, 0] instances; the official code counts them as positives nothing can match).
  end < start is an error. Predictions need end > start.
- Segments may exceed [0, duration] by at most `TOLERANCE_S` (annotations overshoot the
  duration by up to 0.35 s in ActivityNet 1.2).
- "version" / "external_data" are optional in results files; duplicate keys are errors
  (json would silently keep the last one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data.base import Annotation
from avloc.errors import AvlocError
from avloc.io import read_json

TOLERANCE_S = 1.0  # seconds a segment may reach outside [0, duration]: >= one snippet of AVE / ANet
VERSION = "VERSION 1.2"


@dataclass
class GroundTruth:
    """Instances of the evaluated videos, one row per instance."""

    durations: dict[str, float]  # every evaluated video -> seconds, with or without instances
    video: np.ndarray  # (N,) object: video id of each instance
    segment: np.ndarray  # (N, 2) float64: [start, end] seconds
    label: np.ndarray  # (N,) object: class name
    source: str = "ground truth"  # file name, for messages

    @property
    def classes(self) -> list[str]:
        """Classes present, in order of first appearance (the official evaluator's order)."""
        return list(dict.fromkeys(self.label.tolist()))


@dataclass
class Predictions:
    """Detections, one row per segment, in file order (the tie-break order for equal scores)."""

    video: np.ndarray  # (P,) object
    segment: np.ndarray  # (P, 2) float64: [start, end] seconds
    label: np.ndarray  # (P,) object
    score: np.ndarray  # (P,) float64
    source: str = "predictions"


# ---------------------------------------------------------------------------------------
# reading


def load_json(path: str | Path) -> Any:
    """Parse a JSON file strictly (`avloc.io.read_json`)."""
    return read_json(path)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mapping(obj: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or key not in obj:
        raise AvlocError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, dict):
        raise AvlocError(f"{where}: {key!r} must be an object keyed by video id")
    return value


def _segment(entry: Any, where: str) -> tuple[float, float]:
    """[start, end] of one annotation / result entry, as two finite numbers."""
    if not isinstance(entry, dict):
        raise AvlocError(f"{where}: expected an object with 'segment' and 'label'")
    for key in ("segment", "label"):
        if key not in entry:
            raise AvlocError(f"{where}: missing key {key!r}")
    seg = entry["segment"]
    if not (isinstance(seg, list) and len(seg) == 2 and all(map(_is_number, seg))):
        raise AvlocError(f"{where}: segment must be [start, end] in seconds, got {seg!r}")
    start, end = float(seg[0]), float(seg[1])
    if not (math.isfinite(start) and math.isfinite(end)):
        raise AvlocError(f"{where}: segment {seg} is not finite")
    if not isinstance(entry["label"], str):
        raise AvlocError(f"{where}: label must be a string, got {entry['label']!r}")
    return start, end


def _check_bounds(start: float, end: float, duration: float, tol: float, where: str) -> None:
    if start < -tol or end > duration + tol:
        raise AvlocError(
            f"{where}: segment [{start:g}, {end:g}] lies outside the video [0, {duration:g}] s"
        )


def parse_ground_truth(
    data: Any, source: str, subset: str | None = None, tolerance: float = TOLERANCE_S
) -> GroundTruth:
    """Check and flatten a loaded ground-truth object; keep only videos of `subset` (None: all)."""
    database = _mapping(data, "database", source)
    durations: dict[str, float] = {}
    video, segment, label = [], [], []
    subsets_seen: set[str] = set()
    for vid, v in database.items():
        where = f"{source}: video {vid}"
        if not isinstance(v, dict):
            raise AvlocError(f"{where}: expected an object with 'duration' and 'annotations'")
        need = ("duration", "annotations") + (("subset",) if subset is not None else ())
        for key in need:
            if key not in v:
                raise AvlocError(f"{where}: missing key {key!r}")
        if subset is not None:
            subsets_seen.add(str(v["subset"]))
            if v["subset"] != subset:
                continue
        duration = v["duration"]
        if not _is_number(duration) or not math.isfinite(duration) or duration <= 0:
            raise AvlocError(f"{where}: duration must be a positive number, got {duration!r}")
        if not isinstance(v["annotations"], list):
            raise AvlocError(f"{where}: 'annotations' must be a list")
        durations[vid] = float(duration)
        for i, ann in enumerate(v["annotations"]):
            at = f"{where}, annotation {i}"
            start, end = _segment(ann, at)
            if end < start:
                raise AvlocError(f"{at}: segment end {end:g} is before its start {start:g}")
            _check_bounds(start, end, float(duration), tolerance, at)
            video.append(vid)
            segment.append((start, end))
            label.append(ann["label"])
    if subset is not None and not durations:
        have = ", ".join(sorted(subsets_seen)) or "none"
        raise AvlocError(f"{source}: no videos in subset {subset!r} (subsets present: {have})")
    if not label:
        raise AvlocError(f"{source}: no ground-truth instances to evaluate")
    return GroundTruth(
        durations=durations,
        video=np.array(video, dtype=object),
        segment=np.array(segment, dtype=np.float64).reshape(-1, 2),
        label=np.array(label, dtype=object),
        source=source,
    )


def parse_predictions(data: Any, source: str) -> Predictions:
    """Check and flatten a loaded results object {"results": {vid: [entry, ...]}}."""
    results = _mapping(data, "results", source)
    video, segment, label, score = [], [], [], []
    for vid, entries in results.items():
        if not isinstance(entries, list):
            raise AvlocError(f"{source}: video {vid}: expected a list of detections")
        for i, entry in enumerate(entries):
            at = f"{source}: video {vid}, detection {i}"
            start, end = _segment(entry, at)
            if "score" not in entry:
                raise AvlocError(f"{at}: missing key 'score'")
            s = entry["score"]
            if not _is_number(s) or not math.isfinite(s):
                raise AvlocError(f"{at}: score must be a finite number, got {s!r}")
            if end <= start:
                raise AvlocError(f"{at}: segment [{start:g}, {end:g}] has end <= start")
            video.append(vid)
            segment.append((start, end))
            label.append(entry["label"])
            score.append(float(s))
    return Predictions(
        video=np.array(video, dtype=object),
        segment=np.array(segment, dtype=np.float64).reshape(-1, 2),
        label=np.array(label, dtype=object),
        score=np.array(score, dtype=np.float64),
        source=source,
    )


def read_ground_truth(
    path: str | Path, subset: str | None = None, tolerance: float = TOLERANCE_S
) -> GroundTruth:
    """An ActivityNet ground-truth JSON file, restricted to `subset` (e.g. "validation")."""
    return parse_ground_truth(load_json(path), str(path), subset, tolerance)


def read_predictions(path: str | Path) -> Predictions:
    """An ActivityNet detection results JSON file."""
    return parse_predictions(load_json(path), str(path))


# ---------------------------------------------------------------------------------------
# building and writing


def results_json(
    per_video: Mapping[str, list[dict[str, Any]]],
    version: str = VERSION,
    external_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The official results object from {vid: [{label, score, segment}, ...]}."""
    return {
        "version": version,
        "results": {vid: list(dets) for vid, dets in per_video.items()},
        "external_data": external_data if external_data is not None else {"used": False},
    }


def ground_truth_json(
    annotations: Iterable[Annotation], subset: str = "validation", version: str = VERSION
) -> dict[str, Any]:
    """The official ground-truth object for dataset annotations (all put in `subset`)."""
    database: dict[str, Any] = {}
    for ann in annotations:
        if ann.vid in database:
            raise AvlocError(f"annotations: video {ann.vid} appears twice")
        database[ann.vid] = {
            "subset": subset,
            "duration": float(ann.duration),
            "annotations": [
                {"segment": [float(s.start), float(s.end)], "label": s.label} for s in ann.segments
            ],
        }
    return {"version": version, "taxonomy": [], "database": database}


def ground_truth_from_annotations(
    annotations: Iterable[Annotation], source: str = "annotations"
) -> GroundTruth:
    """Dataset annotations (one per evaluated video) as a GroundTruth, checked like a file
    except for the segment bounds, which each reader has checked by its dataset's rules
    (THUMOS'14 keeps the release's segments past the end of their video)."""
    return parse_ground_truth(ground_truth_json(annotations), source, tolerance=math.inf)


def predictions_from_results(
    per_video: Mapping[str, list[dict[str, Any]]], source: str = "predictions"
) -> Predictions:
    """{vid: [{label, score, segment}, ...]} (what avloc.localize returns) as Predictions."""
    return parse_predictions({"results": per_video}, source)
