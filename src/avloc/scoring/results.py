"""A localization output folder, as `avloc localize` and `avloc eval --out` write it:

    OUT/results.json         every video's segments, ActivityNet results format (`avloc score`)
    OUT/cas/<video>.npz      one video's raw model outputs, to post-process on one's own
    OUT/ground_truth.json    (`avloc eval` only) the split's ground truth, ActivityNet format

A CAS file holds, with no pickle (np.load(..., allow_pickle=False) reads it):
    cas         (T, C) float32  open-max probability of each action class (= mu * p_ac)
    background  (T,)   float32  probability of background (class 0 of the model)
    mu          (T,)   float32  foreground reliability
    times       (T, 2) float64  start and end of each snippet, seconds
    classes     (C,)   str      class names, in the columns' order
    meta        JSON string: video, duration, snippet_seconds, offset, task, checkpoint
                (its checksum: which model made the file), source, format_version
and, from a parsing model (LLP) only:
    audio       (T, C) float32  probability that each event is heard in each segment
    visual      (T, C) float32  probability that each event is seen in each segment
    video       (C,)   float32  video-level probability of each event
(`cas` is then the larger of audio and visual.)

Segments are always made from these files (`segments_of`), so results.json follows the
post-processing settings of the moment (e.g. tuned ones) without running the model again.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import Config
from avloc.data.base import Timing
from avloc.util.errors import AvlocError
from avloc.util.io import atomic_open, write_json_atomic

CAS_DIR = "cas"
RESULTS_FILE = "results.json"
GROUND_TRUTH_FILE = "ground_truth.json"
FORMAT_VERSION = 1
PARSING_TRACKS = ("audio", "visual", "video")


@dataclass
class CasRecord:
    """One video's model outputs on its snippet grid."""

    vid: str
    cas: np.ndarray  # (T, C) action-class probabilities
    background: np.ndarray  # (T,)
    mu: np.ndarray  # (T,)
    classes: list[str]
    timing: Timing
    duration: float  # seconds
    meta: dict[str, Any]
    audio: np.ndarray | None = None  # parsing models: (T, C) heard
    visual: np.ndarray | None = None  # (T, C) seen
    video: np.ndarray | None = None  # (C,) video level

    @property
    def p(self) -> np.ndarray:
        """(T, C+1) the model's open-max probabilities, background first."""
        return np.concatenate([self.background[:, None], self.cas], axis=1)

    def tracks(self) -> dict[str, np.ndarray]:
        """The parsing outputs this record holds (none for event and action models)."""
        found = {"audio": self.audio, "visual": self.visual, "video": self.video}
        return {k: v for k, v in found.items() if v is not None}

    @property
    def times(self) -> np.ndarray:
        """(T, 2) start and end of every snippet, seconds."""
        t = np.arange(len(self.cas))  # (T,)
        return np.stack([self.timing.at(t), self.timing.at(t + 1)], axis=1)


def cas_path(out: str | Path, vid: str) -> Path:
    return Path(out) / CAS_DIR / f"{vid}.npz"


def write_cas(path: Path, rec: CasRecord) -> None:
    """Atomically (`atomic_open`): a kill never leaves a half-written file to be taken as done."""
    meta = {**rec.meta, "video": rec.vid, "duration": float(rec.duration),
            "snippet_seconds": rec.timing.seconds, "offset": rec.timing.offset,
            "format_version": FORMAT_VERSION}
    tracks = {k: np.asarray(v, np.float32) for k, v in rec.tracks().items()}
    with atomic_open(path, "wb") as f:
        np.savez(f, cas=rec.cas.astype(np.float32), background=rec.background.astype(np.float32),
                 mu=rec.mu.astype(np.float32), times=rec.times, classes=np.array(rec.classes),
                 meta=np.array(json.dumps(meta, sort_keys=True)), **tracks)


def read_cas(path: str | Path) -> CasRecord:
    """One CAS file, checked; any problem is a one-line AvlocError naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("cas", "background", "mu", "classes", "meta")}
            tracks = {k: z[k] for k in PARSING_TRACKS if k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise AvlocError(f"{path}: not a readable CAS file ({type(e).__name__}: {e})") from None
    try:
        meta = json.loads(str(arrays["meta"]))
        timing = Timing(float(meta["snippet_seconds"]), float(meta["offset"]))
        duration, vid = float(meta["duration"]), str(meta["video"])
    except (ValueError, KeyError, TypeError) as e:
        raise AvlocError(f"{path}: CAS file meta is incomplete ({e})") from None
    cas, bg, mu = arrays["cas"], arrays["background"], arrays["mu"]
    classes = [str(c) for c in arrays["classes"].tolist()]
    t = (len(cas),)
    if cas.ndim != 2 or cas.shape[1] != len(classes) or bg.shape != t or mu.shape != t:
        raise AvlocError(f"{path}: cas {cas.shape}, background {bg.shape}, mu {mu.shape} and "
                         f"{len(classes)} classes do not fit together")
    expected = {"audio": cas.shape, "visual": cas.shape, "video": (len(classes),)}
    if tracks and {k: v.shape for k, v in tracks.items()} != expected:
        raise AvlocError(f"{path}: parsing outputs {sorted(tracks)} are incomplete or do not "
                         f"fit cas {cas.shape}")
    if not all(np.isfinite(a).all() for a in (cas, bg, mu, *tracks.values())):
        raise AvlocError(f"{path}: CAS file holds NaN or Inf")
    return CasRecord(vid, cas, bg, mu, classes, timing, duration, meta, **tracks)


def cas_state(path: Path, checkpoint: str) -> str:
    """'missing' (absent or unreadable: compute it), 'done' (made by this checkpoint: keep
    it) or 'stale' (made by another checkpoint)."""
    if not path.is_file():
        return "missing"
    try:
        rec = read_cas(path)
    except AvlocError:
        return "missing"
    return "done" if rec.meta.get("checkpoint") == checkpoint else "stale"


def segments_of(rec: CasRecord, task: str, cfg: Config) -> list[dict[str, Any]]:
    """A video's segments as the evaluation makes them: runs of the snippet argmax for event
    models, W-TALC two-stage thresholding (settings `localize.*`) for action models, audio
    and visual event tracks (settings `localize.parsing_*`) for parsing models."""
    from avloc.scoring.segments import (
        event_segments,
        parsing_events,
        segments_from_cas,
        video_class_scores,
    )

    if task == "parsing":
        if rec.audio is None or rec.visual is None or rec.video is None:
            raise AvlocError(f"video {rec.vid}: a parsing model's CAS file without its audio "
                             "and visual outputs")
        return parsing_events(rec.audio, rec.visual, rec.video, rec.timing, rec.classes,
                              cfg.localize)

    if task == "event":
        segments = event_segments(rec.p, rec.timing.seconds, rec.classes)
        for s in segments:  # event_segments counts from 0 s; shift by the grid's offset
            s["segment"] = [t + rec.timing.offset for t in s["segment"]]
        return segments
    scores = video_class_scores(rec.cas, cfg.loss.topk_divisor)  # (C,)
    return segments_from_cas(rec.cas, scores, rec.timing, rec.classes, cfg.localize,
                             duration=rec.duration)


def write_results(out: Path, records: Iterable[CasRecord], task: str, cfg: Config,
                  made_by: Mapping[str, Any] | None = None) -> Path:
    """OUT/results.json from CAS records, in the given order (atomic). Its "avloc" entry
    says what made it: the task, the snippet grid (when the videos share one) and
    `made_by` (a parsing model's thresholds, the split of `avloc eval --out`)."""
    from avloc.scoring.anet_json import results_json

    path = out / RESULTS_FILE
    per_video, grids = {}, set()
    for r in records:
        per_video[r.vid] = segments_of(r, task, cfg)
        grids.add(r.timing.seconds)
    entry = {"task": task, **({"snippet_seconds": grids.pop()} if len(grids) == 1 else {}),
             **(made_by or {})}
    write_json_atomic(path, results_json(per_video, made_by=entry))
    return path


def record_from_prediction(pred: Any, classes: list[str], timing: Timing, duration: float,
                           meta: Mapping[str, Any]) -> CasRecord:
    """A CAS record from `predict`'s VideoPrediction (p: (T, C+1), mu: (T,); a parsing
    model's audio, visual and video outputs too)."""
    return CasRecord(pred.vid, pred.p[:, 1:], pred.p[:, 0], pred.mu, list(classes), timing,
                     float(duration), dict(meta), pred.audio, pred.visual, pred.video)


def write_split(out: Path, ds: Any, split: str, preds: Sequence[Any], cfg: Config,
                checkpoint: str, made_by: Mapping[str, Any] | None = None) -> Path:
    """`avloc eval --out`: the split's CAS files, its ground truth (ActivityNet format, subset
    = the split's name) and results.json (recording the subset, and `made_by`); returns the
    results file's path."""
    from avloc.scoring.anet_json import ground_truth_json

    meta = {"task": ds.task, "checkpoint": checkpoint, "source": f"dataset {ds.name}, {split}"}
    records = []
    for p in preds:
        ann = ds.annotations[p.vid]
        rec = record_from_prediction(p, ds.classes, ds.timing(p.vid), ann.duration, meta)
        write_cas(cas_path(out, p.vid), rec)
        records.append(rec)
    gt = ground_truth_json([ds.annotations[p.vid] for p in preds], subset=split)
    write_json_atomic(out / GROUND_TRUTH_FILE, gt)
    return write_results(out, records, ds.task, cfg, {"subset": split, **(made_by or {})})
