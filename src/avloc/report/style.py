"""What every figure shares: matplotlib's object API on the Agg canvas (no display, no
global pyplot state), the colours, and saving to PNG (or PDF/SVG by the file's extension)."""

from __future__ import annotations

from pathlib import Path

from avloc.util.errors import AvlocError

GT_COLOR = "#2ca02c"  # green, as in the paper's Fig. 4
MODEL_COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]  # blue (proposed), orange, ...
FORMATS = (".png", ".pdf", ".svg")


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise AvlocError(f"--out {out}: a figure file ends in {', '.join(FORMATS)}")
    return out


def save(fig, out: str | Path) -> Path:
    out = check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    return out
