"""The W-TALC layout (Paul et al., 2018; github.com/sujoyp/wtalc-pytorch), shared by
ActivityNet 1.2 (data/anet.py) and THUMOS'14 (`Thumos14reduced`, data/thumos.py).

Annotations: `classlist`, `subset`, `videoname`, `duration`, `segments`, `labels` and
(optional) `url` as `.npy` arrays of bytes strings, one entry per video, in
DIR/<prefix>-Annotations/ or directly in DIR. `labels` (one per segment) is used;
`labels_all` is ignored (in ActivityNet 1.2 it does not line up with `segments` in 1753
videos). Other files there (THUMOS's `original_fps`, `Ambiguous_test.txt`) are ignored.

Features, in DIR, per-video arrays in `videoname` order:
- `<prefix>-I3D-JOINTFeatures.npy`: object array of (T, 2048) I3D RGB+flow, as shipped;
- `<prefix>-VGGish-Features.npy`: object array of (T, 128) VGGish on the same snippet grid
  (no public release exists; docs/datasets.md says how to make it). Required for
  ActivityNet; optional for THUMOS, whose W-TALC release is visual only: without it the
  videos get (T, 0) audio and the visual-only model is trained.

These object arrays are pickles: `avloc.util.io.load_npy` reads them with an unpickler that
builds only NumPy arrays, numbers and strings, so a crafted file cannot run code.

Video ids are the YouTube ids of `url` (the keys of the official ground truth JSON and
of result files); `videoname` (W-TALC's `video_N`, THUMOS's `video_test_0000004`) when
`url.npy` is absent. The layout's training subset -> train minus a seeded, stratified
`val_fraction` held out for model selection -> val; its test subset -> test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    check_unique,
    features_2d,
    holdout,
    make_segment,
    multi_hot,
    require_file,
)
from avloc.util.errors import AvlocError
from avloc.util.io import load_npy, write_json_atomic

REQUIRED = ("classlist", "subset", "videoname", "duration", "segments", "labels")


@dataclass(frozen=True)
class WtalcLayout:
    """What differs between the W-TALC datasets."""

    name: str  # Dataset.name
    prefix: str  # of the file names: ActivityNet1.2 | Thumos14reduced
    subsets: dict[str, str]  # W-TALC subset -> avloc split: train (less a held-out val) | test
    audio_required: bool  # False: no VGGish file means visual-only videos (T, 0) audio
    # False: segments may lie past the video's end (THUMOS'14's release has 30; see thumos.py)
    segments_inside: bool = True

    @property
    def annotation_dir(self) -> str:
        return f"{self.prefix}-Annotations"

    @property
    def visual_file(self) -> str:
        return f"{self.prefix}-I3D-JOINTFeatures.npy"

    @property
    def audio_file(self) -> str:
        return f"{self.prefix}-VGGish-Features.npy"


@dataclass
class WtalcVideo:
    """One video's annotation as read from the W-TALC files."""

    index: int  # position in the .npy arrays (and in the feature files)
    vid: str  # YouTube id (or videoname)
    name: str  # W-TALC videoname, e.g. video_4
    subset: str  # as in subset.npy: training | validation (ActivityNet), validation | test
    duration: float  # seconds
    url: str
    segments: list[Segment] = field(default_factory=list)


def _text(x: Any, where: str) -> str:
    """The .npy files hold bytes (Python 2 pickles); decode to str."""
    if isinstance(x, (bytes, np.bytes_)):
        try:
            return bytes(x).decode("utf-8")
        except UnicodeDecodeError:
            raise AvlocError(f"{where}: text {bytes(x)[:40]!r} is not UTF-8") from None
    return str(x)


def annotation_dir(root: Path, layout: WtalcLayout) -> Path:
    """DIR/<prefix>-Annotations/ when it exists, else DIR itself."""
    sub = root / layout.annotation_dir
    return sub if sub.is_dir() else root


def _annotation_arrays(adir: Path, layout: WtalcLayout) -> dict[str, np.ndarray]:
    arrays = {}
    for name in REQUIRED:
        what = f"{layout.prefix} annotation '{name}'"
        arrays[name] = load_npy(require_file(adir / f"{name}.npy", what))
    url = adir / "url.npy"
    arrays["url"] = load_npy(url) if url.is_file() else np.array([b""] * len(arrays["videoname"]))
    n = len(arrays["videoname"])
    for name, arr in arrays.items():
        if arr.ndim == 2 and arr.shape[1] == 1:
            arrays[name] = arr = arr[:, 0]  # (n, 1) column copies -> (n,)
        if name != "classlist" and (arr.ndim != 1 or len(arr) != n):
            raise AvlocError(
                f"{adir / f'{name}.npy'}: shape {arr.shape}, expected ({n},) like videoname.npy"
            )
    return arrays


def _video_id(name: str, url: str) -> str:
    """The YouTube id after 'v=' in the url; the W-TALC name when there is no url."""
    if "v=" in url:
        return url.split("v=", 1)[1].split("&", 1)[0]
    return name


def read_annotations(
    root: Path, layout: WtalcLayout, snippet_seconds: float
) -> tuple[list[str], list[WtalcVideo]]:
    """Classes and checked per-video annotations (no features needed, e.g. for GT export)."""
    adir = annotation_dir(root, layout)
    return _parse_annotations(adir, _annotation_arrays(adir, layout), layout, snippet_seconds)


def _parse_annotations(
    adir: Path, a: dict[str, np.ndarray], layout: WtalcLayout, snippet_seconds: float
) -> tuple[list[str], list[WtalcVideo]]:
    classes = [_text(c, str(adir / "classlist.npy")) for c in a["classlist"].reshape(-1)]
    check_unique(classes, str(adir / "classlist.npy"), what="class")
    class_set = set(classes)
    files = {name: str(adir / f"{name}.npy") for name in ("segments", "subset", "duration")}
    videos = []
    for i in range(len(a["videoname"])):
        name = _text(a["videoname"][i], str(adir / "videoname.npy"))
        where = f"{files['segments']}: video {name}"
        subset = _text(a["subset"][i], files["subset"])
        if subset not in layout.subsets:
            raise AvlocError(f"{files['subset']}: video {name}: subset {subset!r} "
                             f"(expected {' or '.join(layout.subsets)})")
        duration = check_duration(a["duration"][i], f"{files['duration']}: video {name}")
        segs, labs = list(a["segments"][i]), [_text(x, where) for x in a["labels"][i]]
        if len(segs) != len(labs):
            raise AvlocError(f"{where}: {len(segs)} segments but {len(labs)} labels in labels.npy")
        slack = snippet_seconds if layout.segments_inside else math.inf
        segments = [_segment(seg, lab, duration, class_set, slack, where)
                    for seg, lab in zip(segs, labs, strict=True)]
        url = _text(a["url"][i], str(adir / "url.npy"))
        videos.append(WtalcVideo(i, _video_id(name, url), name, subset, duration, url, segments))
    check_unique([v.name for v in videos], str(adir / "videoname.npy"))
    check_unique([v.vid for v in videos], str(adir / "url.npy"))
    return classes, videos


def _segment(
    seg: Any, label: str, duration: float, classes: set[str], end_slack: float, where: str
) -> Segment:
    pair = np.asarray(seg).reshape(-1)
    if pair.size != 2:
        raise AvlocError(f"{where}: segment {seg!r} is not a [start, end] pair")
    return make_segment(pair[0], pair[1], label, duration, classes, end_slack, where)


def _feature_list(root: Path, filename: str, n: int, what: str) -> np.ndarray:
    path = require_file(root / filename, what)
    arr = load_npy(path)
    if arr.ndim < 1 or len(arr) != n:
        raise AvlocError(
            f"{path}: {len(arr) if arr.ndim else 0} entries but videoname.npy lists {n} videos"
        )
    return arr


def _features(
    root: Path, videos: list[WtalcVideo], cfg: DataConfig, layout: WtalcLayout
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Checked (audio, visual) per video: 2-D, finite, aligned, length matching duration;
    audio (T, 0) when the layout allows no audio file and there is none."""
    n = len(videos)
    visual = _feature_list(root, layout.visual_file, n, "W-TALC I3D features")
    audio = None
    if layout.audio_required or (root / layout.audio_file).exists():
        audio = _feature_list(root, layout.audio_file, n, "VGGish audio features")
    apath, vpath = str(root / layout.audio_file), str(root / layout.visual_file)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for v in videos:
        x = features_2d(visual[v.index], f"{vpath}: video {v.name}", "visual")  # (T, D_v)
        if audio is None:
            a = np.zeros((len(x), 0), dtype=np.float32)  # (T, 0): no audio features
        else:
            a = features_2d(audio[v.index], f"{apath}: video {v.name}", "audio")  # (T, D_a)
            a, x = align_av(a, x, f"{apath}: video {v.name}")
        check_length(len(x), v.duration, cfg.snippet_seconds, cfg.length_tolerance,
                     f"{vpath}: video {v.name}")
        dims = (a.shape[1], x.shape[1])
        check_feature_dims(dims, (out[0][0].shape[1], out[0][1].shape[1]) if out else dims,
                           f"{root}: video {v.name}")
        out.append((a, x))
    return out


def split_videos(
    items: Sequence[Video], splits: Sequence[str], cfg: DataConfig
) -> dict[str, list[Video]]:
    """`splits[i]` (train | test) per video; train loses a held-out val of
    data.val_fraction, stratified by first class and seeded by data.split_seed."""
    train = [v for v, s in zip(items, splits, strict=True) if s == "train"]
    test = [v for v, s in zip(items, splits, strict=True) if s == "test"]
    kept, held = holdout([t.labels for t in train], cfg.val_fraction, cfg.split_seed)
    return {"train": [train[i] for i in kept], "val": [train[i] for i in held], "test": test}


def load_wtalc(cfg: DataConfig, root: Path, layout: WtalcLayout) -> Dataset:
    """Read and check the whole W-TALC directory; full-length videos (cropping is batching's)."""
    classes, videos = read_annotations(root, layout, cfg.snippet_seconds)
    feats = _features(root, videos, cfg, layout)
    annotations = {v.vid: Annotation(v.vid, v.duration, v.segments) for v in videos}
    items = [Video(v.vid, a, x, multi_hot(v.segments, classes))
             for v, (a, x) in zip(videos, feats, strict=True)]
    splits = split_videos(items, [layout.subsets[v.subset] for v in videos], cfg)
    return Dataset(layout.name, "action", classes, cfg.snippet_seconds, splits, annotations)


# ---- ground truth JSON -------------------------------------------------------------------
def gt_entry(subset: str, duration: float, url: str, segments: list[Segment]) -> dict[str, Any]:
    """One video of the official ground-truth format."""
    return {
        "subset": subset,
        "duration": duration,
        "url": url,
        "annotations": [{"segment": [s.start, s.end], "label": s.label} for s in segments],
    }


def gt_from_dataset(
    ds: Dataset, subset_of: dict[str, str], url: Callable[[str], str] = lambda vid: ""
) -> dict[str, dict[str, Any]]:
    """The database of a loaded Dataset: split -> subset by `subset_of` (val is held out
    of the training subset, so it goes back there)."""
    database = {}
    for split, items in ds.splits.items():
        for v in items:
            ann = ds.annotations.get(v.vid)
            if ann is None:
                raise AvlocError(f"dataset {ds.name}: video {v.vid} has no annotation")
            database[v.vid] = gt_entry(subset_of[split], ann.duration, url(v.vid), ann.segments)
    return database


def write_gt(
    path: str | Path, version: str, classes: list[str], database: dict[str, dict[str, Any]],
    subsets: Sequence[str],
) -> dict[str, int]:
    """Write the ground-truth JSON atomically; return videos and instances per subset."""
    taxonomy = [{"nodeId": i + 1, "nodeName": c, "parentId": 0, "parentName": "Root"}
                for i, c in enumerate(classes)]  # flat: the official code only needs the key
    write_json_atomic(Path(path), {"version": version, "taxonomy": taxonomy,
                                   "database": database}, indent=None)
    counts = {"videos": len(database)}
    for subset in subsets:
        entries = [e for e in database.values() if e["subset"] == subset]
        counts[subset] = len(entries)
        counts[f"{subset}_instances"] = sum(len(e["annotations"]) for e in entries)
    return counts
