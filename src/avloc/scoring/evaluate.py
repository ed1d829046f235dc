"""Score a model on one split: AVE snippet accuracy, ActivityNet mAP@tIoU or LLP parsing
F-scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from avloc.config import PARSING_METRICS, Config, LocalizeConfig, parse_tiou
from avloc.data.base import Dataset
from avloc.model import AVLocModel
from avloc.scoring.metrics import (
    detection_map,
    ground_truth_from_annotations,
    oracle_accuracy,
    snippet_accuracy,
)
from avloc.scoring.metrics.parsing import modality_specific, parsing_scores, stack
from avloc.scoring.predict import VideoPrediction, predict
from avloc.scoring.segments import (
    argmax_labels,
    parsing_decisions,
    segments_from_cas,
    truth_matrices,
)
from avloc.scoring.thresholds import (
    OFFICIAL,
    THRESHOLD_KEYS,
    ParsingThresholds,
)
from avloc.util.errors import AvlocError

# the numbers each task's evaluation produces that can select the best epoch
TASK_METRICS = {"event": ("accuracy", "accuracy_separated"), "action": ("average_mAP",),
                "parsing": PARSING_METRICS}
AUTO_METRIC = {"event": "accuracy", "action": "average_mAP", "parsing": "segment_level.type_av"}
def event_metrics(ds: Dataset, preds: Sequence[VideoPrediction]) -> dict[str, Any]:
    """AVE protocol: argmax over C + 1 classes per snippet, accuracy over all snippets."""
    truth = [ds.annotations[p.vid].snippet_labels for p in preds]
    labels = [argmax_labels(p.p) for p in preds]
    mu = np.concatenate([p.mu for p in preds])  # (N,) every snippet
    event = np.concatenate(truth) > 0  # (N,)
    # a snippet is called background where 1 - mu beats mu * max softmax(h): a low mu or a
    # flat class soft-max finds it
    called_background = np.concatenate(labels) == 0  # (N,)
    background = ~event  # (N,)
    return {
        "accuracy": snippet_accuracy(labels, truth),
        "oracle_accuracy": oracle_accuracy(truth),
        "mu_inside_events": float(mu[event].mean()) if event.any() else None,
        "mu_outside_events": float(mu[background].mean()) if background.any() else None,
        "background_recall": (float(called_background[background].mean())
                              if background.any() else None),
        "videos": len(preds),
        "snippets": int(sum(len(t) for t in truth)),
    }


def action_detections(
    ds: Dataset, preds: Sequence[VideoPrediction], cfg: Config
) -> dict[str, list[dict[str, Any]]]:
    """Per video, the W-TALC two-stage thresholded segments ({label, score, segment})."""
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
    detections = action_detections(ds, preds, cfg)
    gt = ground_truth_from_annotations([ds.annotations[p.vid] for p in preds],
                                       f"dataset {ds.name}", split)
    metrics = detection_map(gt, detections, parse_tiou(cfg.eval.tiou), cfg.eval.ties,
                            unknown_labels="drop")
    metrics["classes_without_instances"] = sorted(set(ds.classes) - set(gt.classes))
    return metrics


class ParsingSplit:
    """One split's parsing predictions and ground truth as (N, C, T) arrays (zero-padded to
    the longest video: a padded segment is never decided, nor an event), scored at any
    thresholds without rebuilding them (threshold tuning scores a split many times)."""

    def __init__(self, ds: Dataset, preds: Sequence[VideoPrediction]):
        if any(p.audio is None for p in preds):
            raise AvlocError(f"dataset {ds.name} is parsing data: its model needs the parsing "
                             "head (model.head=parsing)")
        # (N, T, C), as parsing_decisions takes them; padding has probability 0
        self.audio = stack([p.audio.T for p in preds], dtype=np.float32).swapaxes(1, 2)
        self.visual = stack([p.visual.T for p in preds], dtype=np.float32).swapaxes(1, 2)
        self.video = np.stack([p.video for p in preds])  # (N, C)
        truth = [truth_matrices(ds.annotations[p.vid].segments, ds.classes, len(p.p),
                                ds.timing(p.vid)) for p in preds]
        self.gt_audio = stack([a for a, _ in truth])  # (N, C, T) uint8
        self.gt_visual = stack([v for _, v in truth])

    def metrics(self, loc: LocalizeConfig, levels: Sequence[str] = ("segment_level",
                                                                    "event_level"),
                diagnostic: bool = True) -> dict[str, Any]:
        """The official F-scores of the events `loc`'s thresholds decide, for all videos at
        once."""
        pa, pv = parsing_decisions(self.audio, self.visual, self.video, loc)  # (N, C, T) each
        metrics = parsing_scores(pa, pv, self.gt_audio, self.gt_visual, levels)
        metrics["thresholds"] = {k: getattr(loc, name) for k, name in THRESHOLD_KEYS.items()}
        if diagnostic:
            metrics["modality_specific"] = modality_specific(pa, pv, self.gt_audio,
                                                             self.gt_visual)
        return metrics


def parsing_metrics(ds: Dataset, preds: Sequence[VideoPrediction], loc: LocalizeConfig,
                    tuned: ParsingThresholds | None = None) -> dict[str, Any]:
    """LLP protocol: each modality's events decided at the official thresholds (0.5), then
    the official segment- and event-level F-scores (avloc.scoring.metrics.parsing) and avloc's
    diagnostic of modality-specific events (`modality_specific`). With `tuned` (thresholds
    of the method, not of the protocol), the F-scores at those too, as "tuned"."""
    split = ParsingSplit(ds, preds)
    metrics = split.metrics(OFFICIAL.apply(loc))
    metrics["thresholds"]["source"] = OFFICIAL.source
    if tuned is not None:
        other = split.metrics(tuned.apply(loc), diagnostic=False)
        metrics["tuned"] = {"segment_level": other["segment_level"],
                            "event_level": other["event_level"], "thresholds": tuned.to_dict()}
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
    model: AVLocModel, ds: Dataset, split: str, cfg: Config, device: torch.device | str = "cpu",
    tuned: ParsingThresholds | None = None,
) -> tuple[dict[str, Any], list[VideoPrediction]]:
    """The split's metrics as its task's protocol computes them (parsing data: at the LLP
    protocol's thresholds, and with `tuned` beside them), and the predictions."""
    check_scorable(ds, split)
    preds = predict(model, ds.splits[split], device, amp=cfg.train.amp)
    return split_metrics(ds, split, preds, cfg, tuned), preds


def split_metrics(ds: Dataset, split: str, preds: Sequence[VideoPrediction], cfg: Config,
                  tuned: ParsingThresholds | None = None) -> dict[str, Any]:
    """`evaluate_split`'s metrics from predictions already made."""
    if ds.task == "event":
        return event_metrics(ds, preds)
    if ds.task == "parsing":
        return parsing_metrics(ds, preds, cfg.localize, tuned)
    return action_metrics(ds, preds, cfg, split)


def selection_metric(cfg: Config, task: str) -> str:
    """The validation number that picks the best epoch: train.select_metric, or with `auto`
    accuracy (event), average_mAP (action), segment_level.type_av (parsing: what the
    official LLP code selects on). One the task does not produce is an error."""
    name = cfg.train.select_metric
    if name == "auto":
        return AUTO_METRIC[task]
    if name not in TASK_METRICS.get(task, ()):
        raise AvlocError(f"setting train.select_metric={name}: {task} data is scored by "
                         f"{', '.join(TASK_METRICS.get(task, ()))} (or auto)")
    return name


def selection_value(metrics: dict[str, Any], name: str, separation: float) -> float:
    """The number that ranks an epoch: `metric_value`, except accuracy_separated (event):
    1 + the accuracy where mean mu inside events minus outside them reaches `separation`
    (train.select_separation), else the accuracy alone. So the most accurate of the
    separated epochs is kept, and the most accurate of all while none has separated.
    Without background snippets on validation: the accuracy."""
    if name != "accuracy_separated":
        return metric_value(metrics, name)
    accuracy = float(metrics["accuracy"])
    inside, outside = metrics["mu_inside_events"], metrics["mu_outside_events"]
    if inside is None or outside is None:
        return accuracy
    return accuracy + 1.0 if inside - outside >= separation else accuracy


def metric_value(metrics: dict[str, Any], name: str) -> float:
    """A selectable number of a metrics dict: a top-level key ("accuracy") or a parsing
    number "LEVEL.NAME" ("segment_level.type_av"); accuracy_separated shows the accuracy
    (`selection_value` ranks)."""
    if name == "accuracy_separated":
        return float(metrics["accuracy"])
    if name in PARSING_METRICS:
        level, key = name.split(".")
        return float(metrics[level][key])
    return float(metrics[name])


