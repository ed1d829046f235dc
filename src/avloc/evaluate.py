"""Score a model on one split: AVE snippet accuracy, ActivityNet mAP@tIoU or LLP parsing
F-scores."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config import PARSING_METRICS, Config, LocalizeConfig
from avloc.data.base import Dataset
from avloc.errors import AvlocError
from avloc.model import AVLocModel
from avloc.predict import VideoPrediction, predict

# the numbers each task's evaluation produces that can select the best epoch
TASK_METRICS = {"event": ("accuracy",), "action": ("average_mAP",), "parsing": PARSING_METRICS}
AUTO_METRIC = {"event": "accuracy", "action": "average_mAP", "parsing": "segment_level.type_av"}
THRESHOLD_KEYS = {"video": "parsing_video_threshold", "audio": "parsing_audio_threshold",
                  "visual": "parsing_visual_threshold"}


def event_metrics(ds: Dataset, preds: Sequence[VideoPrediction]) -> dict[str, Any]:
    """AVE protocol: argmax over C + 1 classes per snippet, accuracy over all snippets."""
    from avloc.metrics import oracle_accuracy, snippet_accuracy
    from avloc.segments import argmax_labels

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


class ParsingSplit:
    """One split's parsing predictions and ground truth as (N, C, T) arrays (zero-padded to
    the longest video: a padded segment is never decided, nor an event), scored at any
    thresholds without rebuilding them (threshold tuning scores a split many times)."""

    def __init__(self, ds: Dataset, preds: Sequence[VideoPrediction]):
        from avloc.metrics.parsing import stack
        from avloc.segments import truth_matrices

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
        from avloc.metrics.parsing import modality_specific, parsing_scores
        from avloc.segments import parsing_decisions

        pa, pv = parsing_decisions(self.audio, self.visual, self.video, loc)  # (N, C, T) each
        metrics = parsing_scores(pa, pv, self.gt_audio, self.gt_visual, levels)
        metrics["thresholds"] = {k: getattr(loc, name) for k, name in THRESHOLD_KEYS.items()}
        if diagnostic:
            metrics["modality_specific"] = modality_specific(pa, pv, self.gt_audio,
                                                             self.gt_visual)
        return metrics


def parsing_metrics(ds: Dataset, preds: Sequence[VideoPrediction], loc: LocalizeConfig
                    ) -> dict[str, Any]:
    """LLP protocol: decide each modality's events with `loc`'s thresholds, then the official
    segment- and event-level F-scores (avloc.metrics.parsing) and avloc's diagnostic of
    modality-specific events (`modality_specific`)."""
    return ParsingSplit(ds, preds).metrics(loc)


def tune_parsing_thresholds(
    ds: Dataset, preds: Sequence[VideoPrediction], cfg: Config, metric: str,
    grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2)),
) -> LocalizeConfig:
    """The video, audio and visual thresholds that maximise `metric` on these (validation)
    predictions: coordinate ascent from the configured values over `grid`, one threshold
    at a time, until a pass changes none (at most 4 passes). Ties keep the current value,
    then the lowest."""
    loc = dataclasses.replace(cfg.localize)
    split = ParsingSplit(ds, preds)
    level = metric.split(".")[0]
    score = lambda c: metric_value(split.metrics(c, [level], False), metric)  # noqa: E731
    best = score(loc)
    for _ in range(4):
        changed = False
        for name in THRESHOLD_KEYS.values():
            for value in grid:
                trial = dataclasses.replace(loc, **{name: float(value)})
                if (value_score := score(trial)) > best:
                    loc, best, changed = trial, value_score, True
        if not changed:
            break
    return loc


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
    if ds.task == "parsing":
        return parsing_metrics(ds, preds, cfg.localize), preds
    return action_metrics(ds, preds, cfg, split), preds


def tuned_config(
    model: AVLocModel, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> tuple[Config, str]:
    """Parsing data with localize.parsing_tune: the settings with the thresholds tuned on the
    validation split (for the run's selection metric), and where they come from."""
    if ds.task != "parsing" or not cfg.localize.parsing_tune:
        return cfg, "settings"
    if not ds.splits.get("val"):
        return cfg, "settings (no validation split to tune them on)"
    preds = predict(model, ds.splits["val"], device, amp=cfg.train.amp)
    loc = tune_parsing_thresholds(ds, preds, cfg, selection_metric(cfg, ds.task))
    return dataclasses.replace(cfg, localize=loc), "tuned on the validation split"


def recorded_thresholds(cfg: Config, run_dir: Path) -> tuple[Config, str]:
    """A finished parsing run's thresholds as its metrics.json records them (tuned on its
    validation split), else the settings as they are; and where they come from."""
    from avloc.io import read_json

    path = Path(run_dir) / "metrics.json"
    if cfg.model.head != "parsing" or not path.is_file():
        return cfg, "settings"
    recorded = (read_json(path) or {}).get("thresholds") or {}
    values = {name: recorded[k] for k, name in THRESHOLD_KEYS.items()
              if isinstance(recorded.get(k), (int, float))}
    if len(values) != len(THRESHOLD_KEYS):
        return cfg, "settings"
    loc = dataclasses.replace(cfg.localize, **{k: float(v) for k, v in values.items()})
    return dataclasses.replace(cfg, localize=loc), f"{recorded.get('source', 'recorded')} ({path})"


def score_with_best(
    path: Path, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """A finished run's numbers: its val and test splits (those the data has) scored with the
    weights of its best validation epoch, the checkpoint at `path` (parsing data: with the
    thresholds tuned on validation when localize.parsing_tune, recorded as "thresholds")."""
    from avloc.checkpoint import model_from_checkpoint, read_checkpoint

    model, _ = model_from_checkpoint(read_checkpoint(path), str(path))
    model.to(device)
    cfg, source = tuned_config(model, ds, cfg, device)
    out: dict[str, Any] = {split: evaluate_split(model, ds, split, cfg, device)[0]
                           for split in ("val", "test") if ds.splits.get(split)}
    if ds.task == "parsing":
        out["thresholds"] = {**{k: getattr(cfg.localize, name)
                                for k, name in THRESHOLD_KEYS.items()}, "source": source}
    return out


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


def metric_value(metrics: dict[str, Any], name: str) -> float:
    """A selectable number of a metrics dict: a top-level key ("accuracy") or a parsing
    number "LEVEL.NAME" ("segment_level.type_av")."""
    if name in PARSING_METRICS:
        level, key = name.split(".")
        return float(metrics[level][key])
    return float(metrics[name])


def format_parsing_report(metrics: dict[str, Any], split: str, source: str = "settings") -> str:
    """What `avloc eval` prints for parsing data: the F-scores at both levels, in percent."""
    from avloc.metrics import format_parsing_table

    t = metrics["thresholds"]
    return (f"{split}: audio-visual video parsing, {metrics['videos']} videos; F-scores (%), "
            f"thresholds video {t['video']:.2f}, audio {t['audio']:.2f}, visual "
            f"{t['visual']:.2f} ({source})\n" + format_parsing_table(metrics)
            + _modality_line(metrics.get("modality_specific"), split))


def _modality_line(found: dict[str, float | None] | None, split: str) -> str:
    if not found:
        return ""
    return (f"\n{split}: segments heard but not seen, found in audio only: "
            f"{_pct(found['heard_only'])}; seen but not heard, found in visual only: "
            f"{_pct(found['seen_only'])}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def format_event_table(metrics: dict[str, Any], split: str) -> str:
    return (
        f"{split}: snippet accuracy {100 * metrics['accuracy']:.2f} % over "
        f"{metrics['snippets']} snippets of {metrics['videos']} videos\n"
        f"{split}: oracle (every snippet = the video's class) "
        f"{100 * metrics['oracle_accuracy']:.2f} %\n"
        f"{split}: mean foreground reliability mu inside events "
        f"{_fmt(metrics['mu_inside_events'])}, outside {_fmt(metrics['mu_outside_events'])}\n"
        f"{split}: background snippets labelled background "
        f"{_pct(metrics.get('background_recall'))}"
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


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"
