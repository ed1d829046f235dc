"""`avloc data export-gt`: a dataset's annotations as the official ActivityNet ground-truth
JSON, by the exporter its entry of the formats table names (config.formats)."""

from __future__ import annotations

from pathlib import Path

from avloc.config import load_config
from avloc.config.formats import FORMATS
from avloc.util.errors import AvlocError
from avloc.util.refs import named


def export_ground_truth(fmt: str, root: str | Path, out: str | Path,
                        overrides: list[str] | None = None) -> dict[str, int]:
    """Write the ground truth of the `fmt` folder `root` to `out`; counts per subset."""
    entry = FORMATS.get(fmt)
    if entry is None or entry.export_gt is None:
        can = ", ".join(name for name, f in FORMATS.items() if f.export_gt)
        raise AvlocError(f"--format {fmt}: no ground truth to export (formats that have: {can})")
    cfg = load_config(None, [f"data.format={fmt}", *(overrides or [])])
    return named(entry.export_gt)(Path(root), out, cfg.data)
