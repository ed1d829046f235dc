"""`avloc demo`: the full model against its uni-modal and naive-fusion ablations.

Runs on the embedded synthetic dataset (see avloc.data.synthetic): a stand-in that
shows the pipeline end to end, not a result on real data.
"""

from __future__ import annotations

from pathlib import Path

from avloc.errors import AvlocError
from avloc.io import write_json_atomic

# folder name (runs/<name>/seed0) -> the table's label, and the variant's settings
DEMO_VARIANTS = {
    "full": ("full (2-stage, open-max)", {}),
    "audio-only": ("audio-only", {"model.modality": "audio", "model.stages": 0}),
    "visual-only": ("visual-only", {"model.modality": "visual", "model.stages": 0}),
    "naive-fusion": ("naive fusion (0-stage)", {"model.stages": 0}),
}


def run_demo(out: Path, overrides: list[str]) -> dict[str, dict]:
    """Train each variant once on the synthetic data; print and save the test table.

    The variants are a one-seed grid run by avloc.report's runner: settings checked
    before anything trains, finished runs kept, an interrupted one resumed.
    """
    from avloc.report.grid import check_data, check_run_folders, parse_grid, plan_runs
    from avloc.report.runner import Interrupted, read_metrics, run_grid

    grid = parse_grid({"base": "demo", "seeds": [0], "variants": [
        {"name": name, "settings": settings} for name, (_, settings) in DEMO_VARIANTS.items()
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
    results = {DEMO_VARIANTS[s.variant][0]: (read_metrics(s.dir) or {})["test"] for s in specs}
    write_json_atomic(out / "demo.json", results)
    print(format_demo_table(results))
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
    return "\n".join(lines)
