"""A run's folder: the files in it, how they are read, and how a grid names its runs.

    config.yaml        the settings (read back with safe loading: `read_run_config`)
    data.txt           the dataset folder, so that --resume and avloc eval need no --data
    last.pt            model, optimizer, position and RNG state (resume from here)
    last.pt.prev       the one before (a resume falls back to it when last.pt is broken)
    best.pt            the weights of the best validation epoch (what eval / localize load)
    best.pt.prev       the previous best (restored when a kill came between two writes)
    log.jsonl          one line per epoch: losses, validation metric, seconds
    metrics.json       validation (best epoch) and test (scored once), `read_metrics`
    localize.yaml      post-processing tuned on validation (`avloc tune`, avloc.scoring.tune)
    train.log          what training printed, when `avloc reproduce` or `avloc demo` ran it
    tensorboard/       TensorBoard events (train.tensorboard=true)
    .lock              held while a process trains the run

Training writes them (avloc.runs.state); everything else reads them through this module.
A grid (`avloc reproduce`, `avloc demo`) puts variant V at seed k in OUT/runs/V/seed<k>.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avloc.config import Config, apply_dict, read_yaml, validate
from avloc.util.errors import AvlocError

CONFIG = "config.yaml"
DATA = "data.txt"
LAST = "last.pt"
BEST = "best.pt"
PREVIOUS = ".prev"  # suffix of the checkpoint kept before the newest
LOG = "log.jsonl"
METRICS = "metrics.json"
TUNED = "localize.yaml"
TRAIN_LOG = "train.log"
LOCK = ".lock"
# files that say a run was started here (metrics.json: and finished)
RUN_FILES = (CONFIG, LAST, LAST + PREVIOUS, BEST, BEST + PREVIOUS, METRICS)


def run_state(run_dir: Path) -> str:
    """done (metrics.json) | partial (another run file) | new, read off the folder."""
    if (run_dir / METRICS).is_file():
        return "done"
    if any((run_dir / name).exists() for name in RUN_FILES):
        return "partial"
    return "new"


def grid_run_dir(out: Path, variant: str, seed: int) -> Path:
    """Where a grid keeps variant `variant` at seed `seed`."""
    return Path(out) / "runs" / variant / f"seed{seed}"


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """metrics.json, or None when the run has none (or it does not parse)."""
    try:
        return json.loads((Path(run_dir) / METRICS).read_text())
    except (OSError, ValueError):
        return None


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """log.jsonl, one record per epoch (the last line wins if an epoch was replayed)."""
    path = Path(run_dir) / LOG
    by_epoch: dict[int, dict[str, Any]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise AvlocError(f"{path}: no training log (is {run_dir} a run folder?)") from None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            by_epoch[record["epoch"]] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def read_run_config(run_dir: Path, purpose: str = "") -> Config:
    """The settings a run was started with (its config.yaml, read with safe loading);
    `purpose` ends the message when there is none ("to resume")."""
    saved = Path(run_dir) / CONFIG
    if not saved.is_file():
        end = f" {purpose}" if purpose else ""
        raise AvlocError(f"{run_dir}: not a run folder (no {CONFIG}){end}")
    return validate(apply_dict(Config(), read_yaml(saved) or {}, str(saved)))


def read_saved_settings(run_dir: Path) -> dict[str, Any]:
    """config.yaml as it is on disk, unchecked (a grid compares it with what it would give)."""
    doc = read_yaml(Path(run_dir) / CONFIG)
    return doc if isinstance(doc, dict) else {}


def remembered_data_root(run_dir: Path) -> Path | None:
    """The dataset folder the run was started on; None for generated data."""
    saved = Path(run_dir) / DATA
    if not saved.is_file():
        return None
    root = Path(saved.read_text().strip())
    if not root.exists():
        raise AvlocError(f"{saved}: the run's dataset folder {root} no longer exists; "
                         "give its new place with --data")
    return root
