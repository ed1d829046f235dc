"""`avloc demo`: the full model against its uni-modal and naive-fusion ablations.

Runs on the embedded synthetic dataset (see avloc.data.synthetic): a stand-in that
shows the pipeline end to end, not a result on real data.
"""

from __future__ import annotations

from pathlib import Path

from avloc.config import load_config
from avloc.io import write_json_atomic
from avloc.train import train

DEMO_VARIANTS = {
    "full (2-stage, open-max)": [],
    "audio-only": ["model.modality=audio", "model.stages=0"],
    "visual-only": ["model.modality=visual", "model.stages=0"],
    "naive fusion (0-stage)": ["model.stages=0"],
}


def run_demo(out: Path, overrides: list[str]) -> dict[str, dict]:
    """Train each variant once on the synthetic data; print and save the test table."""
    from avloc.data import load_dataset

    base = load_config("demo", overrides)
    ds = load_dataset(base.data, None)
    results = {}
    for name, extra in DEMO_VARIANTS.items():
        cfg = load_config("demo", extra + overrides)
        run_dir = out / name.split(" ")[0]
        metrics = (
            _read_metrics(run_dir) if (run_dir / "metrics.json").exists()
            else train(cfg, None, run_dir, dataset=ds)
        )
        results[name] = metrics["test"]
    write_json_atomic(out / "demo.json", results)
    print(format_demo_table(results))
    return results


def _read_metrics(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "metrics.json").read_text())


def format_demo_table(results: dict[str, dict]) -> str:
    lines = [
        "Synthetic AVE-like data (a generated stand-in, not real data); test split",
        f"{'variant':<28} {'snippet acc.':>12} {'oracle':>8}",
    ]
    for name, m in results.items():
        acc, oracle = 100 * m["accuracy"], 100 * m["oracle_accuracy"]
        lines.append(f"{name:<28} {acc:>11.1f}% {oracle:>7.1f}%")
    return "\n".join(lines)
