"""`avloc plot`: one figure from run folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avloc.report.curves import curves_figure, find_runs
from avloc.report.figures import attention_figure, cas_figure, pick_video
from avloc.report.loaded import load_data, load_run
from avloc.report.parsing_figures import parsing_figure, pick_parsing_video
from avloc.report.style import check_output
from avloc.util.errors import AvlocError


def plot(
    figure: str, runs: Sequence[str], out: str | Path | None = None,
    data: str | None = None, video: str | None = None, compare: str | None = None,
) -> Path:
    """`avloc plot cas|attention|curves`: one figure from run folders; returns its path."""
    out = check_output(out or f"{figure}.png")
    if figure == "curves":
        path = curves_figure(find_runs(runs), out)
    else:
        if len(runs) != 1:
            raise AvlocError(f"plot {figure}: give one run folder (and --compare for a second)")
        main = load_run(runs[0])
        others = [load_run(compare)] if compare and figure == "cas" else []
        ds = load_data(main, data, others)
        parsing = ds.task == "parsing"  # LLP: audio and visual event tracks instead of a CAS
        vid = video or (pick_parsing_video if parsing else pick_video)(ds, [main, *others])
        if not video:
            print(f"video: {vid} (the test video where {main.label} localizes best"
                  + (f" relative to {others[0].label})" if others and not parsing else ")"))
        if figure == "cas" and parsing:
            path = parsing_figure(ds, [main, *others], vid, out)
        elif figure == "cas":
            path = cas_figure(ds, [main, *others], vid, out)
        elif figure == "attention":
            path = attention_figure(ds, main, vid, out)
        else:
            raise AvlocError(f"plot {figure!r}: expected cas, curves or attention")
    print(f"wrote {path}")
    return path
