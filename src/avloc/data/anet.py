"""ActivityNet 1.2 in the W-TALC layout, plus an aligned audio feature file.

Annotations: `classlist`, `subset`, `videoname`, `duration`, `segments`, `labels` and
(optional) `url` as `.npy` object arrays of bytes strings, in DIR/ActivityNet1.2-
Annotations/ or directly in DIR. `labels` (one per segment) is used; `labels_all` is
ignored: it does not line up with `segments` in 1753 videos.

Features, in DIR (per-video arrays in `videoname` order):
- `ActivityNet1.2-I3D-JOINTFeatures.npy`: object array of (T, 2048) I3D RGB+flow, as
  shipped by W-TALC;
- `ActivityNet1.2-VGGish-Features.npy`: object array of (T, 128) VGGish, on the same
  0.64 s snippet grid (no public release exists; docs/datasets.md says how to make it).

These object arrays are pickles: `avloc.io.load_npy` reads them with an unpickler that
builds only NumPy arrays, numbers and strings, so a crafted file cannot run code.

Video ids are the YouTube ids of `url` (the keys of the official ground truth JSON and
of result files); `videoname` (W-TALC's `video_N`) when `url.npy` is absent.
Subsets: 'training' -> train minus a seeded, stratified `val_fraction` held out for model
selection -> val; 'validation' -> test (as in the literature).
"""

from __future__ import annotations

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
from avloc.errors import AvlocError
from avloc.io import atomic_open, load_npy, write_json_atomic

ANNOTATION_DIR = "ActivityNet1.2-Annotations"
REQUIRED = ("classlist", "subset", "videoname", "duration", "segments", "labels")
VISUAL_FILE = "ActivityNet1.2-I3D-JOINTFeatures.npy"
AUDIO_FILE = "ActivityNet1.2-VGGish-Features.npy"
SUBSETS = {"training": "train", "validation": "test"}
DEFAULT_SNIPPET_SECONDS = 0.64  # 16 frames at 25 fps


@dataclass
class AnetVideo:
    """One video's annotation as read from the W-TALC files."""

    index: int  # position in the .npy arrays (and in the feature files)
    vid: str  # YouTube id (or videoname)
    name: str  # W-TALC videoname, e.g. video_4
    subset: str  # training | validation
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


def annotation_dir(root: Path) -> Path:
    """DIR/ActivityNet1.2-Annotations/ when it exists, else DIR itself."""
    sub = root / ANNOTATION_DIR
    return sub if sub.is_dir() else root


def _annotation_arrays(adir: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for name in REQUIRED:
        path = require_file(adir / f"{name}.npy", f"ActivityNet 1.2 annotation '{name}'")
        arrays[name] = load_npy(path)
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


def read_anet12_annotations(
    root: Path, snippet_seconds: float = DEFAULT_SNIPPET_SECONDS
) -> tuple[list[str], list[AnetVideo]]:
    """Classes and checked per-video annotations (no features needed, e.g. for GT export)."""
    adir = annotation_dir(root)
    a = _annotation_arrays(adir)
    return _parse_annotations(adir, a, snippet_seconds)


def _parse_annotations(
    adir: Path, a: dict[str, np.ndarray], snippet_seconds: float
) -> tuple[list[str], list[AnetVideo]]:
    classes = [_text(c, str(adir / "classlist.npy")) for c in a["classlist"].reshape(-1)]
    check_unique(classes, str(adir / "classlist.npy"), what="class")
    class_set = set(classes)
    files = {name: str(adir / f"{name}.npy") for name in ("segments", "subset", "duration")}
    videos = []
    for i in range(len(a["videoname"])):
        name = _text(a["videoname"][i], str(adir / "videoname.npy"))
        where = f"{files['segments']}: video {name}"
        subset = _text(a["subset"][i], files["subset"])
        if subset not in SUBSETS:
            raise AvlocError(
                f"{files['subset']}: video {name}: subset {subset!r} "
                "(expected training or validation)"
            )
        duration = check_duration(a["duration"][i], f"{files['duration']}: video {name}")
        segs, labs = list(a["segments"][i]), [_text(x, where) for x in a["labels"][i]]
        if len(segs) != len(labs):
            raise AvlocError(f"{where}: {len(segs)} segments but {len(labs)} labels in labels.npy")
        segments = [_segment(seg, lab, duration, class_set, snippet_seconds, where)
                    for seg, lab in zip(segs, labs, strict=True)]
        url = _text(a["url"][i], str(adir / "url.npy"))
        videos.append(AnetVideo(i, _video_id(name, url), name, subset, duration, url, segments))
    check_unique([v.name for v in videos], str(adir / "videoname.npy"))
    check_unique([v.vid for v in videos], str(adir / "url.npy"))
    return classes, videos


def _segment(
    seg: Any, label: str, duration: float, classes: set[str], seconds: float, where: str
) -> Segment:
    pair = np.asarray(seg).reshape(-1)
    if pair.size != 2:
        raise AvlocError(f"{where}: segment {seg!r} is not a [start, end] pair")
    return make_segment(pair[0], pair[1], label, duration, classes, seconds, where)


def _feature_list(root: Path, filename: str, n: int, what: str) -> np.ndarray:
    path = require_file(root / filename, what)
    arr = load_npy(path)
    if arr.ndim < 1 or len(arr) != n:
        raise AvlocError(
            f"{path}: {len(arr) if arr.ndim else 0} entries but videoname.npy lists {n} videos"
        )
    return arr


def _features(
    root: Path, videos: list[AnetVideo], cfg: DataConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Checked (audio, visual) per video: 2-D, finite, aligned, length matching duration."""
    visual = _feature_list(root, VISUAL_FILE, len(videos), "W-TALC I3D features")
    audio = _feature_list(root, AUDIO_FILE, len(videos), "VGGish audio features")
    apath, vpath = str(root / AUDIO_FILE), str(root / VISUAL_FILE)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for v in videos:
        a = features_2d(audio[v.index], f"{apath}: video {v.name}", "audio")
        x = features_2d(visual[v.index], f"{vpath}: video {v.name}", "visual")
        a, x = align_av(a, x, f"{apath}: video {v.name}")
        check_length(len(a), v.duration, cfg.snippet_seconds, cfg.length_tolerance,
                     f"{vpath}: video {v.name}")
        dims = (a.shape[1], x.shape[1])
        check_feature_dims(dims, (out[0][0].shape[1], out[0][1].shape[1]) if out else dims,
                           f"{root}: video {v.name}")
        out.append((a, x))
    return out


def load_anet12(cfg: DataConfig, root: Path) -> Dataset:
    """Read and check the whole W-TALC directory; full-length videos (cropping is batching's)."""
    classes, videos = read_anet12_annotations(root, cfg.snippet_seconds)
    feats = _features(root, videos, cfg)
    annotations = {v.vid: Annotation(v.vid, v.duration, v.segments) for v in videos}
    items = [Video(v.vid, a, x, multi_hot(v.segments, classes))
             for v, (a, x) in zip(videos, feats, strict=True)]
    train = [item for item, v in zip(items, videos, strict=True) if v.subset == "training"]
    test = [item for item, v in zip(items, videos, strict=True) if v.subset == "validation"]
    kept, held = holdout([t.labels for t in train], cfg.val_fraction, cfg.split_seed)
    splits = {"train": [train[i] for i in kept], "val": [train[i] for i in held], "test": test}
    return Dataset("anet12", "action", classes, cfg.snippet_seconds, splits, annotations)


def _taxonomy(classes: list[str]) -> list[dict[str, Any]]:
    """Flat taxonomy (the official evaluation only checks the key exists)."""
    return [{"nodeId": i + 1, "nodeName": c, "parentId": 0, "parentName": "Root"}
            for i, c in enumerate(classes)]


def _entry(subset: str, duration: float, url: str, segments: list[Segment]) -> dict[str, Any]:
    return {
        "subset": subset,
        "duration": duration,
        "url": url,
        "annotations": [{"segment": [s.start, s.end], "label": s.label} for s in segments],
    }


def _gt_from_dataset(ds: Dataset) -> dict[str, dict[str, Any]]:
    """train and val -> 'training' (val is held out of it), test -> 'validation'.

    ActivityNet ids are YouTube ids, so their url is rebuilt; other datasets get "".
    """
    subset = {"train": "training", "val": "training", "test": "validation"}
    database = {}
    for split, items in ds.splits.items():
        for v in items:
            ann = ds.annotations.get(v.vid)
            if ann is None:
                raise AvlocError(f"dataset {ds.name}: video {v.vid} has no annotation")
            url = f"https://www.youtube.com/watch?v={v.vid}" if ds.name == "anet12" else ""
            database[v.vid] = _entry(subset[split], ann.duration, url, ann.segments)
    return database


def export_anet_gt(source: Dataset | str | Path, path: str | Path) -> dict[str, int]:
    """Write the official ActivityNet ground-truth JSON; return counts for a summary line.

    `source` is a loaded Dataset or an ActivityNet 1.2 directory (only the annotation
    .npy files are read then: no features needed). The file is written atomically.
    """
    if isinstance(source, Dataset):
        classes, database = source.classes, _gt_from_dataset(source)
    else:
        classes, videos = read_anet12_annotations(Path(source))
        database = {v.vid: _entry(v.subset, v.duration, v.url, v.segments) for v in videos}
    doc = {"version": "ActivityNet 1.2 (avloc export)", "taxonomy": _taxonomy(classes),
           "database": database}
    write_json_atomic(Path(path), doc, indent=None)
    return _gt_counts(database)


def _gt_counts(database: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts = {"videos": len(database)}
    for subset in ("training", "validation"):
        entries = [e for e in database.values() if e["subset"] == subset]
        counts[subset] = len(entries)
        counts[f"{subset}_instances"] = sum(len(e["annotations"]) for e in entries)
    return counts


def _find_npz(npz_dir: Path, video: AnetVideo) -> Path:
    """Extracted files are named after the video file: <id>.npz, v_<id>.npz or video_N.npz."""
    for stem in (video.vid, f"v_{video.vid}", video.name):
        path = npz_dir / f"{stem}.npz"
        if path.is_file():
            return path
    raise AvlocError(
        f"{npz_dir}: no features for video {video.name} "
        f"(looked for {video.vid}.npz, v_{video.vid}.npz, {video.name}.npz)"
    )


def pack_anet_audio(root: str | Path, npz_dir: str | Path) -> Path:
    """Gather per-video audio (.npz from `avloc extract`, 0.64 s snippets) into the aligned
    DIR/ActivityNet1.2-VGGish-Features.npy, in videoname order; returns its path.

    The per-video files are read without pickle; only the packed result is a pickled
    object array, the format W-TALC uses for its visual features.
    """
    root, npz_dir = Path(root), Path(npz_dir)
    _, videos = read_anet12_annotations(root)
    packed = np.empty(len(videos), dtype=object)
    for v in videos:
        path = _find_npz(npz_dir, v)
        try:
            with np.load(path, allow_pickle=False) as z:
                packed[v.index] = features_2d(z["audio"], f"{path}: video {v.name}", "audio")
        except (OSError, ValueError, KeyError) as e:
            raise AvlocError(f"{path}: cannot read audio features ({e})") from None
    out = root / AUDIO_FILE
    with atomic_open(out, "wb") as f:
        np.save(f, packed, allow_pickle=True)
    return out
