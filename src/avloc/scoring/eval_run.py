"""`avloc eval`: score a trained run on one split, as its task's protocol scores it.

Event data: AVE snippet accuracy. Action data: ActivityNet mAP at the run's tIoU
thresholds, with the run's tuned post-processing (RUN/localize.yaml) unless `untuned`.
Parsing data: the LLP F-scores at the protocol's thresholds (0.5), and beside them, labelled,
at the run's tuned thresholds unless `untuned`. The dataset is the one the run trained on
(RUN/data.txt) unless `data` names another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from avloc.checkpoint import check_compatible, model_from_checkpoint, read_checkpoint
from avloc.config import Config, validate
from avloc.data import load_dataset
from avloc.data.base import Dataset
from avloc.runs.layout import remembered_data_root
from avloc.scoring.anet_json import results_json
from avloc.scoring.evaluate import (
    action_detections,
    check_scorable,
    evaluate_split,
    split_metrics,
)
from avloc.scoring.predict import predict
from avloc.scoring.reports import (
    format_action_report,
    format_event_table,
    format_parsing_report,
)
from avloc.scoring.results import write_split
from avloc.scoring.thresholds import OFFICIAL
from avloc.scoring.tune import tuned_thresholds
from avloc.scoring.tuned_model import load_tuned_model
from avloc.util.cpus import use_threads
from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # what --json writes
    report: str  # what is printed (with the files written besides --json)


def run_data_root(run: str | Path, data: str | Path | None) -> Path | None:
    """`data`, else the dataset folder the run recorded (RUN/data.txt), else None."""
    if data is not None:
        return Path(data)
    folder = Path(run) if Path(run).is_dir() else Path(run).parent
    return remembered_data_root(folder)


def evaluate_run(
    run: str | Path, data: str | Path | None, split: str = "test", *,
    data_format: str | None = None, tiou: str | None = None, ties: str | None = None,
    out: str | Path | None = None, predictions: str | Path | None = None,
    untuned: bool = False,
) -> EvalResult:
    """Score the run's best checkpoint on `split`; with `out`, also write its results folder
    (results.json, cas/, ground_truth.json), with `predictions` the detections (action)."""
    m = load_tuned_model(run, untuned)
    cfg = m.cfg
    use_threads(cfg.train.threads)
    cfg.data.format = data_format or cfg.data.format
    cfg.eval.tiou = tiou or cfg.eval.tiou
    cfg.eval.ties = ties or cfg.eval.ties
    validate(cfg)
    root = run_data_root(run, data)
    ds = load_dataset(cfg.data, root)
    check_compatible(ds, m.ckpt, str(run))
    if not ds.splits.get(split):
        raise AvlocError(f"{root or 'dataset ' + ds.name}: split {split!r} is empty")
    tuned = None if untuned else (m.tuned or tuned_thresholds(m.model, ds, cfg))
    metrics, preds = evaluate_split(m.model, ds, split, cfg, tuned=tuned)
    lines = [m.note] if m.note and ds.task == "action" else []
    if out is not None:
        # a parsing split's results hold the events the protocol scores (thresholds 0.5)
        shown, made_by = cfg, None
        if ds.task == "parsing":
            shown = replace(cfg, localize=OFFICIAL.apply(cfg.localize))
            made_by = {"thresholds": OFFICIAL.to_dict()}
        lines.append(f"wrote {write_split(Path(out), ds, split, preds, shown, m.id, made_by)}")
    lines.append(_report(ds, metrics, split))
    if predictions is not None and ds.task == "action":
        write_json_atomic(predictions, results_json(action_detections(ds, preds, cfg)))
    return EvalResult(metrics, "\n".join(lines))


def _report(ds: Any, metrics: dict[str, Any], split: str) -> str:
    if ds.task == "event":
        return format_event_table(metrics, split)
    if ds.task == "parsing":
        return format_parsing_report(metrics, split)
    return format_action_report(metrics, split)


def score_with_best(
    path: Path, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """A finished run's numbers: its val and test splits (those the data has) scored with the
    weights of its best validation epoch, the checkpoint at `path` (parsing data: at the LLP
    protocol's thresholds, and beside them at the `tuned_thresholds`, also recorded)."""
    model, _ = model_from_checkpoint(read_checkpoint(path), str(path))
    model.to(device)
    preds = {}
    for split in ("val", "test"):
        if ds.splits.get(split):
            check_scorable(ds, split)
            preds[split] = predict(model, ds.splits[split], device, amp=cfg.train.amp)
    tuned = tuned_thresholds(model, ds, cfg, device, preds.get("val"))  # each split run once
    out: dict[str, Any] = {split: split_metrics(ds, split, p, cfg, tuned)
                           for split, p in preds.items()}
    if tuned is not None:
        out["tuned_thresholds"] = tuned.to_dict()
    return out
