"""Score a model on one split: AVE snippet accuracy, ActivityNet mAP@tIoU or LLP parsing
F-scores."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config import PARSING_METRICS, Config, LocalizeConfig
from avloc.data.base import Dataset
from avloc.errors import AvlocError, plural
from avloc.metrics.parsing import OFFICIAL_THRESHOLD
from avloc.model import AVLocModel
from avloc.predict import VideoPrediction, predict

# the numbers each task's evaluation produces that can select the best epoch
TASK_METRICS = {"event": ("accuracy",), "action": ("average_mAP",), "parsing": PARSING_METRICS}
AUTO_METRIC = {"event": "accuracy", "action": "average_mAP", "parsing": "segment_level.type_av"}
THRESHOLD_KEYS = {"video": "parsing_video_threshold", "audio": "parsing_audio_threshold",
                  "visual": "parsing_visual_threshold"}
TUNED_SOURCE = "tuned on the validation split"


@dataclass(frozen=True)
class ParsingThresholds:
    """The three thresholds that decide a parsing model's events (`segments.parsing_decisions`)
    and where they come from."""

    video: float
    audio: float
    visual: float
    source: str

    @classmethod
    def of(cls, loc: LocalizeConfig, source: str) -> ParsingThresholds:
        return cls(*(float(getattr(loc, name)) for name in THRESHOLD_KEYS.values()), source)

    def apply(self, loc: LocalizeConfig) -> LocalizeConfig:
        """`loc` deciding events at these thresholds."""
        return dataclasses.replace(loc, **{name: getattr(self, key)
                                           for key, name in THRESHOLD_KEYS.items()})

    def values(self) -> tuple[float, float, float]:
        return self.video, self.audio, self.visual

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def text(self) -> str:
        return (f"video {self.video:.2f}, audio {self.audio:.2f}, visual {self.visual:.2f} "
                f"({self.source})")


# what the LLP protocol decides events at (AVVP-ECCV20 main_avvp.py: >= 0.5 everywhere)
OFFICIAL = ParsingThresholds(OFFICIAL_THRESHOLD, OFFICIAL_THRESHOLD, OFFICIAL_THRESHOLD,
                             "the LLP protocol")


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


def parsing_metrics(ds: Dataset, preds: Sequence[VideoPrediction], loc: LocalizeConfig,
                    tuned: ParsingThresholds | None = None) -> dict[str, Any]:
    """LLP protocol: each modality's events decided at the official thresholds (0.5), then
    the official segment- and event-level F-scores (avloc.metrics.parsing) and avloc's
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
    model: AVLocModel, ds: Dataset, split: str, cfg: Config, device: torch.device | str = "cpu",
    tuned: ParsingThresholds | None = None,
) -> tuple[dict[str, Any], list[VideoPrediction]]:
    """The split's metrics as its task's protocol computes them (parsing data: at the LLP
    protocol's thresholds, and with `tuned` beside them), and the predictions."""
    check_scorable(ds, split)
    preds = predict(model, ds.splits[split], device, amp=cfg.train.amp)
    if ds.task == "event":
        return event_metrics(ds, preds), preds
    if ds.task == "parsing":
        return parsing_metrics(ds, preds, cfg.localize, tuned), preds
    return action_metrics(ds, preds, cfg, split), preds


def tuned_thresholds(
    model: AVLocModel, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> ParsingThresholds | None:
    """Parsing data: the thresholds of the method beside the protocol's, with where they
    come from: tuned on the validation split with localize.parsing_tune (for the run's
    selection metric), else the settings' when they differ from the protocol's. None for
    other data, and when there is nothing to tune on or report."""
    if ds.task != "parsing":
        return None
    if not cfg.localize.parsing_tune:
        mine = ParsingThresholds.of(cfg.localize, "settings")
        return None if mine.values() == OFFICIAL.values() else mine
    if not ds.splits.get("val"):
        return None
    preds = predict(model, ds.splits["val"], device, amp=cfg.train.amp)
    loc = tune_parsing_thresholds(ds, preds, cfg, selection_metric(cfg, ds.task))
    return ParsingThresholds.of(loc, TUNED_SOURCE)


def recorded_thresholds(run_dir: Path) -> ParsingThresholds | None:
    """A finished parsing run's tuned thresholds as its metrics.json records them
    ("tuned_thresholds"; runs of avloc 0.1 recorded them as "thresholds"), else None."""
    from avloc.io import read_json

    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None
    doc = read_json(path) or {}
    recorded = doc.get("tuned_thresholds")
    if recorded is None and str((doc.get("thresholds") or {}).get("source", "")).startswith(
            "tuned"):
        recorded = doc["thresholds"]
    if not isinstance(recorded, dict) or not all(
            isinstance(recorded.get(k), (int, float)) for k in THRESHOLD_KEYS):
        return None
    return ParsingThresholds(*(float(recorded[k]) for k in THRESHOLD_KEYS),
                             f"{recorded.get('source', TUNED_SOURCE)}, {path}")


def score_with_best(
    path: Path, ds: Dataset, cfg: Config, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """A finished run's numbers: its val and test splits (those the data has) scored with the
    weights of its best validation epoch, the checkpoint at `path` (parsing data: at the LLP
    protocol's thresholds, and beside them at the `tuned_thresholds`, also recorded)."""
    from avloc.checkpoint import model_from_checkpoint, read_checkpoint

    model, _ = model_from_checkpoint(read_checkpoint(path), str(path))
    model.to(device)
    tuned = tuned_thresholds(model, ds, cfg, device)
    out: dict[str, Any] = {split: evaluate_split(model, ds, split, cfg, device, tuned)[0]
                           for split in ("val", "test") if ds.splits.get(split)}
    if tuned is not None:
        out["tuned_thresholds"] = tuned.to_dict()
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


def format_parsing_report(metrics: dict[str, Any], split: str) -> str:
    """What `avloc eval` prints for parsing data: the F-scores at both levels, in percent, at
    the LLP protocol's thresholds; then, labelled, at the tuned ones when there are any."""
    from avloc.metrics import format_parsing_table

    lines = [f"{split}: audio-visual video parsing, {plural(metrics['videos'], 'video')}; "
             "F-scores (%) "
             f"of the LLP protocol (events at probability >= {OFFICIAL_THRESHOLD:g}, as the "
             "official code decides them)", format_parsing_table(metrics)]
    tuned = metrics.get("tuned")
    if tuned:
        t = ParsingThresholds(**tuned["thresholds"])
        lines += [f"{split}: the same at thresholds {t.text()}; not the LLP protocol, not "
                  "comparable with published numbers", format_parsing_table(tuned)]
    return "\n".join(lines) + _modality_line(metrics.get("modality_specific"), split)


def headline(metrics: dict[str, Any], task: str) -> str:
    """A split's main numbers in one line (the end of `avloc train`)."""
    if task == "event":
        return f"snippet accuracy {100 * metrics['accuracy']:.2f} %"
    if task == "action":
        first = next(iter(metrics["mAP"]))
        return (f"average mAP {100 * metrics['average_mAP']:.2f} % (mAP@{first} "
                f"{100 * metrics['mAP'][first]:.2f} %)")
    return ", ".join(f"{level.split('_')[0]} Type@AV {100 * metrics[level]['type_av']:.1f} / "
                     f"Event@AV {100 * metrics[level]['event_av']:.1f}"
                     for level in ("segment_level", "event_level")) + " (LLP protocol)"


def run_summary(metrics: dict[str, Any], task: str, run: Path) -> str:
    """What `avloc train` prints after its last epoch: the chosen epoch and the numbers of
    metrics.json."""
    lines = [f"best epoch {metrics['best_epoch']} by validation {metrics['select_metric']}"
             if "val" in metrics else
             f"no validation split: the last epoch, {metrics['best_epoch']}, is the model"]
    lines += [f"{split}: {headline(metrics[split], task)}" for split in ("val", "test")
              if split in metrics]
    tuned = metrics.get("tuned_thresholds")
    if tuned:
        t = ParsingThresholds(**tuned).text()
        test = (metrics.get("test") or {}).get("tuned")
        at = (f"; test segment Type@AV {100 * test['segment_level']['type_av']:.1f} at them"
              if test else "")
        lines.append(f"thresholds {t} for avloc localize{at} (not the LLP protocol)")
    lines.append(f"wrote {run / 'metrics.json'}")
    return "\n".join(f"avloc: {x}" for x in lines)


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
        f"{plural(metrics['snippets'], 'snippet')} of {plural(metrics['videos'], 'video')}\n"
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
