"""`avloc eval`: score a trained run on one split, as its task's protocol scores it.

Event data: AVE snippet accuracy. Action data: ActivityNet mAP at the run's tIoU
thresholds, with the run's tuned post-processing (RUN/localize.yaml) unless `untuned`.
Parsing data: the LLP F-scores at the protocol's thresholds (0.5), and beside them, labelled,
at the run's tuned thresholds unless `untuned`. The dataset is the one the run trained on
(RUN/data.txt) unless `data` names another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avloc.errors import AvlocError


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # what --json writes
    report: str  # what is printed
    wrote: list[str] = field(default_factory=list)  # files written besides --json


def run_data_root(run: str | Path, data: str | Path | None) -> Path | None:
    """`data`, else the dataset folder the run recorded (RUN/data.txt), else None."""
    if data is not None:
        return Path(data)
    from avloc.train.run_folder import remembered_data_root

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
    from avloc.checkpoint import check_compatible
    from avloc.config import validate
    from avloc.cpus import use_threads
    from avloc.data import load_dataset
    from avloc.evaluate import OFFICIAL, evaluate_split, tuned_thresholds
    from avloc.tune import load_tuned_model

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
    wrote = []
    if out is not None:
        from dataclasses import replace

        from avloc.results import write_split

        # a parsing split's results hold the events the protocol scores (thresholds 0.5)
        shown, made_by = cfg, None
        if ds.task == "parsing":
            shown = replace(cfg, localize=OFFICIAL.apply(cfg.localize))
            made_by = {"thresholds": OFFICIAL.to_dict()}
        wrote.append(str(write_split(Path(out), ds, split, preds, shown, m.id, made_by)))
        lines.append(f"wrote {wrote[-1]}")
    lines.append(_report(ds, metrics, split))
    if predictions is not None and ds.task == "action":
        from avloc.anet_json import results_json
        from avloc.evaluate import action_detections
        from avloc.io import write_json_atomic

        write_json_atomic(predictions, results_json(action_detections(ds, preds, cfg)))
        wrote.append(str(predictions))
    return EvalResult(metrics, "\n".join(lines), wrote)


def _report(ds: Any, metrics: dict[str, Any], split: str) -> str:
    from avloc.evaluate import format_action_report, format_event_table, format_parsing_report

    if ds.task == "event":
        return format_event_table(metrics, split)
    if ds.task == "parsing":
        return format_parsing_report(metrics, split)
    return format_action_report(metrics, split)
