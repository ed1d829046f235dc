"""What avloc prints of its numbers: `avloc eval`'s tables, `avloc score`'s, the summary
that ends `avloc train`. Values are fractions; these print them in percent."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avloc.scoring.anet_json import TOLERANCE_S
from avloc.scoring.metrics.parsing import LABELS, LEVELS, OFFICIAL_THRESHOLD, SUMMARIES
from avloc.scoring.thresholds import ParsingThresholds
from avloc.util.errors import plural


def format_parsing_table(metrics: dict[str, Any]) -> str:
    """The five numbers at both levels, in percent, as the official code prints them."""
    head = f"{'':<14}" + "".join(f"{LABELS[k]:>14}" for k in SUMMARIES)
    rows = [head]
    for level in LEVELS:
        name = level.replace("_", "-")
        rows.append(f"{name:<14}" + "".join(f"{100 * metrics[level][k]:>14.1f}"
                                            for k in SUMMARIES))
    return "\n".join(rows)


def format_map_table(metrics: Mapping[str, Any]) -> str:
    """mAP at each tIoU and their average, in percent, as a two-line table, then the
    paper ranges' averages when there is more than the whole range."""
    keys = list(metrics["mAP"])
    head = "tIoU     " + " ".join(f"{k:>6}" for k in keys) + " |    avg"
    row = "mAP (%)  " + " ".join(f"{100 * metrics['mAP'][k]:6.2f}" for k in keys)
    lines = [head, f"{row} | {100 * metrics['average_mAP']:6.2f}"]
    ranges = {k: v for k, v in metrics.get("average_mAP_ranges", {}).items()
              if k != f"{keys[0]}:{keys[-1]}"}
    if ranges:
        lines.append("avg mAP (%) " + ", ".join(f"{k} {100 * v:.2f}" for k, v in ranges.items()))
    return "\n".join(lines)


def format_scope(metrics: Mapping[str, Any]) -> str:
    """What was scored, in one or two lines: subset, videos, instances, and the detections
    that count as false positives because they lie outside the subset."""
    subset = metrics.get("subset")
    what = f"subset {subset!r}" if subset is not None else "every video"
    lines = [f"scored {what}: {plural(metrics['videos'], 'video')}, "
             f"{plural(metrics['instances'], 'instance')}, "
             f"{metrics['detections']} detections (ties: {metrics['ties']})"]
    out = metrics.get("detections_outside_subset", 0)
    if out:
        other = metrics.get("detections_on_other_subsets", 0)
        lines.append(f"{out} detections on videos outside the scored videos ({other} on "
                     f"other subsets, {out - other} on ids not in the ground truth) count as "
                     "false positives, as in the official evaluator")
    if metrics.get("detections_dropped"):
        lines.append(f"{metrics['detections_dropped']} detections of classes without an "
                     "instance in the scored videos were left out")
    for what in ("instances", "detections"):
        if metrics.get(f"{what}_beyond_duration"):
            lines.append(f"note: {metrics[f'{what}_beyond_duration']} {what} reach more than "
                         f"{TOLERANCE_S:g} s outside their video (scored as they are, as in the "
                         "official evaluator)")
    return "\n".join(lines)


def format_parsing_report(metrics: dict[str, Any], split: str) -> str:
    """What `avloc eval` prints for parsing data: the F-scores at both levels, in percent, at
    the LLP protocol's thresholds; then, labelled, at the tuned ones when there are any."""
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
    note = missing_classes_note(metrics, split)
    return "\n".join([format_scope(metrics), format_map_table(metrics)] + ([note] if note else []))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
