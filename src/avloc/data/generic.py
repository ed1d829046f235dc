"""The generic layout, for your own videos: one .npz per video plus an ActivityNet JSON.

    DIR/annotations.json          (or the path in setting data.annotations)
    DIR/features/<video id>.npz   audio (T, D_a), visual (T, D_v), any float dtype;
                                  audio (T, 0): no audio (visual-only data, e.g. THUMOS'14)

The JSON is the ActivityNet ground-truth format, `database` -> video id -> `subset`
(training | validation | testing), `duration` (seconds), `annotations` [{`segment`:
[start, end], `label`}] and/or `labels` [class names], with optional top-level keys:
- `classes`: the class list, in model order (default: the sorted label names);
- `snippet_seconds`: seconds per feature snippet; wins over setting data.snippet_seconds
  (features carry their own grid, the JSON travels with them);
- `task`: `action` (default; mAP over segments), `event` (snippet accuracy; needs one
  class per snippet) or `parsing` (audio-visual video parsing, scored by the LLP F-scores:
  each segment also names its `modality`, `audio` (heard) or `visual` (seen); an event
  both heard and seen is listed once per modality).

Video-level training labels are a video's `labels`, else the set of its segments' labels
(none: a background-only video); segments only reach evaluation. A parsing video may give
both, and they may differ (LLP's files hold labels without events and the reverse; the
official evaluation scores the events as annotated). A training video may give
`labels` alone (weak labels, as users have them: tags, a CSV, a folder per class); its
segments are then unknown, so it is never scored and never held out for validation, and
validation and testing videos need `annotations`. Videos listed in the JSON need a
features file; .npz files not listed are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Video
from avloc.data.checks import (
    align_av,
    check_duration,
    check_feature_dims,
    check_length,
    check_video_name,
    features_2d,
    holdout,
    make_segment,
    multi_hot,
    require_file,
    snippet_labels_from_segments,
)
from avloc.extract.store import SETTING_KEYS  # what a .npz meta says about its making
from avloc.util.errors import AvlocError
from avloc.util.io import read_json

FEATURE_DIR = "features"
ANNOTATION_FILE = "annotations.json"
SUBSETS = {"training": "train", "validation": "val", "testing": "test"}
TASKS = ("action", "event", "parsing")
MODALITIES = ("audio", "visual")  # a parsing segment's


@dataclass
class GenericEntry:
    """One video of the JSON database, checked."""

    vid: str
    split: str  # train | val | test
    duration: float
    segments: list[Segment]
    labels: list[str]  # video-level class names: its "labels", else its segments' labels
    weak: bool = False  # "labels" without "annotations": segments unknown, train only


@dataclass
class GenericSpec:
    """Everything the annotation JSON says, checked."""

    classes: list[str]
    task: str
    snippet_seconds: float
    entries: list[GenericEntry]
    seconds_from_json: bool = False  # snippet_seconds came from the JSON, not the setting
    path: Path = Path(ANNOTATION_FILE)  # the JSON


def annotation_path(cfg: DataConfig, root: Path) -> Path:
    """setting data.annotations (relative to the current directory), else DIR/annotations.json."""
    return Path(cfg.annotations) if cfg.annotations else root / ANNOTATION_FILE


def _classes(doc: dict[str, Any], database: dict[str, Any], path: Path) -> list[str]:
    """The top-level `classes` list when given, else every label name, sorted."""
    if "classes" in doc:
        classes = doc["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise AvlocError(f"{path}: 'classes' must be a list of strings")
        if len(set(classes)) != len(classes):
            raise AvlocError(f"{path}: 'classes' lists a class twice")
        return list(classes)
    labels = set()
    for e in database.values():
        if isinstance(e, dict):
            labels |= {a.get("label") for a in _list(e, "annotations") if isinstance(a, dict)}
            labels |= set(_list(e, "labels"))
    return sorted(x for x in labels if isinstance(x, str))


def _list(e: dict[str, Any], key: str) -> list[Any]:
    value = e.get(key, [])
    return value if isinstance(value, list) else []


def _snippet_seconds(doc: dict[str, Any], cfg: DataConfig, path: Path) -> float:
    value = doc.get("snippet_seconds", cfg.snippet_seconds)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AvlocError(f"{path}: snippet_seconds {value!r} must be a positive number")
    return float(value)


def _task(doc: dict[str, Any], path: Path) -> str:
    task = doc.get("task", "action")
    if task not in TASKS:
        raise AvlocError(f"{path}: task {task!r}: expected one of {', '.join(TASKS)}")
    return task


def read_generic_annotations(path: Path, cfg: DataConfig) -> GenericSpec:
    """Parse and check the whole annotation JSON."""
    require_file(path, "generic-layout annotations (ActivityNet JSON)")
    return parse_generic(read_json(path), path, cfg)


def parse_generic(doc: Any, path: Path, cfg: DataConfig) -> GenericSpec:
    """Check an annotation JSON document (read from, or about to be written to, `path`)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict):
        raise AvlocError(f"{path}: expected a JSON object with a 'database' object")
    database = doc["database"]
    if not database:
        raise AvlocError(f"{path}: 'database' lists no videos")
    classes = _classes(doc, database, path)
    if not classes:
        raise AvlocError(f"{path}: no classes (no labels, no segment labels and no 'classes' "
                         "list)")
    seconds = _snippet_seconds(doc, cfg, path)
    task = _task(doc, path)
    entries = [_entry(path, vid, e, set(classes), seconds, task) for vid, e in database.items()]
    return GenericSpec(classes, task, seconds, entries, "snippet_seconds" in doc, path)


def _entry(path: Path, vid: str, e: Any, classes: set[str], seconds: float, task: str
           ) -> GenericEntry:
    where = f"{path}: video {vid}"
    check_video_name(vid, where)
    if not isinstance(e, dict):
        raise AvlocError(f"{where}: expected an object with subset, duration and annotations "
                         "or labels")
    subset = e.get("subset")
    if not isinstance(subset, str) or subset not in SUBSETS:
        raise AvlocError(f"{where}: subset {subset!r}: expected training, validation or testing")
    duration = check_duration(e.get("duration"), where)
    if "annotations" not in e and "labels" not in e:  # a forgotten key must not mean "no class"
        raise AvlocError(f"{where}: neither 'annotations' (segments) nor 'labels' (video-level "
                         "classes); give one ('labels': [] for a video without any class)")
    anns = e.get("annotations", [])
    if not isinstance(anns, list):
        raise AvlocError(f"{where}: 'annotations' must be a list")
    segments = [_segment(a, duration, classes, seconds, f"{where}: annotation {k}", task)
                for k, a in enumerate(anns)]
    names = sorted({s.label for s in segments})
    if "labels" in e:
        given = _labels(e["labels"], classes, where)
        if "annotations" in e and set(given) != set(names) and task != "parsing":
            raise AvlocError(f"{where}: 'labels' {given} differ from its segments' labels {names}")
        names = given
    weak = "annotations" not in e and bool(names)
    if weak and SUBSETS[subset] != "train":
        raise AvlocError(f"{where}: subset {subset} is scored on segments, but the video has only "
                         "'labels'; add its 'annotations' (segments) or make it a training video")
    return GenericEntry(vid, SUBSETS[subset], duration, segments, names, weak)


def _labels(value: Any, classes: set[str], where: str) -> list[str]:
    """A video's `labels`: distinct class names (video-level labels, no times)."""
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise AvlocError(f"{where}: 'labels' must be a list of class names")
    for name in value:
        if name not in classes:
            raise AvlocError(f"{where}: label {name!r} is not in the class list")
    if len(set(value)) != len(value):
        raise AvlocError(f"{where}: 'labels' lists a class twice")
    return list(value)


def _segment(a: Any, duration: float, classes: set[str], seconds: float, where: str,
             task: str) -> Segment:
    if not isinstance(a, dict) or not isinstance(a.get("label"), str):
        raise AvlocError(f"{where}: expected {{'segment': [start, end], 'label': name}}")
    seg = a.get("segment")
    if not isinstance(seg, list) or len(seg) != 2:
        raise AvlocError(f"{where}: segment {seg!r} is not a [start, end] pair")
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in seg):
        raise AvlocError(f"{where}: segment {seg!r} is not numeric")
    modality = a.get("modality", "")
    if task == "parsing" and modality not in MODALITIES:
        raise AvlocError(f"{where}: modality {modality!r}: a parsing event is heard (\"audio\") "
                         "or seen (\"visual\"); one listed entry per modality")
    if task != "parsing" and "modality" in a:
        raise AvlocError(f"{where}: 'modality' is for \"task\": \"parsing\" (this file's task "
                         f"is {task})")
    segment = make_segment(seg[0], seg[1], a["label"], duration, classes, seconds, where)
    return dataclasses.replace(segment, modality=modality)


def _feature_dir(root: Path) -> Path:
    fdir = root / FEATURE_DIR
    if not fdir.is_dir():
        hint = " (found .npz files in DIR: move them into features/)" if any(
            root.glob("*.npz")) else ""
        raise AvlocError(f"{fdir}: missing folder of per-video .npz features{hint}")
    return fdir


def _extractor(z: Any, where: str) -> dict[str, Any] | None:
    if "meta" not in z.files:
        return None
    try:
        meta = json.loads(str(z["meta"]))
    except (ValueError, TypeError) as e:
        raise AvlocError(f"{where}: 'meta' is not JSON ({e})") from None
    found = {k: meta[k] for k in SETTING_KEYS if isinstance(meta, dict) and k in meta}
    return found or None


def read_npz(path: Path, vid: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """One video's checked (audio, visual), float32, and its extractor settings if recorded;
    no pickle (allow_pickle=False)."""
    where = f"{require_file(path, f'features of video {vid}')}: video {vid}"
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("audio", "visual") if k not in z.files]
            if missing:
                raise AvlocError(f"{where}: no array named {missing[0]!r} (has: {z.files})")
            audio = features_2d(z["audio"], where, "audio", no_dims_ok=True)  # (T, D_a >= 0)
            visual = features_2d(z["visual"], where, "visual")  # (T, D_v)
            extractor = _extractor(z, where)
    except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile) as e:  # what a truncated or bit-flipped zip raises
        raise AvlocError(f"{where}: cannot read as .npz ({type(e).__name__}: {e})") from None
    audio, visual = align_av(audio, visual, where)
    return audio, visual, extractor


def _video(
    entry: GenericEntry, fdir: Path, spec: GenericSpec, cfg: DataConfig
) -> tuple[Video, dict[str, Any] | None]:
    path = fdir / f"{entry.vid}.npz"
    audio, visual, extractor = read_npz(path, entry.vid)
    check_grid(extractor, spec, path, entry.vid)
    check_length(len(audio), entry.duration, spec.snippet_seconds, cfg.length_tolerance,
                 f"{path}: video {entry.vid}")
    return Video(entry.vid, audio, visual, multi_hot(entry.labels, spec.classes)), extractor


def check_grid(extractor: dict[str, Any] | None, spec: GenericSpec, path: Path, vid: str) -> None:
    """Features that record their snippet length (`avloc extract`'s meta) must be read on
    that grid; otherwise the length check would blame data.length_tolerance."""
    recorded = (extractor or {}).get("snippet_seconds")
    if not isinstance(recorded, (int, float)) or abs(recorded - spec.snippet_seconds) < 1e-9:
        return
    fix = (f'set "snippet_seconds": {recorded:g} in {spec.path}' if spec.seconds_from_json
           else f"set data.snippet_seconds={recorded:g}")
    source = "the annotation JSON's snippet_seconds" if spec.seconds_from_json else (
        "setting data.snippet_seconds, e.g. from --config")
    raise AvlocError(f"{path}: video {vid}: extracted with {recorded:g} s snippets (its .npz "
                     f"meta), but the data is read with {spec.snippet_seconds:g} s ({source}); "
                     f"{fix}, or re-extract with --snippet-seconds {spec.snippet_seconds:g}")


def _annotation(entry: GenericEntry, length: int, spec: GenericSpec, path: Path) -> Annotation:
    """Snippet labels only for event datasets (action segments may overlap across classes)
    whose segments are known."""
    snip = None
    if spec.task == "event" and not entry.weak:
        snip = snippet_labels_from_segments(entry.segments, length, spec.snippet_seconds,
                                            spec.classes, f"{path}: video {entry.vid}")
    return Annotation(entry.vid, entry.duration, entry.segments, snip, weak=entry.weak)


def _splits(videos: list[Video], entries: list[GenericEntry], cfg: DataConfig
            ) -> dict[str, list[Video]]:
    """Subsets as given; without a validation subset, hold out val_fraction of the training
    videos whose segments are known (weak-label videos cannot be scored)."""
    splits: dict[str, list[Video]] = {"train": [], "val": [], "test": []}
    for v, e in zip(videos, entries, strict=True):
        splits[e.split].append(v)
    if not splits["val"]:
        train = [(v, e) for v, e in zip(videos, entries, strict=True) if e.split == "train"]
        pool = [i for i, (_, e) in enumerate(train) if not e.weak]  # (n_annotated,)
        _, held = holdout([train[i][0].labels for i in pool], cfg.val_fraction, cfg.split_seed)
        out = {pool[j] for j in held}
        splits["train"] = [v for i, (v, _) in enumerate(train) if i not in out]
        splits["val"] = [train[i][0] for i in sorted(out)]
    return splits


def load_generic(cfg: DataConfig, root: Path) -> Dataset:
    """Read and check the whole generic layout."""
    path = annotation_path(cfg, root)
    spec = read_generic_annotations(path, cfg)
    fdir = _feature_dir(root)
    videos: list[Video] = []
    extractors: dict[str, Any] | None = None
    for i, entry in enumerate(spec.entries):
        video, extractor = _video(entry, fdir, spec, cfg)
        videos.append(video)
        where = f"{fdir / entry.vid}.npz: video {entry.vid}"
        check_feature_dims((video.audio.shape[1], video.visual.shape[1]),
                           (videos[0].audio.shape[1], videos[0].visual.shape[1]), where)
        if i == 0:
            extractors = extractor
        elif extractor != extractors:
            raise AvlocError(f"{where}: extracted with {extractor}, but the first video with "
                             f"{extractors}; re-extract with one setting")
    annotations = {e.vid: _annotation(e, v.length, spec, path)
                   for v, e in zip(videos, spec.entries, strict=True)}
    splits = _splits(videos, spec.entries, cfg)
    return Dataset("generic", spec.task, spec.classes, spec.snippet_seconds, splits, annotations,
                   extractors)
