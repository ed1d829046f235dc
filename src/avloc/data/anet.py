"""ActivityNet 1.2 in the W-TALC layout (data/wtalc.py), plus an aligned audio feature file.

Files: annotation `.npy` arrays in DIR/ActivityNet1.2-Annotations/ or DIR;
`ActivityNet1.2-I3D-JOINTFeatures.npy` (T, 2048) I3D RGB+flow as shipped by W-TALC, and
`ActivityNet1.2-VGGish-Features.npy` (T, 128) VGGish on the same 0.64 s snippet grid (no
public release exists; docs/datasets.md says how to make it, `pack_anet_audio` packs it).

Video ids are the YouTube ids of `url.npy`. Subsets: 'training' -> train minus a
held-out val; 'validation' -> test (as in the literature).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Dataset
from avloc.data.checks import features_2d
from avloc.data.wtalc import (
    WtalcLayout,
    WtalcVideo,
    gt_entry,
    gt_from_dataset,
    load_wtalc,
    read_annotations,
    write_gt,
)
from avloc.util.errors import AvlocError
from avloc.util.io import atomic_open

ANET12 = WtalcLayout("anet12", "ActivityNet1.2", {"training": "train", "validation": "test"},
                     audio_required=True)
ANNOTATION_DIR = ANET12.annotation_dir
VISUAL_FILE = ANET12.visual_file
AUDIO_FILE = ANET12.audio_file
DEFAULT_SNIPPET_SECONDS = 0.64  # 16 frames at 25 fps
GT_SUBSETS = ("training", "validation")


def read_anet12_annotations(
    root: Path, snippet_seconds: float = DEFAULT_SNIPPET_SECONDS
) -> tuple[list[str], list[WtalcVideo]]:
    """Classes and checked per-video annotations (no features needed, e.g. for GT export)."""
    return read_annotations(root, ANET12, snippet_seconds)


def load_anet12(cfg: DataConfig, root: Path) -> Dataset:
    """Read and check the whole W-TALC directory; full-length videos (cropping is batching's)."""
    return load_wtalc(cfg, root, ANET12)


def _youtube_url(vid: str) -> str:
    return f"https://www.youtube.com/watch?v={vid}"


def export_anet_gt(source: Dataset | str | Path, path: str | Path,
                   cfg: DataConfig | None = None) -> dict[str, int]:
    """Write the official ActivityNet ground-truth JSON; return counts for a summary line.

    `source` is a loaded Dataset or an ActivityNet 1.2 directory (only the annotation
    .npy files are read then: no features needed). The file is written atomically. From
    a Dataset, train and val are written as 'training' (val is held out of it), test as
    'validation'; ActivityNet ids are YouTube ids, so their url is rebuilt. `cfg`: unused
    (the layout has one annotation format), as every exporter of the formats table takes it.
    """
    if isinstance(source, Dataset):
        url = _youtube_url if source.name == ANET12.name else (lambda vid: "")
        classes = source.classes
        database = gt_from_dataset(
            source, {"train": "training", "val": "training", "test": "validation"}, url)
    else:
        classes, videos = read_anet12_annotations(Path(source))
        database = {v.vid: gt_entry(v.subset, v.duration, v.url, v.segments) for v in videos}
    return write_gt(path, "ActivityNet 1.2 (avloc export)", classes, database, GT_SUBSETS)


def _find_npz(npz_dir: Path, video: WtalcVideo) -> Path:
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
