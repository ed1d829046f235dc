"""Dataset readers behind one interface: `load_dataset(cfg.data, root) -> Dataset`."""

from __future__ import annotations

from pathlib import Path

from avloc.config import DataConfig
from avloc.data.base import SPLITS, Annotation, Dataset, Segment, Timing, Video
from avloc.errors import AvlocError

__all__ = ["SPLITS", "Annotation", "Dataset", "Segment", "Timing", "Video", "load_dataset"]


# Files that only one layout has; a folder holding another layout's but none of its own
# was given the wrong data.format (`avloc train` reads AVE unless told: --config ave).
LAYOUT_FILES = {
    "ave": ("Annotations.txt",),
    "generic": ("annotations.json",),
    "anet12": ("ActivityNet1.2-Annotations", "ActivityNet1.2-I3D-JOINTFeatures.npy"),
    "thumos14": ("annotations/thumos14.json", "thumos14.json", "i3d_features"),
    "thumos14_wtalc": ("Thumos14reduced-Annotations", "Thumos14reduced-I3D-JOINTFeatures.npy"),
}


def check_layout(cfg: DataConfig, root: Path) -> None:
    """Name the setting to add when the folder is plainly another layout than data.format;
    silent when it is unclear (files may sit elsewhere: data.annotations)."""
    mine = LAYOUT_FILES.get(cfg.format, ())
    if cfg.annotations or any((root / name).exists() for name in mine):
        return
    for fmt, names in LAYOUT_FILES.items():
        found = [name for name in names if (root / name).exists()]
        if fmt != cfg.format and found:
            raise AvlocError(f"{root}: holds the {fmt} layout ({found[0]}) but setting "
                             f"data.format is {cfg.format} (no {' or '.join(mine)}); add "
                             f"data.format={fmt} to the command")


def load_dataset(cfg: DataConfig, root: str | Path | None) -> Dataset:
    """Read (or, for `synthetic` and `llp_synthetic`, generate) the dataset named by
    `cfg.format`."""
    fmt = cfg.format
    if fmt == "synthetic":
        from avloc.data.synthetic import make_synthetic

        return make_synthetic(cfg)
    if fmt == "llp_synthetic":  # the real LLP annotation files are optional here
        from avloc.data.synthetic_llp import make_llp_synthetic

        if root is not None and not Path(root).is_dir():
            raise AvlocError(f"{root}: data directory does not exist")
        return make_llp_synthetic(cfg, root)
    if root is None:
        raise AvlocError(f"setting data.format={fmt}: needs --data DIR")
    root = Path(root)
    if not root.is_dir():
        raise AvlocError(f"{root}: data directory does not exist")
    check_layout(cfg, root)
    if fmt == "ave":
        from avloc.data.ave import load_ave

        return load_ave(cfg, root)
    if fmt == "anet12":
        from avloc.data.anet import load_anet12

        return load_anet12(cfg, root)
    if fmt == "generic":
        from avloc.data.generic import load_generic

        return load_generic(cfg, root)
    if fmt == "thumos14":
        from avloc.data.thumos import load_thumos14

        return load_thumos14(cfg, root)
    if fmt == "llp":
        from avloc.data.llp import load_llp

        return load_llp(cfg, root)
    if fmt == "thumos14_wtalc":
        from avloc.data.thumos import load_thumos14_wtalc

        return load_thumos14_wtalc(cfg, root)
    raise AvlocError(f"setting data.format={fmt!r}: unknown format")
