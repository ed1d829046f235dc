"""Write any loaded Dataset (AVE, ActivityNet 1.2, LLP, synthetic) in the generic layout.

The result loads back with `data.format=generic` into the same splits, features,
video-level labels and segments: a way to move a dataset to one documented format, to
subset it, or to start a dataset of one's own from a working example.

Splits map to subsets train -> training, val -> validation, test -> testing (so an
ActivityNet 1.2 'validation' video, our test split, is written as 'testing').
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import load_config, preset_names
from avloc.data import load_dataset
from avloc.data.base import Dataset, Video
from avloc.data.checks import check_unique, check_video_name, multi_hot
from avloc.data.generic import ANNOTATION_FILE, FEATURE_DIR
from avloc.util.errors import AvlocError

SUBSET = {"train": "training", "val": "validation", "test": "testing"}


def _entry(ds: Dataset, split: str, v: Video) -> dict[str, Any]:
    """The JSON record of one video; its segments must reproduce its video-level label,
    unless it has video-level labels only (`Annotation.weak`: written as "labels")."""
    ann = ds.annotations.get(v.vid)
    segments = ann.segments if ann is not None else []
    duration = ann.duration if ann is not None else v.length * ds.snippet_seconds
    record: dict[str, Any] = {"subset": SUBSET[split], "duration": float(duration)}
    labels = [c for c, y in zip(ds.classes, v.labels, strict=True) if y > 0.5]
    if ann is not None and ann.weak:
        record["labels"] = labels
        return record
    if ds.task == "parsing":  # labels and events may differ (LLP's files): both are kept
        record["labels"] = labels
        record["annotations"] = [{"segment": [s.start, s.end], "label": s.label,
                                  "modality": s.modality} for s in segments]
        return record
    if not np.array_equal(multi_hot(segments, ds.classes), v.labels > 0.5):
        raise AvlocError(
            f"dataset {ds.name}: video {v.vid}: its video-level label is not the set of its "
            "segments' labels, which is all the generic layout can store"
        )
    record["annotations"] = [{"segment": [s.start, s.end], "label": s.label} for s in segments]
    return record


def _document(ds: Dataset) -> dict[str, Any]:
    """The whole annotation JSON; checks every video before anything is written."""
    if any(ann.timing is not None for ann in ds.annotations.values()):
        raise AvlocError(f"dataset {ds.name}: its videos have snippet grids of their own "
                         "(frame rates differ), which the generic layout cannot store")
    videos = [(split, v) for split in SUBSET for v in ds.splits.get(split, [])]
    check_unique((v.vid for _, v in videos), f"dataset {ds.name}")
    for _, v in videos:
        check_video_name(v.vid, f"dataset {ds.name}")
    return {
        "version": "avloc generic 1",
        "source": ds.name,
        "task": ds.task,
        "snippet_seconds": ds.snippet_seconds,
        "classes": list(ds.classes),
        "database": {v.vid: _entry(ds, split, v) for split, v in videos},
    }


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise AvlocError(f"{out_dir}: already exists and is not an empty folder")


def _write(ds: Dataset, doc: dict[str, Any], tmp: Path) -> None:
    fdir = tmp / FEATURE_DIR
    fdir.mkdir()
    for split in SUBSET:
        for v in ds.splits.get(split, []):
            np.savez(fdir / f"{v.vid}.npz", audio=v.audio, visual=v.visual)  # (T, D_a), (T, D_v)
    with open(tmp / ANNOTATION_FILE, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


def convert_to_generic(ds: Dataset, out_dir: str | Path) -> dict[str, int]:
    """Write `ds` to out_dir (new or empty) atomically; return videos per subset.

    Everything goes to a hidden temp folder beside out_dir, renamed at the end: a failure
    (full disk, a bad video) leaves no partial output behind.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir)
    doc = _document(ds)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        _write(ds, doc, tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it 0700
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.rename(tmp, out_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AvlocError(f"{out_dir}: cannot write ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = {SUBSET[s]: len(ds.splits.get(s, [])) for s in SUBSET}
    counts["videos"] = sum(counts.values())
    return counts


def convert_dataset(fmt: str, root: str | Path | None, out_dir: str | Path,
                    config: str | None = None, overrides: list[str] | None = None
                    ) -> dict[str, int]:
    """`avloc data convert`: read the `fmt` dataset in `root` (settings: the preset or YAML
    `config`, else the format's own preset when there is one, then `overrides`) and write it
    to `out_dir` in the generic layout."""
    preset = config or (fmt if fmt in preset_names() else None)
    cfg = load_config(preset, [f"data.format={fmt}", *(overrides or [])])
    return convert_to_generic(load_dataset(cfg.data, root), out_dir)
