"""Score a model on one split: AVE snippet accuracy or ActivityNet mAP@tIoU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config import Config
from avloc.data.base import Dataset
from avloc.errors import AvlocError
from avloc.model import AVLocModel
from avloc.predict import VideoPrediction, predict


def event_metrics(ds: Dataset, preds: Sequence[VideoPrediction]) -> dict[str, Any]:
    """AVE protocol: argmax over C + 1 classes per snippet, accuracy over all snippets."""
    from avloc.metrics import oracle_accuracy, snippet_accuracy
    from avloc.segments import argmax_labels

    truth = [ds.annotations[p.vid].snippet_labels for p in preds]
    labels = [argmax_labels(p.p) for p in preds]
    mu = np.concatenate([p.mu for p in preds])  # (N,) every snippet
    event = np.concatenate(truth) > 0  # (N,)
    return {
        "accuracy": snippet_accuracy(labels, truth),
        "oracle_accuracy": oracle_accuracy(truth),
        "mu_inside_events": float(mu[event].mean()) if event.any() else None,
        "mu_outside_events": float(mu[~event].mean()) if (~event).any() else None,
        "videos": len(preds),
        "snippets": int(sum(len(t) for t in truth)),
    }


def action_detections(
    ds: Dataset, preds: Sequence[VideoPrediction], cfg: Config
) -> dict[str, list[dict[str, Any]]]:
    """Per video, the W-TALC two-stage thresholded segments ({label, score, segment})."""
    from avloc.segments import segments_from_cas

    out = {}
    for p in preds:
        duration = ds.annotations[p.vid].duration if p.vid in ds.annotations else None
        out[p.vid] = segments_from_cas(
            p.cas, p.video_scores(cfg.loss.topk_divisor), ds.timing(p.vid), ds.classes,
            cfg.localize, duration=duration,
        )
    return out


def action_metrics(
    ds: Dataset, preds: Sequence[VideoPrediction], cfg: Config, split: str | None = None
) -> dict[str, Any]:
    """ActivityNet protocol on one split: mAP at each tIoU of `eval.tiou` and averages.

    The ground truth is the split's videos alone (never a mix of splits). Detections of a
    class without an instance in the split are left out (`detections_dropped`, and the
    class names in `classes_without_instances`): a small held-out split may lack rare
    classes, and the official evaluator, which fails on such labels, has no number then.
    """
    from avloc.metrics import detection_map, ground_truth_from_annotations, parse_tiou

    detections = action_detections(ds, preds, cfg)
    gt = ground_truth_from_annotations([ds.annotations[p.vid] for p in preds],
                                       f"dataset {ds.name}", split)
    metrics = detection_map(gt, detections, parse_tiou(cfg.eval.tiou), cfg.eval.ties,
                            unknown_labels="drop")
    metrics["classes_without_instances"] = sorted(set(ds.classes) - set(gt.classes))
    return metrics


def check_scorable(ds: Dataset, split: str) -> None:
    """Videos with video-level labels only (generic layout) have unknown segments: scoring
    them as "no segment" would count every detection on them as false."""
    weak = [v.vid for v in ds.splits.get(split, [])
            if v.vid in ds.annotations and ds.annotations[v.vid].weak]
    if weak:
        raise AvlocError(f"dataset {ds.name}: split {split}: {len(weak)} of its "
                         f"{len(ds.splits[split])} videos have video-level labels only (e.g. "
                         f"{weak[0]}); scoring needs their segments")


def evaluate_split(
    model: AVLocModel, ds: Dataset, split: str, cfg: Config, device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], list[VideoPrediction]]:
    check_scorable(ds, split)
    preds = predict(model, ds.splits[split], device, amp=cfg.train.amp)
    if ds.task == "event":
        return event_metrics(ds, preds), preds
    return action_metrics(ds, preds, cfg, split), preds


def score_with_best(
    path: Path, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """A finished run's numbers: its val and test splits (those the data has) scored with the
    weights of its best validation epoch, the checkpoint at `path`."""
    from avloc.checkpoint import model_from_checkpoint, read_checkpoint

    model, _ = model_from_checkpoint(read_checkpoint(path), str(path))
    model.to(device)
    return {split: evaluate_split(model, ds, split, cfg, device)[0]
            for split in ("val", "test") if ds.splits.get(split)}


def selection_metric(cfg: Config, task: str) -> str:
    """The validation number that picks the best epoch."""
    if cfg.train.select_metric != "auto":
        return cfg.train.select_metric
    return "accuracy" if task == "event" else "average_mAP"


def format_event_table(metrics: dict[str, Any], split: str) -> str:
    return (
        f"{split}: snippet accuracy {100 * metrics['accuracy']:.2f} % over "
        f"{metrics['snippets']} snippets of {metrics['videos']} videos\n"
        f"{split}: oracle (every snippet = the video's class) "
        f"{100 * metrics['oracle_accuracy']:.2f} %\n"
        f"{split}: mean foreground reliability mu inside events "
        f"{_fmt(metrics['mu_inside_events'])}, outside {_fmt(metrics['mu_outside_events'])}"
    )


def missing_classes_note(metrics: dict[str, Any], split: str) -> str | None:
    """One line when classes of the dataset have no instance in the split, else None."""
    missing = metrics.get("classes_without_instances") or []
    if not missing:
        return None
    names = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    return (f"{split}: {len(missing)} classes have no instance in this split ({names}); "
            f"their {metrics['detections_dropped']} detections are left out of its mAP")


def format_action_report(metrics: dict[str, Any], split: str) -> str:
    """What was scored, the mAP table and the classes left out, as `avloc eval` prints it."""
    from avloc.metrics import format_map_table, format_scope

    note = missing_classes_note(metrics, split)
    return "\n".join([format_scope(metrics), format_map_table(metrics)] + ([note] if note else []))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"

