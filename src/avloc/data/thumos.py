"""THUMOS'14 (20 sports actions; 200 Validation and 212 Test videos with temporal
annotations) in the two layouts its features are distributed in.

`data.format=thumos14`, ActionFormer's (github.com/happyharrycn/actionformer_release):
    DIR/annotations/thumos14.json (or DIR/thumos14.json, or the path in data.annotations):
        {"database": {video: {"subset": "Validation" | "Test", "duration", "fps",
                              "annotations": [{"label", "segment": [s, e], "label_id"}]}}}
    DIR/i3d_features/<video>.npy (or DIR/features/): (T, 2048) I3D RGB+flow, one feature
        every data.feat_stride = 4 frames from data.num_frames = 16 frames, at the video's
        own frame rate (30, 29.97, 25 or 24 fps).
`data.format=thumos14_wtalc`, W-TALC's `Thumos14reduced` (data/wtalc.py): annotation .npy
    files (subsets `validation` / `test`) and `Thumos14reduced-I3D-JOINTFeatures.npy`,
    16 frames at 25 fps = 0.64 s snippets (data.snippet_seconds).

Timing (ActionFormer layout): feature i saw frames [i s, i s + n) (s = feat_stride, n =
num_frames). ActionFormer puts a feature at the centre of its window, (i s + n / 2) / fps
seconds; here snippet i is the stride-wide interval around that centre, so a video's grid
(`Timing`) has seconds = s k / fps and offset = (n - s k) / 2 / fps, k = data.downsample
(every k-th feature kept). With the thumos14 preset's k = 4, each snippet is exactly the
16 frames its feature saw (offset 0), like W-TALC's 16-frame snippets.

Splits (both layouts): Validation -> train, less a held-out val of data.val_fraction for
model selection (as every weakly-supervised method trains on it); Test -> test. Both
layouts are visual only: videos get (T, 0) audio and the visual-only model is trained
(`train.fit_modality` says so); THUMOS with audio features goes through the generic layout.

The release has 30 segments (in 5 videos) past their video's end, e.g. video_test_0000270
annotated to 713.7 s of 176.25 s. They are kept, as the official evaluation and ActionFormer
count them: segment bounds are the one check these readers waive.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Timing, Video, frame_timing
from avloc.data.checks import (
    check_duration,
    check_feature_dims,
    check_length,
    check_video_name,
    features_2d,
    make_segment,
    multi_hot,
    require_file,
)
from avloc.data.wtalc import (
    WtalcLayout,
    gt_entry,
    gt_from_dataset,
    load_wtalc,
    read_annotations,
    split_videos,
    write_gt,
)
from avloc.util.errors import AvlocError
from avloc.util.io import load_npy, read_json

THUMOS_WTALC = WtalcLayout("thumos14", "Thumos14reduced", {"validation": "train", "test": "test"},
                           audio_required=False, segments_inside=False)
ANNOTATION_FILES = ("annotations/thumos14.json", "thumos14.json")  # ActionFormer's, then flat
FEATURE_DIRS = ("i3d_features", "features")
SPLIT_OF_SUBSET = {"validation": "train", "test": "test"}  # subset names compared lowercased
GT_SUBSET = {"train": "Validation", "val": "Validation", "test": "Test"}  # ActionFormer's names


@dataclass
class ThumosEntry:
    """One video of the JSON, checked."""

    vid: str
    split: str  # train | test
    duration: float  # seconds
    fps: float  # the video's (or data.default_fps)
    segments: list[Segment]


def snippet_timing(fps: float, cfg: DataConfig) -> Timing:
    """The snippet grid of a video at `fps`: each kept feature's stride-wide interval,
    centred on its window (ActionFormer's feature centre, (i s + n / 2) / fps)."""
    return frame_timing(fps, cfg.feat_stride, cfg.num_frames, cfg.downsample)


def _first_existing(root: Path, names: tuple[str, ...], what: str, folder: bool = False) -> Path:
    for name in names:
        path = root / name
        if path.is_dir() if folder else path.is_file():
            return path
    raise AvlocError(f"{root}: missing {what} (looked for {', '.join(names)})")


def annotation_path(cfg: DataConfig, root: Path) -> Path:
    """setting data.annotations, else DIR/annotations/thumos14.json or DIR/thumos14.json."""
    if cfg.annotations:
        return require_file(Path(cfg.annotations), "THUMOS'14 annotations (setting "
                                                   "data.annotations)")
    return _first_existing(root, ANNOTATION_FILES, "THUMOS'14 annotations (ActionFormer JSON)")


def _classes(database: dict[str, Any], path: Path) -> list[str]:
    """Class names in label_id order (alphabetical in the release), as ActionFormer maps
    them; sorted names when there are no label_ids. One id per name, one name per id."""
    ids: dict[str, Any] = {}
    for vid, entry in database.items():
        for ann in entry.get("annotations", []) if isinstance(entry, dict) else []:
            if not isinstance(ann, dict) or not isinstance(ann.get("label"), str):
                raise AvlocError(f"{path}: video {vid}: expected annotations "
                                 "[{'segment': [start, end], 'label': name}, ...]")
            label, lid = ann["label"], ann.get("label_id")
            if ids.setdefault(label, lid) != lid:
                raise AvlocError(f"{path}: video {vid}: label {label!r} has label_id {lid!r} "
                                 f"here but {ids[label]!r} elsewhere")
    if not ids:
        raise AvlocError(f"{path}: no annotated segments, so no classes")
    if all(lid is None for lid in ids.values()):
        return sorted(ids)
    names: dict[Any, str] = {}
    for label, lid in ids.items():
        if isinstance(lid, bool) or not isinstance(lid, int):
            raise AvlocError(f"{path}: label {label!r}: label_id {lid!r} is not an integer")
        if names.setdefault(lid, label) != label:
            raise AvlocError(f"{path}: labels {names[lid]!r} and {label!r} share label_id {lid}")
    return [names[lid] for lid in sorted(names)]


def _fps(entry: dict[str, Any], cfg: DataConfig, where: str) -> float:
    if cfg.default_fps > 0:
        return cfg.default_fps
    fps = entry.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (
            math.isfinite(fps) and fps > 0):
        raise AvlocError(f"{where}: fps {fps!r} is not a positive number (set data.default_fps "
                         "to use one frame rate for all videos)")
    return float(fps)


def _entry(vid: str, e: Any, classes: list[str], cfg: DataConfig, path: Path) -> ThumosEntry:
    where = f"{path}: video {vid}"
    check_video_name(vid, where)
    if not isinstance(e, dict):
        raise AvlocError(f"{where}: expected an object with subset, duration, fps, annotations")
    subset = e.get("subset")
    if not isinstance(subset, str) or subset.lower() not in SPLIT_OF_SUBSET:
        raise AvlocError(f"{where}: subset {subset!r}: expected Validation or Test")
    duration = check_duration(e.get("duration"), where)
    fps = _fps(e, cfg, where)
    anns = e.get("annotations", [])
    if not isinstance(anns, list):
        raise AvlocError(f"{where}: 'annotations' must be a list")
    segments = []
    for k, a in enumerate(anns):
        seg = a.get("segment")
        if not isinstance(seg, list) or len(seg) != 2:
            raise AvlocError(f"{where}: annotation {k}: segment {seg!r} is not a [start, end] pair")
        # end_slack inf: segments may pass the video's end (the release has 30; see above)
        segments.append(make_segment(seg[0], seg[1], a["label"], duration, classes, math.inf,
                                     f"{where}: annotation {k}"))
    return ThumosEntry(vid, SPLIT_OF_SUBSET[subset.lower()], duration, fps, segments)


def read_thumos_json(path: Path, cfg: DataConfig) -> tuple[list[str], list[ThumosEntry]]:
    """Classes and checked entries of ActionFormer's thumos14.json (no features needed)."""
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), dict) or not doc[
            "database"]:
        raise AvlocError(f"{path}: expected a JSON object with a non-empty 'database' object")
    database = doc["database"]
    classes = _classes(database, path)
    return classes, [_entry(vid, e, classes, cfg, path) for vid, e in database.items()]


def _features(fdir: Path, entry: ThumosEntry, cfg: DataConfig, timing: Timing) -> np.ndarray:
    """One video's checked (T, D) visual features, every data.downsample-th kept."""
    path = require_file(fdir / f"{entry.vid}.npy", f"features of video {entry.vid}")
    where = f"{path}: video {entry.vid}"
    raw = load_npy(path)  # (T_raw, D)
    if raw.ndim != 2:
        raise AvlocError(f"{where}: visual features have shape {raw.shape}, expected (T, D)")
    x = np.ascontiguousarray(features_2d(raw[:: cfg.downsample], where, "visual"))  # (T, D)
    # windows of n frames every s frames: the last n - s frames of a video start no window
    uncovered = (cfg.num_frames - cfg.feat_stride) / entry.fps
    check_length(len(x), entry.duration, timing.seconds, cfg.length_tolerance, where, uncovered)
    return x


def load_thumos14(cfg: DataConfig, root: Path) -> Dataset:
    """ActionFormer's layout, checked whole; visual only, per-video snippet timing."""
    path = annotation_path(cfg, root)
    classes, entries = read_thumos_json(path, cfg)
    fdir = _first_existing(root, FEATURE_DIRS, "folder of per-video I3D features", folder=True)
    items, annotations = [], {}
    for e in entries:
        timing = snippet_timing(e.fps, cfg)
        x = _features(fdir, e, cfg, timing)
        check_feature_dims((0, x.shape[1]), (0, items[0].visual.shape[1]) if items else
                           (0, x.shape[1]), f"{fdir / e.vid}.npy: video {e.vid}")
        audio = np.zeros((len(x), 0), dtype=np.float32)  # (T, 0): no audio features
        items.append(Video(e.vid, audio, x, multi_hot(e.segments, classes)))
        annotations[e.vid] = Annotation(e.vid, e.duration, e.segments, timing=timing)
    splits = split_videos(items, [e.split for e in entries], cfg)
    common_fps = Counter(e.fps for e in entries).most_common(1)[0][0]
    seconds = snippet_timing(common_fps, cfg).seconds  # nominal; each video has its own
    return Dataset("thumos14", "action", classes, seconds, splits, annotations)


def load_thumos14_wtalc(cfg: DataConfig, root: Path) -> Dataset:
    """W-TALC's Thumos14reduced files (0.64 s snippets); VGGish audio when packed beside."""
    return load_wtalc(cfg, root, THUMOS_WTALC)


def export_thumos_gt(source: Dataset | str | Path, path: str | Path,
                     cfg: DataConfig | None = None) -> dict[str, int]:
    """Write THUMOS'14 ground truth in the ActivityNet format, subsets `Validation` and
    `Test` (ActionFormer's names), atomically; return counts for a summary line.

    `source`: a loaded Dataset (train and val -> Validation, test -> Test), or a directory
    in the layout of cfg.format (thumos14 by default; only annotations are read). Both
    layouts of the same release give the same file.
    """
    cfg = cfg or DataConfig(format="thumos14")
    if isinstance(source, Dataset):
        classes, database = source.classes, gt_from_dataset(source, GT_SUBSET)
    elif cfg.format == "thumos14_wtalc":
        classes, videos = read_annotations(Path(source), THUMOS_WTALC, cfg.snippet_seconds)
        database = {v.vid: gt_entry(GT_SUBSET[THUMOS_WTALC.subsets[v.subset]], v.duration, "",
                                    v.segments) for v in videos}
    else:
        classes, entries = read_thumos_json(annotation_path(cfg, Path(source)), cfg)
        database = {e.vid: gt_entry(GT_SUBSET[e.split], e.duration, "", e.segments)
                    for e in entries}
    return write_gt(path, "THUMOS'14 (avloc export)", classes, database, ("Validation", "Test"))
