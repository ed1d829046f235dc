"""Gather finished runs into mean ± std tables: report.json and report.md.

Numbers are the test split of each run, scored once with the weights of its best
validation epoch (avloc.train). A cell is the mean over seeds ± the sample standard
deviation (n - 1), in percent; with one seed there is no spread to show. The layout
follows the paper: Table 1 has the variants as columns, Tables 2 and 5 as rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avloc.config import parse_tiou
from avloc.report.grid import Grid, RunSpec, varying_settings
from avloc.report.paper import DATASETS, PAPER_TABLES, paper_numbers, table4_numbers
from avloc.runs.layout import read_metrics
from avloc.scoring.metrics import TIOU_KEYS, range_averages, tiou_keys
from avloc.util.io import write_json_atomic, write_text_atomic

EVENT_COLUMNS = [("accuracy", "Accuracy (%)")]
# LLP parsing: the official code's five numbers at each level (F-scores, %)
PARSING_COLUMNS = [(f"{level}.{key}", f"{short} {label}")
                   for level, short in (("segment_level", "Seg."), ("event_level", "Event"))
                   for key, label in (("audio", "A"), ("visual", "V"), ("audio_visual", "AV"),
                                      ("type_av", "Type@AV"), ("event_av", "Event@AV"))]
ANET_COLUMNS = [("0.50", "mAP@0.5"), ("0.60", "mAP@0.6"), ("0.70", "mAP@0.7"),
                ("0.80", "mAP@0.8"), ("average_mAP", "Avg. 0.5:0.95")]
# the headline metrics in words
METRIC_LABELS = {"accuracy": "snippet accuracy", "average_mAP": "average mAP",
                 "segment_level.type_av": "segment-level Type@AV"}
RANGE = "avg "  # key prefix of a paper range's average mAP, e.g. "avg 0.10:0.50"


def metric_columns(task: str, tiou: list[str]) -> list[tuple[str, str]]:
    """(key, label) of the headline table: the paper's columns on ActivityNet thresholds;
    otherwise (THUMOS'14) mAP at 0.3, 0.5, 0.7 and the paper ranges' averages."""
    if task == "event":
        return EVENT_COLUMNS
    if task == "parsing":
        return PARSING_COLUMNS
    if tiou == list(TIOU_KEYS):
        return ANET_COLUMNS

    whole = f"{tiou[0]}:{tiou[-1]}"
    ranges = [r for r in range_averages(dict.fromkeys(tiou, 0.0)) if r != whole]
    return ([(t, f"mAP@{float(t):g}") for t in tiou if t in ("0.30", "0.50", "0.70")]
            + [(RANGE + r, f"Avg. {r}") for r in ranges] + [("average_mAP", f"Avg. {whole}")])


def runs_tiou_keys(specs: list[RunSpec]) -> list[str]:
    """The thresholds the runs are scored at (their eval.tiou), as metrics keys."""
    return tiou_keys(parse_tiou(specs[0].cfg.eval.tiou)) if specs else list(TIOU_KEYS)


def headline(task: str) -> str:
    from avloc.scoring.evaluate import AUTO_METRIC

    return AUTO_METRIC[task]


def metric_value(test: dict[str, Any], key: str) -> float | None:
    """One number of a test-metrics dict, as a fraction: accuracy, average_mAP, mAP@key,
    a range's average ("avg 0.10:0.50") or a parsing F-score ("segment_level.type_av")."""
    if key in ("accuracy", "average_mAP"):
        value = test.get(key)
    elif key.startswith(("segment_level.", "event_level.")):
        level, name = key.split(".")
        value = (test.get(level) or {}).get(name)
    elif key.startswith(RANGE):
        value = test.get("average_mAP_ranges", {}).get(key[len(RANGE):])
    else:
        value = test.get("mAP", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Summary:
    mean: float  # percent
    std: float | None  # percent; None with one seed
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def summarize(values: list[float]) -> Summary | None:
    """Mean ± sample std (n - 1) of fractions, in percent."""
    if not values:
        return None
    pct = [100 * v for v in values]
    mean = sum(pct) / len(pct)
    std = (math.sqrt(sum((v - mean) ** 2 for v in pct) / (len(pct) - 1))
           if len(pct) > 1 else None)
    return Summary(mean, std, len(pct))


def run_record(spec: RunSpec) -> dict[str, Any] | None:
    """What the report keeps of one finished run (None when it is not finished)."""
    metrics = read_metrics(spec.dir)
    if not metrics or "test" not in metrics:
        return None
    history = metrics.get("history", [])
    name = metrics.get("select_metric", "")
    best = metrics.get("best_epoch")
    val = next((r.get(f"val_{name}") for r in history if r.get("epoch") == best), None)
    return {
        "seed": spec.seed, "dir": str(spec.dir), "test": metrics["test"],
        "select_metric": name, "val": val, "best_epoch": best, "epochs": len(history),
        "train_seconds": round(sum(r.get("seconds", 0.0) for r in history), 1),
    }


def build_report(
    grid: Grid, specs: list[RunSpec], dataset: dict[str, Any], figures: list[dict[str, str]],
) -> dict[str, Any]:
    """The report as JSON-ready data: per variant its runs, summaries, deltas, paper rows."""
    task, fmt = dataset["task"], dataset["format"]
    tiou = runs_tiou_keys(specs)
    columns = metric_columns(task, tiou)
    keys = [k for k, _ in columns] + (tiou if task == "action" else [])
    main = headline(task)
    variants, missing = [], []
    for v in grid.variants:
        mine = [s for s in specs if s.variant == v.name]
        if not mine:
            continue
        runs = []
        for s in mine:
            record = run_record(s)
            (runs.append(record) if record else missing.append(s.key))
        summary = {}
        for key in dict.fromkeys(keys):
            values = [x for r in runs if (x := metric_value(r["test"], key)) is not None]
            if (stat := summarize(values)) is not None:
                summary[key] = stat.to_dict()
        variants.append({
            "name": v.name, "group": v.group, "settings": v.settings,
            "resolved": {k: _resolved(mine[0], k) for k in varying_settings(grid)},
            "runs": runs, "summary": summary,
            "paper": paper_numbers(grid.paper, v.paper, fmt) if grid.paper else None,
            "paper_table4": (table4_numbers(v.paper)
                             if fmt == "anet12" and tiou == list(TIOU_KEYS) else None),
        })
    ref = next((v for v in variants if v["name"] == grid.reference), None)
    for v in variants:
        mine, theirs = v["summary"].get(main), (ref or {}).get("summary", {}).get(main)
        v["delta"] = (mine["mean"] - theirs["mean"]) if mine and theirs else None
    return {
        "title": grid.title, "description": grid.description, "grid": grid.name,
        "source": grid.source, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "dataset": dataset, "seeds": sorted({s.seed for s in specs}),
        "metric": {"headline": main, "columns": columns, "tiou": tiou},
        "reference": grid.reference, "layout": grid.layout,
        "paper_caption": (PAPER_TABLES[grid.paper]["caption"]
                          if grid.paper and fmt in DATASETS else None),
        "variants": variants, "missing": missing, "figures": figures,
    }


def _resolved(spec: RunSpec, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(spec.cfg, section), name)


# ---- markdown ----------------------------------------------------------------------------
def _cell(stat: dict[str, Any] | None, seeds: int, best: bool) -> str:
    if not stat:
        return "–"
    text = f"{stat['mean']:.1f}" + (f" ± {stat['std']:.1f}" if stat["std"] is not None else "")
    text = f"**{text}**" if best else text
    return text + (f" (n={stat['n']})" if stat["n"] < seeds else "")


def _best(variants: list[dict[str, Any]], key: str) -> float | None:
    means = [v["summary"][key]["mean"] for v in variants if key in v["summary"]]
    return max(means) if len(means) > 1 else None


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main_table(report: dict[str, Any]) -> str:
    """The paper-style table: variants as rows (Tables 2, 5) or as columns (Table 1)."""
    variants, seeds = report["variants"], len(report["seeds"])
    columns = [tuple(c) for c in report["metric"]["columns"]]
    main = report["metric"]["headline"]
    best = {key: _best(variants, key) for key, _ in columns}

    def cell(v: dict[str, Any], key: str) -> str:
        stat = v["summary"].get(key)
        return _cell(stat, seeds, stat is not None and stat["mean"] == best[key])

    def delta(v: dict[str, Any]) -> str:
        if v["name"] == report["reference"]:
            return "ref."
        return f"{round(v['delta'], 1) + 0.0:+.1f}" if v["delta"] is not None else "–"

    def paper(v: dict[str, Any], key: str) -> str:
        return f"*{v['paper'][key]:.1f}*" if v["paper"] and key in v["paper"] else ""

    groups = any(v["group"] for v in variants)
    has_paper = any(v["paper"] for v in variants)
    settings = list(variants[0]["resolved"]) if variants else []
    delta_head = f"Δ {dict(columns).get(main, main)} vs {report['reference']}"
    if report["layout"] == "columns":  # Table 1: a column per variant, a row per number
        rows = [["Group"] + [v["group"] for v in variants]] if groups else []
        rows += [[k] + [str(v["resolved"][k]) for v in variants] for k in settings]
        for key, label in columns:
            rows.append([label] + [cell(v, key) for v in variants])
            if has_paper:
                rows.append([f"↳ *paper* {label}"] + [paper(v, key) for v in variants])
        if report["reference"]:
            rows.append([delta_head] + [delta(v) for v in variants])
        return _table(["Variant"] + [v["name"] for v in variants], rows)

    head = ["Variant"] + (["Group"] if groups else []) + settings + [lab for _, lab in columns]
    head += [delta_head] if report["reference"] else []
    rows = []
    for v in variants:
        row = [v["name"]] + ([v["group"]] if groups else [])
        row += [str(v["resolved"][k]) for k in settings] + [cell(v, k) for k, _ in columns]
        rows.append(row + ([delta(v)] if report["reference"] else []))
        if v["paper"]:
            prow = [f"↳ *paper* {v['name']}"] + [""] * (len(settings) + groups)
            prow += [paper(v, k) for k, _ in columns]
            rows.append(prow + ([""] if report["reference"] else []))
    return _table(head, rows)


def all_thresholds_table(report: dict[str, Any]) -> str:
    """Action data: mAP at every tIoU like the paper's Table 4."""
    tiou = report["metric"].get("tiou", list(TIOU_KEYS))
    head = ["Variant"] + tiou + ["Avg."]
    rows = []
    for v in report["variants"]:
        s = v["summary"]
        rows.append([v["name"]] + [f"{s[k]['mean']:.1f}" if k in s else "–"
                                   for k in tiou + ["average_mAP"]])
        if v.get("paper_table4"):
            p = v["paper_table4"]
            rows.append([f"↳ *paper* (Table 4) {v['name']}"]
                        + [f"*{p[k]:.1f}*" for k in [*TIOU_KEYS, "average_mAP"]])
    return _table(head, rows)


def runs_table(report: dict[str, Any]) -> str:
    columns = [tuple(c) for c in report["metric"]["columns"]]
    head = (["Variant", "Seed"] + [lab for _, lab in columns]
            + ["Val. (best epoch)", "Epochs", "Train time (s)"])
    rows = []
    for v in report["variants"]:
        for r in v["runs"]:
            vals = [metric_value(r["test"], k) for k, _ in columns]
            val = f"{100 * r['val']:.1f} (ep. {r['best_epoch']})" if r["val"] is not None else "–"
            rows.append([v["name"], str(r["seed"])]
                        + [f"{100 * x:.1f}" if x is not None else "–" for x in vals]
                        + [val, str(r["epochs"]), f"{r['train_seconds']:.0f}"])
    return _table(head, rows)


def render_markdown(report: dict[str, Any]) -> str:
    ds = report["dataset"]
    seeds = report["seeds"]
    n_runs = len(seeds) * len(report["variants"])
    done = n_runs - len(report["missing"])
    metric = METRIC_LABELS.get(report["metric"]["headline"], report["metric"]["headline"])
    lines = [f"# {report['title']}", ""]
    if report["description"]:
        lines += [report["description"], ""]
    lines += [
        f"- **Data**: {ds['label']} (`data.format={ds['format']}`, {ds['task']} localization); "
        f"test split {ds['videos'].get('test', 0)} videos, validation "
        f"{ds['videos'].get('val', 0)}, training {ds['videos'].get('train', 0)}.",
        f"- **Runs**: {len(report['variants'])} variants × {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}); {done} of {n_runs} finished.",
        f"- **Protocol**: each run keeps the epoch with the best validation {metric}; the test "
        "split is scored once per run, with that epoch's weights.",
        "- **Cells**: mean ± sample standard deviation over seeds, in percent; (n=k) marks a "
        "variant with fewer finished seeds; bold is the best mean of a column"
        + (f"; Δ is the difference of means from `{report['reference']}`, in points."
           if report["reference"] else "."),
    ]
    if report["paper_caption"]:
        lines.append(
            f"- **Paper rows**: rows marked ↳ *paper* are the numbers printed in the paper "
            f"({report['paper_caption']}, {ds['label']}), copied for comparison; they were not "
            "produced by these runs (different features, epochs and hardware)."
        )
    lines += ["", "## Results", "", main_table(report), ""]
    if ds["task"] == "action":
        lines += ["## mAP at every tIoU threshold", "", all_thresholds_table(report), ""]
    if report["missing"]:
        lines += ["## Missing runs", "", "Not finished (rerun `avloc reproduce` with the same "
                  "arguments to train them): " + ", ".join(f"`{k}`" for k in report["missing"]),
                  ""]
    lines += ["## Per-seed results", "", runs_table(report), ""]
    if report["figures"]:
        lines += ["## Figures", ""]
        for fig in report["figures"]:
            lines += [f"![{fig['title']}]({fig['path']})", "", f"*{fig['caption']}*", ""]
    lines += ["## Settings", "",
              f"Grid `{report['grid']}` ({report['source']}). Each run's full settings are in "
              "`runs/<variant>/seed<k>/config.yaml`; its epochs in `log.jsonl`, console output "
              "in `train.log`, numbers in `metrics.json`.", ""]
    for v in report["variants"]:
        changed = ", ".join(f"`{k}={val}`" for k, val in v["settings"].items()) or "(base)"
        lines.append(f"- `{v['name']}`: {changed}")
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """report.json and report.md, each written atomically."""
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", render_markdown(report))
    return out / "report.md", out / "report.json"


