"""The official ActivityNet JSON formats: ground truth and detection results.

Ground truth (ActivityNet `activity_net.v1-2.min.json`; "version" / "taxonomy" ignored):
    {"database": {vid: {"subset": "validation", "duration": 123.4,
                        "annotations": [{"segment": [s, e], "label": "Archery"}, ...]}}}
Results (what `avloc localize` writes and the official evaluator reads):
    {"version": "VERSION 1.2", "external_data": {...},
     "results": {vid: [{"label": "Archery", "score": 0.9, "segment": [s, e]}, ...]},
     "avloc": {"task": ..., "subset": ..., "snippet_seconds": ..., "thresholds": ...}}
("avloc", optional, says what made the file; the official evaluator reads only the rest.)
Audio-visual video parsing (LLP) adds "modality": "audio" | "visual" to each annotation
and each result: an event heard and seen is one entry per modality.

This module turns both into flat column arrays (`GroundTruth`, `Predictions`) that
avloc.scoring.metrics scores, and checks them on the way in: every problem is one AvlocError
line naming the file, the video / entry and what is wrong.

What the official reader (ActivityNet Evaluation/eval_detection.py) accepts is accepted
here, with the same meaning:
- segments with end == start, in the ground truth (the real ActivityNet 1.2 validation set
  has three [0, 0] instances) and in results (the official code scores them: their tIoU is
  0, or NaN against a zero-length instance at the same time, see avloc.scoring.metrics);
- results for videos outside the scored subset (kept: the official code counts them as
  false positives);
- integer scores (kept as int64, as the official pandas column holds them, because the
  ranking of equal scores is done by NumPy's default sort of that column).
Segments outside [0, duration] are scored as they are, as there, and counted
(`beyond_duration`). Stricter, as one-line errors naming the file, video and entry:
end < start, non-finite times or scores, missing keys, and duplicate keys (json would
silently keep the last one). "version" / "external_data" are optional in results files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data.base import Annotation
from avloc.util.errors import AvlocError
from avloc.util.io import read_json

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
    subset: str | None = None  # the subset scored; None: every video of the source
    other_videos: frozenset[str] = frozenset()  # videos of the source in other subsets
    modality: np.ndarray | None = None  # (N,) object: parsing data's "audio" | "visual"

    @property
    def classes(self) -> list[str]:
        """Classes present, in order of first appearance (the official evaluator's order)."""
        return list(dict.fromkeys(self.label.tolist()))


@dataclass
class Predictions:
    """Detections, one row per segment, in file order (videos in the file's order, then
    each video's list): the order in which the official code ranks equal scores."""

    video: np.ndarray  # (P,) object
    segment: np.ndarray  # (P, 2) float64: [start, end] seconds
    label: np.ndarray  # (P,) object
    score: np.ndarray  # (P,) float64, or int64 when every score in the file is an integer
    source: str = "predictions"
    modality: np.ndarray | None = None  # (P,) object: parsing results' "audio" | "visual"


# ---------------------------------------------------------------------------------------
# reading


def load_json(path: str | Path) -> Any:
    """Parse a JSON file strictly (`avloc.util.io.read_json`)."""
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


MODALITIES = ("audio", "visual")


def _modality(entry: dict[str, Any], where: str) -> str:
    """A parsing entry's "modality" ("" when it has none)."""
    modality = entry.get("modality", "")
    if modality != "" and modality not in MODALITIES:
        raise AvlocError(f"{where}: modality must be \"audio\" or \"visual\", got {modality!r}")
    return modality


def _modality_column(values: list[str], where: str) -> np.ndarray | None:
    """None when no entry has a modality; else every entry must (parsing data)."""
    if not any(values):
        return None
    if not all(values):
        raise AvlocError(f"{where}: some entries name a modality and some do not (parsing "
                         "data needs one on every entry)")
    return np.array(values, dtype=object)


def beyond_duration(segment: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """(N, 2) segments, (N,) durations -> (N,) True where a segment reaches outside
    [0, duration] by more than TOLERANCE_S. Such segments are scored as they are (the
    official code never looks at durations) but counted: often a file in frames, or of
    another dataset. (The real THUMOS'14 test annotations hold one, 17 s past its video.)"""
    return (segment[:, 0] < -TOLERANCE_S) | (segment[:, 1] > duration + TOLERANCE_S)


def parse_ground_truth(data: Any, source: str, subset: str | None = None) -> GroundTruth:
    """Check and flatten a loaded ground-truth object; keep only videos of `subset` (None: all)."""
    database = _mapping(data, "database", source)
    durations: dict[str, float] = {}
    video, segment, label, modality = [], [], [], []
    subsets_seen: set[str] = set()
    others: set[str] = set()
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
                others.add(vid)
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
            video.append(vid)
            segment.append((start, end))
            label.append(ann["label"])
            modality.append(_modality(ann, at))
    if subset is not None and not durations:
        have = ", ".join(sorted(subsets_seen)) or "none"
        raise AvlocError(f"{source}: no videos in subset {subset!r} (subsets present: {have}; "
                         "avloc score takes --subset NAME)")
    if not label:
        raise AvlocError(f"{source}: no ground-truth instances to evaluate")
    return GroundTruth(
        durations=durations,
        video=np.array(video, dtype=object),
        segment=np.array(segment, dtype=np.float64).reshape(-1, 2),
        label=np.array(label, dtype=object),
        source=source,
        subset=subset,
        other_videos=frozenset(others),
        modality=_modality_column(modality, source),
    )


def parse_predictions(data: Any, source: str) -> Predictions:
    """Check and flatten a loaded results object {"results": {vid: [entry, ...]}}."""
    results = _mapping(data, "results", source)
    video, segment, label, score, modality = [], [], [], [], []
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
            if end < start:
                raise AvlocError(f"{at}: segment [{start:g}, {end:g}] ends before it starts")
            video.append(vid)
            segment.append((start, end))
            label.append(entry["label"])
            score.append(s)
            modality.append(_modality(entry, at))
    return Predictions(
        video=np.array(video, dtype=object),
        segment=np.array(segment, dtype=np.float64).reshape(-1, 2),
        label=np.array(label, dtype=object),
        score=_score_column(score),
        source=source,
        modality=_modality_column(modality, source),
    )


def _score_column(scores: list[int | float]) -> np.ndarray:
    """The scores as the official evaluator's pandas column holds them: int64 when every
    score is an integer that fits, float64 otherwise. (The dtype picks NumPy's sort kernel,
    and so the order of equal scores.)"""
    if scores and all(isinstance(s, int) and -(2**63) <= s < 2**63 for s in scores):
        return np.array(scores, dtype=np.int64)
    return np.array(scores, dtype=np.float64)


def read_ground_truth(path: str | Path, subset: str | None = None) -> GroundTruth:
    """An ActivityNet ground-truth JSON file, restricted to `subset` (e.g. "validation")."""
    return parse_ground_truth(load_json(path), str(path), subset)


def read_predictions(path: str | Path) -> Predictions:
    """An ActivityNet detection results JSON file."""
    return parse_predictions(load_json(path), str(path))


# ---------------------------------------------------------------------------------------
# building and writing


def results_json(
    per_video: Mapping[str, list[dict[str, Any]]],
    version: str = VERSION,
    external_data: dict[str, Any] | None = None,
    made_by: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The official results object from {vid: [{label, score, segment}, ...]}; `made_by`,
    what made it (task, subset, snippet grid, thresholds), goes under "avloc"."""
    doc = {
        "version": version,
        "results": {vid: list(dets) for vid, dets in per_video.items()},
        "external_data": external_data if external_data is not None else {"used": False},
    }
    if made_by:
        doc["avloc"] = dict(made_by)
    return doc


def made_by(data: Any) -> dict[str, Any]:
    """A results object's "avloc" entry (what made it), {} when it has none."""
    entry = data.get("avloc") if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) else {}


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
                {"segment": [float(s.start), float(s.end)], "label": s.label,
                 **({"modality": s.modality} if s.modality else {})} for s in ann.segments
            ],
        }
    return {"version": version, "taxonomy": [], "database": database}


def ground_truth_from_annotations(
    annotations: Iterable[Annotation], source: str = "annotations", subset: str | None = None
) -> GroundTruth:
    """Dataset annotations (the videos of one split) as a GroundTruth, checked like a file;
    `subset` names the split in what is reported."""
    gt = parse_ground_truth(ground_truth_json(annotations), source)
    gt.subset = subset
    return gt


def predictions_from_results(
    per_video: Mapping[str, list[dict[str, Any]]], source: str = "predictions"
) -> Predictions:
    """{vid: [{label, score, segment}, ...]} (what scoring.segments returns) as Predictions."""
    return parse_predictions({"results": per_video}, source)
