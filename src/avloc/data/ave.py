"""The AVE dataset as released (YapengTian/AVE-ECCV18, `data/`).

Files in the directory the user names:
- `Annotations.txt`: one event per line, `Category&VideoID&Quality&StartTime&EndTime`
  (a header line is accepted when present); row r (0-based, header excluded) is sample r
  of every feature and label file;
- `{train,val,test}_order.h5`: dataset `order`, row indices of each split;
- `audio_feature.h5`: dataset `avadataset`, (N, 10, 128) VGGish;
- `visual_feature.h5`: dataset `avadataset`, (N, 10, 7, 7, 512) VGG-19 pool5 maps
  (averaged over space here) or (N, 10, D) pooled features (e.g. ResNet-152, 2048-d);
- optional `labels.h5`: (N, 10, 29) one-hot snippet labels, background column LAST;
  only checked against the event times, which are the source of truth;
- optional background-only videos: `audio_feature_noisy.h5`, `visual_feature_noisy.h5`
  (both needed), `labels_noisy.h5`.

Some videos appear in two rows (two events, e.g. male and female speech). As in the
original code each row is its own sample; such rows get the id `VideoID#row` so that ids
stay unique.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from avloc.config import DataConfig
from avloc.data.base import SPLITS, Annotation, Dataset, Segment, Video
from avloc.data.checks import (
    check_features_finite,
    check_numeric_dtype,
    make_segment,
    require_file,
    snippet_labels_from_segments,
)
from avloc.util.errors import AvlocError

log = logging.getLogger(__name__)

FEATURE_KEY = "avadataset"
ORDER_KEY = "order"
CHUNK_BYTES = 256 * 2**20  # visual_feature.h5 is ~4 GB: pool it this many bytes at a time


@dataclass(frozen=True)
class AveRow:
    """One line of Annotations.txt: one event of one video."""

    line: int  # 1-based line number in the file (for error messages)
    category: str
    video_id: str
    start: float  # seconds
    end: float  # seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_annotations(path: Path) -> list[AveRow]:
    """Rows of Annotations.txt; a first line whose times are not numbers is a header."""
    require_file(path, "AVE event annotations")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AvlocError(f"{path}: cannot read ({e})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[AveRow] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("&")
        if number == 1 and len(fields) == 5 and not _is_number(fields[3]):
            continue  # header: Category&VideoID&Quality&StartTime&EndTime
        rows.append(_parse_row(path, number, fields))
    if not rows:
        raise AvlocError(f"{path}: no annotation lines")
    return rows


def _parse_row(path: Path, number: int, fields: list[str]) -> AveRow:
    where = f"{path}: line {number}"
    if len(fields) != 5:
        raise AvlocError(
            f"{where}: expected 5 fields Category&VideoID&Quality&StartTime&EndTime, "
            f"got {len(fields)}"
        )
    category, video_id = fields[0].strip(), fields[1].strip()
    if not category or not video_id:
        raise AvlocError(f"{where}: empty category or video id")
    if not (_is_number(fields[3]) and _is_number(fields[4])):
        raise AvlocError(f"{where}: start/end times {fields[3]!r}, {fields[4]!r} are not numbers")
    return AveRow(number, category, video_id, float(fields[3]), float(fields[4]))


def row_ids(rows: list[AveRow]) -> list[str]:
    """Unique sample ids: the YouTube id, or `id#row` for videos with several rows."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.video_id] = counts.get(r.video_id, 0) + 1
    return [r.video_id if counts[r.video_id] == 1 else f"{r.video_id}#{i}"
            for i, r in enumerate(rows)]


def read_order(path: Path, n_rows: int) -> np.ndarray:
    """(n,) int64 row indices of one split, each checked to be a row of Annotations.txt."""
    require_file(path, "AVE split order")
    with _open_h5(path) as f:
        order = _dataset(f, path, ORDER_KEY)[()]
    order = np.asarray(order)
    if order.ndim == 2 and 1 in order.shape:
        order = order.reshape(-1)
    if order.ndim != 1 or not np.issubdtype(order.dtype, np.number):
        raise AvlocError(f"{path}: dataset '{ORDER_KEY}' has shape {order.shape}, expected (n,)")
    if not np.all(order == np.round(order)):
        raise AvlocError(f"{path}: dataset '{ORDER_KEY}' holds non-integer row indices")
    order = order.astype(np.int64)
    bad = np.flatnonzero((order < 0) | (order >= n_rows))
    if bad.size:
        raise AvlocError(
            f"{path}: index {int(order[bad[0]])} (entry {int(bad[0])}) is out of range for "
            f"{n_rows} annotation rows"
        )
    return order


def _check_disjoint(orders: dict[str, np.ndarray], root: Path, ids: list[str]) -> None:
    """A row in two splits (or twice in one) would leak test videos into training."""
    owner: dict[int, str] = {}
    for split, order in orders.items():
        for r in order.tolist():
            if r in owner:
                raise AvlocError(
                    f"{root / f'{split}_order.h5'}: row {r} (video {ids[r]}) is already in "
                    f"the {owner[r]} split"
                )
            owner[r] = split


@contextmanager
def _open_h5(path: Path) -> Iterator[h5py.File]:
    """An HDF5 file for reading; whatever h5py raises on a corrupted file, at open or while
    reading inside the block, becomes a one-line AvlocError naming the file."""
    try:
        with h5py.File(path, "r") as f:
            yield f
    except AvlocError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as e:
        raise AvlocError(f"{path}: not a readable HDF5 file ({type(e).__name__}: {e})") from None


def _dataset(f: h5py.File, path: Path, key: str) -> h5py.Dataset:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise AvlocError(f"{path}: no dataset '{key}' (has: {', '.join(f.keys()) or 'nothing'})")
    return f[key]


def read_h5_features(path: Path, n_rows: int, ids: list[str], modality: str) -> np.ndarray:
    """(N, T, D) float32 features; (N, T, H, W, D) maps are averaged over space.

    Read chunk by chunk: the released VGG-19 maps are ~4 GB as float32, so only the
    pooled (N, T, D) result is ever held in memory.
    """
    with _open_h5(path) as f:
        ds = _dataset(f, path, FEATURE_KEY)
        if ds.ndim not in (3, 5):
            raise AvlocError(
                f"{path}: dataset '{FEATURE_KEY}' has shape {ds.shape}, expected (N, T, D) "
                "or (N, T, H, W, D)"
            )
        if ds.shape[0] != n_rows:
            raise AvlocError(
                f"{path}: {ds.shape[0]} videos but the annotations/labels have {n_rows} rows"
            )
        if ds.shape[1] == 0:
            raise AvlocError(f"{path}: videos have zero snippets (shape {ds.shape})")
        if ds.shape[-1] == 0:
            raise AvlocError(f"{path}: {modality} features have zero dimensions ({ds.shape})")
        check_numeric_dtype(ds.dtype, str(path), modality)
        out = np.empty((ds.shape[0], ds.shape[1], ds.shape[-1]), dtype=np.float32)  # (N, T, D)
        row_bytes = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
        step = max(1, CHUNK_BYTES // row_bytes)
        for lo in range(0, n_rows, step):
            block = ds[lo:lo + step]  # (n, T, D) or (n, T, H, W, D)
            if block.ndim == 5:
                block = block.mean(axis=(2, 3), dtype=np.float64)  # (n, T, D)
            out[lo:lo + step] = block
    _check_rows_finite(out, path, ids, modality)
    return out


def _check_rows_finite(arr: np.ndarray, path: Path, ids: list[str], modality: str) -> None:
    finite = np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)  # (N,)
    if not finite.all():
        r = int(np.flatnonzero(~finite)[0])
        check_features_finite(arr[r], f"{path}: row {r} (video {ids[r]})", modality)


def _events(
    rows: list[AveRow], classes: list[str], length: int, seconds: float, ann_path: Path
) -> list[Segment]:
    """One validated segment per row: inside the T * L seconds of the clip."""
    duration = length * seconds
    return [make_segment(r.start, r.end, r.category, duration, classes, 0.0,
                         f"{ann_path}: line {r.line} (video {r.video_id})")
            for r in rows]


def _check_labels_h5(
    path: Path, expected: np.ndarray, rows: list[AveRow], ids: list[str], n_classes: int
) -> None:
    """labels.h5 (background LAST) must agree with the event times, row by row."""
    with _open_h5(path) as f:
        lab = np.asarray(_dataset(f, path, FEATURE_KEY)[()])
    n, t = expected.shape
    if lab.shape != (n, t, n_classes + 1):
        raise AvlocError(
            f"{path}: shape {lab.shape}, expected {(n, t, n_classes + 1)} "
            "(rows, snippets, classes + background)"
        )
    ours = np.where(expected == 0, n_classes, expected - 1)  # (N, T) background last
    one_hot = np.eye(n_classes + 1, dtype=bool)[ours]  # (N, T, C + 1)
    bad = np.flatnonzero(((lab > 0.5) != one_hot).reshape(n, -1).any(axis=1))
    if bad.size:
        r = int(bad[0])
        raise AvlocError(
            f"{path}: row {r} (video {ids[r]}) disagrees with Annotations.txt line "
            f"{rows[r].line} ({rows[r].category}, {rows[r].start:g}-{rows[r].end:g} s)"
        )


def _background_videos(
    cfg: DataConfig, root: Path, n_classes: int, dims: tuple[int, int]
) -> list[Video]:
    """AVE's background-only ("noisy") videos, when asked for and both streams exist."""
    apath, vpath = root / "audio_feature_noisy.h5", root / "visual_feature_noisy.h5"
    if not cfg.use_background_videos:
        return []
    if not (apath.is_file() and vpath.is_file()):
        if apath.is_file() or vpath.is_file():
            log.info("AVE background videos skipped: need both %s and %s", apath.name, vpath.name)
        return []
    with _open_h5(apath) as f:
        n = int(_dataset(f, apath, FEATURE_KEY).shape[0])
    ids = [f"background_{i:03d}" for i in range(n)]
    audio = read_h5_features(apath, n, ids, "audio")  # (M, T, D_a)
    visual = read_h5_features(vpath, n, ids, "visual")  # (M, T, D_v)
    _check_same_length(audio, visual, apath, vpath)
    if (audio.shape[2], visual.shape[2]) != dims:
        raise AvlocError(
            f"{vpath}: feature dimensions (audio, visual) = {(audio.shape[2], visual.shape[2])} "
            f"differ from {dims} of audio_feature.h5 / visual_feature.h5"
        )
    lpath = root / "labels_noisy.h5"
    if lpath.is_file():
        _check_noisy_labels(lpath, n, n_classes)
    zeros = np.zeros(n_classes, dtype=np.float32)
    return [Video(vid, audio[i], visual[i], zeros.copy()) for i, vid in enumerate(ids)]


def _check_noisy_labels(path: Path, n: int, n_classes: int) -> None:
    with _open_h5(path) as f:
        lab = np.asarray(_dataset(f, path, FEATURE_KEY)[()])
    if lab.shape != (n, n_classes + 1):
        raise AvlocError(f"{path}: shape {lab.shape}, expected {(n, n_classes + 1)}")
    bad = np.flatnonzero((lab[:, :n_classes] > 0.5).any(axis=1))
    if bad.size:
        raise AvlocError(f"{path}: row {int(bad[0])} has an event class; expected background only")


def _check_same_length(audio: np.ndarray, visual: np.ndarray, apath: Path, vpath: Path) -> None:
    """AVE clips have a fixed T in both files; any difference means mismatched files."""
    if audio.shape[1] != visual.shape[1]:
        raise AvlocError(
            f"{vpath}: {visual.shape[1]} snippets per video but {apath.name} has "
            f"{audio.shape[1]}"
        )


def load_ave(cfg: DataConfig, root: Path) -> Dataset:
    """Read and check the whole AVE directory; features become float32 (N, T, D) arrays."""
    ann_path = root / "Annotations.txt"
    rows = read_annotations(ann_path)
    ids = row_ids(rows)
    classes = list(dict.fromkeys(r.category for r in rows))  # first appearance, as released
    orders = {s: read_order(root / f"{s}_order.h5", len(rows)) for s in SPLITS}
    _check_disjoint(orders, root, ids)
    apath = require_file(root / "audio_feature.h5", "AVE audio features (N, 10, 128)")
    vpath = require_file(root / "visual_feature.h5", "AVE visual features")
    audio = read_h5_features(apath, len(rows), ids, "audio")  # (N, T, D_a)
    visual = read_h5_features(vpath, len(rows), ids, "visual")  # (N, T, D_v)
    _check_same_length(audio, visual, apath, vpath)
    length, seconds = audio.shape[1], cfg.snippet_seconds
    segments = _events(rows, classes, length, seconds, ann_path)
    snip = np.stack([snippet_labels_from_segments([seg], length, seconds, classes,
                                                  f"{ann_path}: line {r.line}")
                     for seg, r in zip(segments, rows, strict=True)])  # (N, T)
    if (root / "labels.h5").is_file():
        _check_labels_h5(root / "labels.h5", snip, rows, ids, len(classes))
    annotations = {vid: Annotation(vid, length * seconds, [segments[r]], snip[r])
                   for r, vid in enumerate(ids)}
    eye = np.eye(len(classes), dtype=np.float32)
    index = {c: i for i, c in enumerate(classes)}
    splits = {s: [Video(ids[r], audio[r], visual[r], eye[index[rows[r].category]].copy())
                  for r in orders[s].tolist()] for s in SPLITS}
    background = _background_videos(cfg, root, len(classes), (audio.shape[2], visual.shape[2]))
    for v in background:
        annotations[v.vid] = Annotation(v.vid, v.length * seconds, [],
                                        np.zeros(v.length, dtype=np.int64))
    splits["train"] = splits["train"] + background
    return Dataset("ave", "event", classes, seconds, splits, annotations)
