"""`avloc demo`: the full model against its uni-modal and naive-fusion ablations.

Runs on an embedded synthetic dataset: AVE-like event localization (avloc.data.synthetic,
the default) or LLP-like audio-visual video parsing (`--task parsing`,
avloc.data.synthetic_llp). A stand-in that shows the pipeline end to end, not a result on
real data.
"""

from __future__ import annotations

from pathlib import Path

from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic

UNIMODAL = {
    "audio-only": ("audio-only", {"model.modality": "audio", "model.stages": 0}),
    "visual-only": ("visual-only", {"model.modality": "visual", "model.stages": 0}),
}
# folder name (runs/<name>/seed0) -> the table's label, and the variant's settings
DEMO_VARIANTS = {
    "full": ("full (2-stage, open-max)", {}),
    **UNIMODAL,
    "naive-fusion": ("naive fusion (0-stage)", {"model.stages": 0}),
}
PARSING_VARIANTS = {
    "full": ("full (2-stage, parsing head)", {}),
    **UNIMODAL,
    "naive-fusion": ("0-stage (no cross attention)", {"model.stages": 0}),
}
# --task: (preset, variants, default output folder)
TASKS = {"event": ("demo", DEMO_VARIANTS, "runs/demo"),
         "parsing": ("llp_demo", PARSING_VARIANTS, "runs/demo-parsing")}


def run_demo(out: Path | None, overrides: list[str], task: str = "event") -> dict[str, dict]:
    """Train each variant once on the task's synthetic data; print and save the test table.

    The variants are a one-seed grid run by avloc.report's runner: settings checked
    before anything trains, finished runs kept, an interrupted one resumed.
    """
    preset, variants, default_out = TASKS[task]
    out = Path(out or default_out)
    from avloc.report.grid import check_data, check_run_folders, parse_grid, plan_runs
    from avloc.report.runner import Interrupted, run_grid
    from avloc.runs.layout import read_metrics

    grid = parse_grid({"base": preset, "seeds": [0], "variants": [
        {"name": name, "settings": settings} for name, (_, settings) in variants.items()
    ]}, "avloc demo", "demo", Path.cwd())
    specs = plan_runs(grid, out, overrides=overrides)
    datasets = check_data(grid, specs, None)
    check_run_folders(specs)
    print(f"training {len(specs)} models; per-epoch logs in {out}/runs/<variant>/seed0/train.log")
    try:
        ran = run_grid(specs, None, datasets, report=_print_run)
    except Interrupted:
        raise AvlocError("demo interrupted; run it again to continue") from None
    failed = [r for r in ran if r.status not in ("trained", "finished")]
    if failed:
        raise AvlocError(f"demo run {failed[0].key} did not finish: {failed[0].message}")
    results = {variants[s.variant][0]: (read_metrics(s.dir) or {})["test"] for s in specs}
    write_json_atomic(out / "demo.json", results)
    print(format_parsing_demo_table(results) if task == "parsing" else format_demo_table(results))
    return results


def _print_run(r) -> None:
    if r.status != "started":
        print(f"  {r.key}: {r.status} ({r.seconds:.0f} s)", flush=True)


def format_demo_table(results: dict[str, dict]) -> str:
    lines = [
        "Synthetic AVE-like data (a generated stand-in, not real data); test split",
        f"{'variant':<28} {'snippet acc.':>12} {'oracle':>8}",
    ]
    for name, m in results.items():
        acc, oracle = 100 * m["accuracy"], 100 * m["oracle_accuracy"]
        lines.append(f"{name:<28} {acc:>11.1f}% {oracle:>7.1f}%")
    lines.append("oracle: every snippet labelled with its video's true class, background never "
                 "found; the same on every row (one test split). It knows the class but not "
                 "where the event is, so a model above it also localizes.")
    return "\n".join(lines)


def format_parsing_demo_table(results: dict[str, dict]) -> str:
    """Test F-scores (%) of each variant at both levels, and the modality-specific finds."""
    lines = [
        "Synthetic LLP-like data (a generated stand-in, not real data); test split, F-scores (%)",
        f"{'variant':<30} {'level':<8} {'audio':>6} {'visual':>6} {'AV':>6} {'Type@AV':>8} "
        f"{'Event@AV':>8}   heard-only / seen-only found",
    ]
    for name, m in results.items():
        ms = m.get("modality_specific") or {}
        found = " / ".join("n/a" if ms.get(k) is None else f"{100 * ms[k]:.0f}%"
                           for k in ("heard_only", "seen_only"))
        for level, short in (("segment_level", "segment"), ("event_level", "event")):
            f = m[level]
            lines.append(f"{name if short == 'segment' else '':<30} {short:<8} "
                         + " ".join(f"{100 * f[k]:>6.1f}" for k in ("audio", "visual",
                                                                    "audio_visual"))
                         + f" {100 * f['type_av']:>8.1f} {100 * f['event_av']:>8.1f}"
                         + (f"   {found}" if short == "segment" else ""))
    return "\n".join(lines)
