"""Dataset readers behind one interface: `load_dataset(cfg.data, root) -> Dataset`.

Which reader reads which layout, and which files tell the layouts apart, is the table
avloc.config.formats.FORMATS; base.py is the interface every reader returns.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import DataConfig
from avloc.config.formats import FORMATS
from avloc.config.protocols import PROTOCOLS
from avloc.data.base import SPLITS, Annotation, Dataset, Segment, Timing, Video, frame_timing
from avloc.util.errors import AvlocError
from avloc.util.refs import named

log = logging.getLogger(__name__)

__all__ = ["SPLITS", "Annotation", "Dataset", "Segment", "Timing", "Video", "load_dataset"]


def check_layout(cfg: DataConfig, root: Path) -> None:
    """Name the setting to add when the folder is plainly another layout than data.format;
    silent when it is unclear (files may sit elsewhere: data.annotations)."""
    mine = FORMATS[cfg.format].layout_files
    if cfg.annotations or any((root / name).exists() for name in mine):
        return
    for fmt in FORMATS.values():
        found = [name for name in fmt.layout_files if (root / name).exists()]
        if fmt.name != cfg.format and found:
            raise AvlocError(f"{root}: holds the {fmt.name} layout ({found[0]}) but setting "
                             f"data.format is {cfg.format} (no {' or '.join(mine)}); add "
                             f"data.format={fmt.name} to the command")


def load_dataset(cfg: DataConfig, root: str | Path | None) -> Dataset:
    """Read (or, for generated data, make) the dataset of layout `cfg.format` in `root`."""
    fmt = FORMATS[cfg.format]  # a known name: checked when the settings loaded
    if root is None and fmt.needs_root:
        raise AvlocError(f"setting data.format={fmt.name}: needs --data DIR")
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise AvlocError(f"{root}: data directory does not exist")
        if fmt.needs_root:
            check_layout(cfg, root)
    ds = named(fmt.reader)(cfg, root)
    if ds.extractors is None and cfg.feature_protocol and fmt.needs_root:
        ds.extractors = protocol_record(cfg.feature_protocol, ds, cfg)
    return ds


def protocol_record(name: str, ds: Dataset, cfg: DataConfig | None = None
                    ) -> dict[str, Any] | None:
    """What a checkpoint records of features a release protocol made: its name and grid
    (for a per-video frame grid, data.downsample too); None (and a warning) when the
    features are not the protocol's: other sizes, e.g. AVE with ResNet-152 visual features,
    which `--protocol ave` (VGG-19 pool5) does not make, or another time grid."""
    made = PROTOCOLS[name]
    if ds.feature_dims != (made.audio_dim, made.visual_dim):
        log.warning("setting data.feature_protocol=%s: these features are %s-d (audio, visual), "
                    "the protocol makes %s-d; the checkpoint records no protocol, and "
                    "`avloc localize` will not extract videos for it", name, ds.feature_dims,
                    (made.audio_dim, made.visual_dim))
        return None
    record: dict[str, Any] = {"protocol": name, "snippet_seconds": made.snippet_seconds}
    if made.frame_window is None:
        return record
    cfg = cfg or DataConfig()
    per_video = all(a.timing is not None for a in ds.annotations.values()) and ds.annotations
    if not per_video or (cfg.feat_stride, cfg.num_frames) != made.frame_window:
        log.warning("setting data.feature_protocol=%s: these features are not on its grid (a "
                    "feature every %s of %s frames at each video's rate, data.format=thumos14); "
                    "the checkpoint records no protocol", name, *made.frame_window)
        return None
    return record | {"downsample": cfg.downsample}


def protocol_grid(audio: np.ndarray, visual: np.ndarray, meta: dict[str, Any],
                  ext: dict[str, Any], seconds: float) -> tuple[np.ndarray, np.ndarray, Timing]:
    """A video's extracted features and their time grid as a checkpoint trained on them
    (`ext`, its record): a protocol with a per-video frame grid (actionformer) keeps every
    recorded data.downsample-th feature and places them by the video's fps, as the reader
    did (base.frame_timing); any other grid is Timing(seconds)."""
    protocol = PROTOCOLS.get(ext.get("protocol") or "")
    if protocol is None or protocol.frame_window is None:
        return audio, visual, Timing(seconds)
    if not meta.get("fps"):
        raise AvlocError(f"video {meta.get('video')}: its features record no fps, which places "
                         f"protocol {protocol.name}'s features; extract it again")
    step = int(ext.get("downsample", 1))
    timing = frame_timing(float(meta["fps"]), *protocol.frame_window, step)
    return audio[::step], visual[::step], timing  # (T / k, D_a), (T / k, D_v)
