"""Training curves: losses and the validation metric per epoch, one line per variant (mean
over seeds, band from the lowest to the highest seed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc.report.style import new_figure, save
from avloc.runs.layout import LOG, read_log
from avloc.util.errors import AvlocError

LOSS_TITLES = {
    "loss_loss": "total loss L (Eq. 10)",
    "loss_mil": "L_mil (multiple instance)",
    "loss_cas": "L_cas (co-activity similarity)",
    "loss_cont": "L_cont (foreground continuity)",
    "loss_pseu": "L_pseu (pseudo localization)",
}


def find_runs(paths: Sequence[str | Path]) -> dict[str, list[Path]]:
    """Run folders grouped by variant: a run folder, a variant folder (seed*/) or an
    `avloc reproduce` output folder (runs/<variant>/seed*/)."""
    groups: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if (p / LOG).is_file():
            name = p.parent.name if p.name.startswith("seed") else p.name
            groups.setdefault(name, []).append(p)
        elif any(p.glob(f"seed*/{LOG}")):
            groups.setdefault(p.name, []).extend(sorted(p.glob("seed*")))
        elif any(p.glob(f"runs/*/seed*/{LOG}")):
            for run in sorted(p.glob("runs/*/seed*")):
                if (run / LOG).is_file():
                    groups.setdefault(run.parent.name, []).append(run)
        else:
            raise AvlocError(f"{p}: no training log here (expected a run folder with "
                             "log.jsonl, or an `avloc reproduce` output folder)")
    return groups


def _panels(logs: dict[str, list[list[dict[str, Any]]]]) -> list[str]:
    keys: list[str] = []
    for runs in logs.values():
        for records in runs:
            for r in records:
                keys += [k for k in r if k not in keys and (k in LOSS_TITLES
                                                            or k.startswith("val_"))]
    return [k for k in LOSS_TITLES if k in keys] + [k for k in keys if k.startswith("val_")]


def curves_figure(groups: dict[str, list[Path]], out: str | Path, title: str = "") -> Path:
    from matplotlib.ticker import MaxNLocator

    logs = {name: [read_log(d) for d in dirs] for name, dirs in groups.items()}
    panels = _panels(logs)
    if not panels:
        raise AvlocError("no epochs logged yet in the given runs")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = new_figure(4.2 * cols, 3.0 * rows + 0.8)
    lines = {}
    for i, key in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        scale = 100.0 if key.startswith("val_") else 1.0
        for j, (name, runs) in enumerate(logs.items()):
            epochs = sorted({r["epoch"] for rec in runs for r in rec if key in r})
            if not epochs:
                continue
            values = [[r[key] * scale for rec in runs for r in rec
                       if r["epoch"] == e and key in r] for e in epochs]
            mean = [float(np.mean(v)) for v in values]
            color = f"C{j % 10}"
            (line,) = ax.plot(epochs, mean, color=color, lw=1.5, label=name)
            if max(len(v) for v in values) > 1:
                ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values],
                                color=color, alpha=0.15, lw=0)
            lines[name] = line
        metric = key[4:].replace("_", " ")
        ax.set_title(f"validation {metric} (%)" if key.startswith("val_")
                     else LOSS_TITLES[key] + ("" if key == "loss_loss" else ", unweighted"),
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{metric} (%)" if key.startswith("val_") else "loss")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Training curves: mean over seeds, band from lowest to highest seed",
                 fontsize=11)
    fig.legend(list(lines.values()), list(lines), loc="lower center",
               ncol=min(len(lines), 6), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07 if len(lines) <= 6 else 0.12, 1, 1))
    return save(fig, out)
