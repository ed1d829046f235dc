"""`avloc data labels`: the generic layout's annotations.json from the labels users have.

Two listings of video-level labels (no times), both for training videos:

- a label table: one video per line, `video,label[,label...]`, or LLP's tab-separated
  `filename<TAB>event_labels` whose labels are comma-separated in one field; an optional
  header line (first field `filename`, `video`, `id`, ...), `#` comment lines and empty
  lines are skipped; a video with no label is background only;
- a folder per class: `DIR/<class>/<video>.<ext>` (video files or extracted .npz); a video
  in two class folders has both labels.

Each video needs a duration: read from its extracted features (`avloc extract` records it
in the .npz meta), else from its video file (PyAV reads the header, no decoding), else
its feature count times the snippet seconds (features made elsewhere, without meta).
LLP names clips `YTID_START_END`; such a name also finds a file named `YTID`, and the
video id becomes the file's name (the features are looked up by it).
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import DataConfig
from avloc.data.checks import check_duration, check_video_name
from avloc.data.generic import ANNOTATION_FILE, FEATURE_DIR, TASKS, parse_generic
from avloc.util.errors import AvlocError, first_line, plural
from avloc.util.io import read_json, write_json_atomic

# first fields of a header line (LLP: filename; AudioSet's comment header: # YTID)
HEADER_NAMES = {"video", "videos", "filename", "file", "name", "id", "video_id", "vid",
                "ytid", "youtube_id"}
LLP_NAME = re.compile(r"(.+)_\d+(?:\.\d+)?_\d+(?:\.\d+)?")  # YTID_START_END


@dataclass
class Tagged:
    """One video of a listing: its video-level labels and where it was listed."""

    vid: str
    labels: list[str]
    where: str  # "tags.csv: line 3" or the class folder's file, for messages
    file: Path | None = None  # its video or .npz file, when the listing is of files


@dataclass
class Timed:
    """A video of the listing, found: its id (a file name), duration and the source."""

    vid: str
    labels: list[str]
    duration: float
    source: str  # "features" | "video" | "feature length"
    where: str  # where it was listed


@dataclass
class LabelsResult:
    doc: dict[str, Any]
    videos: list[Timed]
    snippet_seconds: float
    missing: list[str] = field(default_factory=list)  # left out (--skip-missing)

    def line(self, out: Path) -> str:
        classes = len(self.doc.get("classes") or {x for v in self.videos for x in v.labels})
        sources: dict[str, int] = {}
        for v in self.videos:
            sources[v.source] = sources.get(v.source, 0) + 1
        where = ", ".join(f"{k} {n}" for k, n in sources.items())
        text = (f"wrote {out}: {plural(len(self.videos), 'training video')} with video-level "
                "labels, "
                f"{classes} classes, snippets of {self.snippet_seconds:g} s; durations from "
                f"{where}")
        if self.missing:
            text += (f"; left out {len(self.missing)} listed videos without features or video "
                     f"file (e.g. {', '.join(self.missing[:3])})")
        return text


# ---- the listings -------------------------------------------------------------------------
def _video_suffixes() -> frozenset[str]:
    from avloc.extract.run import VIDEO_SUFFIXES  # imports no network

    return VIDEO_SUFFIXES | {".npz"}


def _stem(name: str) -> str:
    """`clip1.mp4` and `clip1.npz` name the video clip1."""
    path = Path(name)
    return path.stem if path.suffix.lower() in _video_suffixes() else name


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AvlocError(f"{path}: missing file (label table: video,label[,label...])")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise AvlocError(f"{path}: not UTF-8 text ({first_line(e)})") from None
    except OSError as e:
        raise AvlocError(f"{path}: cannot read ({e.strerror})") from None


def read_label_table(path: str | Path) -> list[Tagged]:
    """The videos of a label table, in file order; a video listed twice is an error."""
    path = Path(path)
    lines = _lines(path)
    data = [(n, line) for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]
    tab = bool(data) and "\t" in data[0][1]  # LLP: filename<TAB>event_labels
    rows, first_line_of = [], {}
    for k, (n, line) in enumerate(data):
        fields = [f.strip() for f in next(csv.reader([line], delimiter="\t" if tab else ","))]
        if k == 0 and fields[0].lower() in HEADER_NAMES:
            continue
        where = f"{path}: line {n}"
        vid = _stem(fields[0])
        check_video_name(vid, where)
        if vid in first_line_of:
            raise AvlocError(f"{where}: video {vid} is listed again (first on line "
                             f"{first_line_of[vid]})")
        first_line_of[vid] = n
        labels = [x.strip() for f in fields[1:] for x in f.split(",") if x.strip()]
        rows.append(Tagged(vid, list(dict.fromkeys(labels)), where))
    if not rows:
        raise AvlocError(f"{path}: lists no videos (expected lines video,label[,label...])")
    return rows


def read_class_folders(root: str | Path) -> list[Tagged]:
    """The videos (or .npz) in ROOT/<class>/, labelled with every folder they are in."""
    root = Path(root)
    if not root.is_dir():
        raise AvlocError(f"{root}: no such folder (expected a folder per class)")
    suffixes = _video_suffixes()
    found: dict[str, Tagged] = {}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for item in sorted(root.iterdir()):
        if item.is_file() and item.suffix.lower() in suffixes:
            raise AvlocError(f"{item}: outside the class folders; move it into "
                             f"{root}/<class>/")
    if not folders:
        raise AvlocError(f"{root}: no class folders (expected {root}/<class>/<video>)")
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise AvlocError(f"{folder}: no video or .npz files in this class folder")
        seen: dict[str, Path] = {}
        for path in files:
            check_video_name(path.stem, str(path))
            if path.stem in seen:
                raise AvlocError(f"{path} and {seen[path.stem].name}: two files for video "
                                 f"{path.stem}")
            seen[path.stem] = path
            entry = found.setdefault(path.stem, Tagged(path.stem, [], str(path), path))
            entry.labels.append(folder.name)
    return list(found.values())


# ---- durations ----------------------------------------------------------------------------
def _npz_timing(path: Path) -> tuple[float | None, float | None, int]:
    """(duration, snippet_seconds) from an extracted .npz's meta (None when not recorded)
    and its snippet count."""
    where = f"{path}"
    try:
        with np.load(path, allow_pickle=False) as z:
            length = int(z["visual"].shape[0]) if "visual" in z.files else -1
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise AvlocError(f"{where}: cannot read as .npz ({type(e).__name__}: "
                         f"{first_line(e)})") from None
    if length < 1:
        raise AvlocError(f"{where}: no 'visual' features (need at least one snippet)")
    meta = meta if isinstance(meta, dict) else {}
    duration = meta.get("duration")
    seconds = meta.get("snippet_seconds")
    return (check_duration(duration, where) if duration is not None else None,
            float(seconds) if isinstance(seconds, (int, float)) else None, length)


def _video_duration(path: Path) -> float:
    """Seconds of a video file from its header (PyAV; no decoding)."""
    from avloc.extract.decode import video_seconds
    from avloc.extract.weights import need

    av = need("av")
    try:
        seconds = video_seconds(path)
    except (av.FFmpegError, IndexError) as e:  # IndexError: no video stream
        raise AvlocError(f"{path}: cannot read the video's duration ({first_line(e)})") from None
    return check_duration(seconds, f"{path}: duration from the video header")


def _candidates(vid: str) -> list[str]:
    """The file names a listed video may have: its own, and for LLP's YTID_START_END the
    YouTube id."""
    m = LLP_NAME.fullmatch(vid)
    return [vid, m.group(1)] if m else [vid]


class _Finder:
    """Where each listed video's duration comes from: its .npz in `features`, a video file
    in `videos` (or the listing's own file), found by name."""

    def __init__(self, features: Path | None, videos: Path | None) -> None:
        self.features = features
        self.videos: dict[str, Path] = {}
        if videos is not None:
            from avloc.extract.run import list_videos

            self.videos = {p.stem: p for p in list_videos(videos)}

    def find(self, item: Tagged) -> tuple[str, Path] | None:
        """(video id = file name, file) or None; the .npz first, it records the duration."""
        for name in _candidates(item.vid):
            npz = self.features / f"{name}.npz" if self.features else None
            if npz is not None and npz.is_file():
                return name, npz
            if item.file is not None and name == item.file.stem:
                return name, item.file
            if name in self.videos:
                return name, self.videos[name]
        return None


def _timed(items: list[Tagged], finder: _Finder, seconds_arg: float | None, skip_missing: bool
           ) -> tuple[list[Timed], float, list[str]]:
    """Every listed video with its duration; the snippet seconds (the features' own, else
    `seconds_arg`, else 1.0); the videos left out."""
    found, missing, grids = [], [], {}
    for item in items:
        hit = finder.find(item)
        if hit is None:
            if skip_missing:
                missing.append(item.vid)
                continue
            raise AvlocError(f"{item.where}: video {item.vid}: no features or video file found "
                             f"({_places(finder)}), so no duration; extract it, give --videos, "
                             "or --skip-missing to leave such videos out")
        found.append((item, *hit))
    npz = {path: _npz_timing(path) for _, _, path in found if path.suffix == ".npz"}
    for _, name, path in found:
        seconds = npz[path][1] if path in npz else None
        if seconds is not None:
            grids.setdefault(seconds, name)
    if len(grids) > 1:
        (a, va), (b, vb) = list(grids.items())[:2]
        raise AvlocError(f"features of {va} have {a:g} s snippets but those of {vb} {b:g} s; "
                         "re-extract with one --snippet-seconds")
    recorded = next(iter(grids), None)
    if recorded is not None and seconds_arg is not None and recorded != seconds_arg:
        raise AvlocError(f"--snippet-seconds {seconds_arg:g}: the features were extracted with "
                         f"{recorded:g} s snippets (their .npz meta)")
    seconds = recorded or seconds_arg or 1.0
    timed = [_duration(item, name, path, seconds, npz.get(path)) for item, name, path in found]
    return timed, seconds, missing


def _places(finder: _Finder) -> str:
    places = [f"{finder.features}/<video>.npz"] if finder.features else []
    if finder.videos:
        places.append(f"{len(finder.videos)} video files given")
    return ", ".join(places) or "no --features or --videos"


def _duration(item: Tagged, name: str, path: Path, seconds: float,
              npz: tuple[float | None, float | None, int] | None) -> Timed:
    """From the .npz's meta or length (`npz`: its `_npz_timing`), else the video file."""
    if npz is not None:
        duration, _, length = npz
        if duration is not None:
            return Timed(name, item.labels, duration, "features", item.where)
        return Timed(name, item.labels, length * seconds, "feature length", item.where)
    return Timed(name, item.labels, _video_duration(path), "video", item.where)


# ---- the document -------------------------------------------------------------------------
def _document(videos: list[Timed], seconds: float, task: str | None,
              add_to: dict[str, Any] | None, out: Path) -> dict[str, Any]:
    """The annotation JSON: a new one, or `add_to` with the videos added as training."""
    first: dict[str, str] = {}
    for v in videos:  # LLP names of two clips of one YouTube video find the same file
        if v.vid in first:
            raise AvlocError(f"{v.where}: video {v.vid} is listed again (first at {first[v.vid]})")
        first[v.vid] = v.where
    names = sorted({x for v in videos for x in v.labels})
    entries = {v.vid: {"subset": "training", "duration": round(v.duration, 6),
                       "labels": v.labels} for v in videos}
    if add_to is None:
        return {"version": "avloc labels 1", "task": task or "action",
                "snippet_seconds": seconds, "classes": names, "database": entries}
    doc = dict(add_to)
    if not isinstance(doc.get("database"), dict):
        raise AvlocError(f"{out}: expected a JSON object with a 'database' object")
    twice = [vid for vid in entries if vid in doc["database"]]
    if twice:
        raise AvlocError(f"{out}: already lists video {twice[0]} ({len(twice)} of the new "
                         "videos in all)")
    if task is not None and doc.get("task", "action") != task:
        raise AvlocError(f"--task {task}: {out} has task {doc.get('task', 'action')}")
    if doc.get("snippet_seconds", seconds) != seconds:
        raise AvlocError(f"{out}: snippet_seconds {doc['snippet_seconds']}, but these videos' "
                         f"features have {seconds:g} s snippets")
    doc.setdefault("snippet_seconds", seconds)
    if isinstance(doc.get("classes"), list):
        doc["classes"] = doc["classes"] + [c for c in names if c not in doc["classes"]]
    doc["database"] = {**doc["database"], **entries}
    return doc


def write_labels(
    out: str | Path, table: str | Path | None = None, folders: str | Path | None = None,
    features: str | Path | None = None, videos: str | Path | None = None,
    snippet_seconds: float | None = None, task: str | None = None, add: bool = False,
    skip_missing: bool = False,
) -> LabelsResult:
    """Write `out` (an annotation JSON, e.g. DATA/annotations.json) listing the videos of a
    label table or of class folders as training videos with video-level labels. `features`
    defaults to the features/ folder beside `out`. `add`: add them to the existing `out`.
    The document is checked as `data.format=generic` reads it before it is written."""
    out = Path(out)
    if (table is None) == (folders is None):
        raise AvlocError("data labels: give one of --csv FILE or --folders DIR")
    if task is not None and task not in TASKS:
        raise AvlocError(f"--task {task}: expected one of {', '.join(TASKS)}")
    if snippet_seconds is not None and not snippet_seconds > 0:
        raise AvlocError(f"--snippet-seconds {snippet_seconds}: must be positive")
    if out.exists() and not add:
        raise AvlocError(f"{out}: already exists; --add adds these videos to it")
    add_to = read_json(out) if add else None
    if add and not isinstance(add_to, dict):
        raise AvlocError(f"{out}: expected a JSON object with a 'database' object")
    items = read_label_table(table) if table is not None else read_class_folders(folders)
    fdir = Path(features) if features else out.parent / FEATURE_DIR
    if features and not fdir.is_dir():
        raise AvlocError(f"{fdir}: no such folder (--features: the extracted .npz files)")
    finder = _Finder(fdir if fdir.is_dir() else None, Path(videos) if videos else None)
    timed, seconds, missing = _timed(items, finder, snippet_seconds, skip_missing)
    if not timed:
        raise AvlocError(f"none of the {len(items)} listed videos has features or a video file")
    doc = _document(timed, seconds, task, add_to, out)
    parse_generic(doc, out, DataConfig(format="generic", snippet_seconds=seconds))
    write_json_atomic(out, doc, indent=1)
    return LabelsResult(doc, timed, seconds, missing)


__all__ = ["ANNOTATION_FILE", "read_class_folders", "read_label_table", "write_labels"]
