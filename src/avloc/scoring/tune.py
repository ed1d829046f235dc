"""`avloc tune`: search the post-processing settings (`localize.*`) on the validation split.

The paper leaves the W-TALC thresholds open (docs/evaluation.md). Tuning runs the model
once over the validation videos, keeps their class activation sequences in memory, and
scores each trial's segments from them (nothing is recomputed per trial). The test split
is never predicted nor scored: only `ds.splits["val"]` reaches the model.

Search: coordinate descent over a small grid (`SEARCH`), from the run's own settings: each
setting in turn takes its best value with the others fixed, for up to `rounds` rounds or
until a round changes nothing. The settings interact little (thresholds, then filtering
and ranking), so this finds what a full grid (thousands of trials) would at ~30 trials a
round; ties keep the current value, so nothing moves without a gain on validation.

The result goes to RUN/localize.yaml; `avloc eval` and `avloc localize` apply it over the
checkpoint's settings (`apply_tuned`) and say so. Runs without the file behave as before.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from avloc.checkpoint import check_compatible, checkpoint_id, find_checkpoint, load_model
from avloc.config import Config, LocalizeConfig, parse_tiou, validate
from avloc.data import load_dataset
from avloc.data.base import Dataset
from avloc.data.checks import no_validation_note
from avloc.model import AVLocModel
from avloc.scoring.evaluate import ParsingSplit, metric_value, selection_metric
from avloc.scoring.metrics import detection_map, ground_truth_from_annotations
from avloc.scoring.predict import VideoPrediction, predict
from avloc.scoring.results import record_from_prediction
from avloc.scoring.segments import segments_from_cas, video_class_scores
from avloc.scoring.thresholds import OFFICIAL, THRESHOLD_KEYS, TUNED_SOURCE, ParsingThresholds
from avloc.scoring.tuned_model import METRIC, tuned_path
from avloc.util.errors import AvlocError
from avloc.util.io import write_text_atomic

SEARCH: dict[str, tuple[Any, ...]] = {
    "class_filter": ("mean", "none"),
    "act_threshold": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "act_threshold_step": (0.0, 0.05, 0.1, 0.2),
    "smooth": (1, 3, 5, 9),
    "min_snippets": (1, 2, 3, 4, 6),
    "score_weight": (0.0, 0.35, 0.7, 1.0, 2.0),
    "nms_iou": (0.0, 0.3, 0.5, 0.7),
}


@dataclass
class Trial:
    settings: LocalizeConfig
    value: float  # validation metric, fraction in [0, 1]


@dataclass
class TuneResult:
    start: Trial  # the run's own settings
    best: Trial
    trials: list[Trial]  # every distinct setting tried, in the order tried
    videos: int
    path: Path | None = None  # where the settings were written


def coordinate_search(
    evaluate: Callable[[LocalizeConfig], float], start: LocalizeConfig,
    space: dict[str, Sequence[Any]], rounds: int = 3,
) -> tuple[Trial, list[Trial]]:
    """Best settings found by coordinate descent from `start`, and every trial made."""
    seen: dict[tuple, Trial] = {}

    def trial(settings: LocalizeConfig) -> Trial:
        key = tuple(asdict(settings).values())
        if key not in seen:
            seen[key] = Trial(settings, float(evaluate(settings)))
        return seen[key]

    best = trial(start)
    for _ in range(rounds):
        before = best
        for name, values in space.items():
            for value in values:
                t = trial(replace(best.settings, **{name: value}))
                if t.value > best.value + 1e-12:  # strictly better: ties keep the current value
                    best = t
        if best is before:
            break
    return best, list(seen.values())


def _val_records(model: Any, ds: Any, cfg: Config) -> list[Any]:
    """Model outputs of the validation videos alone, as CAS records (one forward pass)."""
    videos = ds.splits.get("val") or []
    if not videos:
        why = no_validation_note(ds, cfg.data.format, cfg.data.val_fraction) or ""
        raise AvlocError(f"dataset {ds.name}: tune needs validation videos: {why.split(':')[0]}")
    preds = predict(model, videos, amp=cfg.train.amp)
    return [record_from_prediction(p, ds.classes, ds.timing(p.vid),
                                   ds.annotations[p.vid].duration, {}) for p in preds]


def make_evaluator(records: list[Any], ds: Any, cfg: Config) -> Callable[[LocalizeConfig], float]:
    """Settings -> validation average mAP at the run's tIoU thresholds, from the records."""
    gt = ground_truth_from_annotations([ds.annotations[r.vid] for r in records],
                                       f"dataset {ds.name}", "val")
    thresholds = parse_tiou(cfg.eval.tiou)
    scores = [video_class_scores(r.cas, cfg.loss.topk_divisor) for r in records]  # (C,) each

    def evaluate(loc: LocalizeConfig) -> float:
        dets = {r.vid: segments_from_cas(r.cas, s, r.timing, r.classes, loc, r.duration)
                for r, s in zip(records, scores, strict=True)}
        return detection_map(gt, dets, thresholds, cfg.eval.ties, unknown_labels="drop")[METRIC]

    return evaluate


def tune(run: str | Path, data: str | Path | None, rounds: int = 3,
         tiou: str | None = None, write: bool = True) -> TuneResult:
    """Search `localize.*` on the run's validation split and write RUN/localize.yaml."""
    if rounds < 1:
        raise AvlocError(f"--rounds {rounds}: must be at least 1")
    path = find_checkpoint(run)
    model, cfg, ckpt = load_model(path)
    if ckpt.get("task") == "event":
        raise AvlocError(f"{path}: an event model (AVE-style) is scored by per-snippet argmax "
                         "accuracy, which no localize.* setting changes: nothing to tune")
    cfg.eval.tiou = tiou or cfg.eval.tiou
    validate(cfg)
    ds = load_dataset(cfg.data, data)
    check_compatible(ds, ckpt, str(path))
    if ds.task != "action":
        raise AvlocError(f"{data}: event data is scored by snippet accuracy: nothing to tune")
    records = _val_records(model, ds, cfg)
    best, trials = coordinate_search(make_evaluator(records, ds, cfg), cfg.localize, SEARCH,
                                     rounds)
    result = TuneResult(trials[0], best, trials, len(records))
    if write:
        result.path = write_tuned(tuned_path(path), result, cfg, checkpoint_id(ckpt), data)
    return result


def write_tuned(path: Path, result: TuneResult, cfg: Config, ckpt_id: str,
                data: str | Path | None) -> Path:
    """RUN/localize.yaml: the settings, then where they come from (atomic)."""
    doc = {
        "localize": asdict(result.best.settings),
        "tuned_on": {
            "split": "val", "videos": result.videos, "metric": METRIC, "tiou": cfg.eval.tiou,
            "value": result.best.value, "defaults_value": result.start.value,
            "trials": len(result.trials), "checkpoint": ckpt_id,
            "data": str(Path(data).resolve()) if data else cfg.data.format,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
        },
    }
    head = ("# written by `avloc tune`: post-processing settings searched on the validation\n"
            "# split; avloc eval and avloc localize use them (--untuned: the run's own)\n")
    write_text_atomic(path, head + yaml.safe_dump(doc, sort_keys=False))
    return path


def format_trials(result: TuneResult, top: int = 10) -> str:
    """The best `top` trials as a table (validation metric in percent), the run's own
    settings marked, then the summary line."""
    names = list(SEARCH)
    head = " ".join(f"{n:>{max(len(n), 6)}}" for n in names) + f" | {'val avg mAP':>11}"
    rows = sorted(result.trials, key=lambda t: -t.value)[:top]
    if result.start not in rows:
        rows.append(result.start)
    lines = [head]
    for t in rows:
        cells = " ".join(f"{_cell(getattr(t.settings, n)):>{max(len(n), 6)}}" for n in names)
        mark = "  <- best" if t is result.best else ""
        mark += "  (the run's own)" if t is result.start else ""
        lines.append(f"{cells} | {100 * t.value:11.2f}{mark}")
    gain = 100 * (result.best.value - result.start.value)
    lines.append(f"validation {METRIC}: {100 * result.best.value:.2f} % tuned, "
                 f"{100 * result.start.value:.2f} % with the run's own settings ({gain:+.2f}), "
                 f"{len(result.trials)} settings tried on {result.videos} videos")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def changed_settings(result: TuneResult) -> dict[str, Any]:
    """The settings tuning moved away from the run's own."""
    a, b = asdict(result.start.settings), asdict(result.best.settings)
    return {k: b[k] for k in a if a[k] != b[k]}


# ---- parsing models: the event thresholds ------------------------------------------------
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


def tuned_thresholds(
    model: AVLocModel, ds: Dataset, cfg: Config, device: torch.device | str = "cpu",
    val_preds: Sequence[VideoPrediction] | None = None,
) -> ParsingThresholds | None:
    """Parsing data: the thresholds of the method beside the protocol's, with where they
    come from: tuned on the validation split with localize.parsing_tune (for the run's
    selection metric; `val_preds`: its predictions when already made), else the settings'
    when they differ from the protocol's. None for other data, and when there is nothing to
    tune on or report."""
    if ds.task != "parsing":
        return None
    if not cfg.localize.parsing_tune:
        mine = ParsingThresholds.of(cfg.localize, "settings")
        return None if mine.values() == OFFICIAL.values() else mine
    if not ds.splits.get("val"):
        return None
    preds = val_preds or predict(model, ds.splits["val"], device, amp=cfg.train.amp)
    loc = tune_parsing_thresholds(ds, preds, cfg, selection_metric(cfg, ds.task))
    return ParsingThresholds.of(loc, TUNED_SOURCE)
