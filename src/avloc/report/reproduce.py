"""`avloc reproduce`: a paper table's grid, trained over seeds, summarized with figures.

Order of work, so that a mistake costs seconds and an interruption costs nothing:
1. read the grid and build every run's settings (an unknown or invalid setting stops
   here, naming the variant and the setting);
2. load the data once per distinct data setting and check that every variant can run
   on it (splits, modalities, metric);
3. check that run folders left by an earlier call hold the same experiments;
4. train what is not finished (this shard's share), one process or `jobs` workers;
5. gather every finished run into report.md / report.json and the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avloc.report.curves import curves_figure
from avloc.report.figures import attention_figure, cas_figure, pick_video
from avloc.report.grid import (
    Grid,
    RunSpec,
    check_data,
    check_run_folders,
    data_key,
    describe_grid,
    load_grid,
    plan_runs,
)
from avloc.report.loaded import load_run
from avloc.report.paper import DATASETS
from avloc.report.parsing_figures import parsing_figure, pick_parsing_video
from avloc.report.runner import Interrupted, RunResult, run_grid
from avloc.report.tables import (
    METRIC_LABELS,
    build_report,
    headline,
    main_table,
    metric_value,
    write_report,
)
from avloc.runs.layout import run_state
from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic
from avloc.util.sharding import parse_shard, select_shard


def reproduce(
    grid: str = "table1", out: str | Path | None = None, config: str | None = None,
    data: str | None = None, overrides: list[str] | None = None, seeds: int | None = None,
    jobs: int = 1, shard: str | None = None, report_only: bool = False, figures: bool = True,
) -> Path | None:
    """Run (or continue) a grid and write its report; returns report.md's path.

    With `shard` ("I/N", counted from 1: avloc.util.sharding) only that share of the runs is
    trained and no report is written;
    `report_only` writes the report from whatever runs have finished. `out` defaults to
    runs/<grid name>.
    """
    g = load_grid(grid)
    out = Path(out) if out else Path("runs") / g.name
    if jobs < 1:
        raise AvlocError(f"--jobs {jobs}: must be at least 1")
    part = parse_shard(shard)
    specs = plan_runs(g, out, config, overrides, seeds)
    datasets = check_data(g, specs, data)
    check_run_folders(specs)
    failed: list[RunResult] = []
    if not report_only:
        failed = _train(g, specs, select_shard(specs, part), data, datasets, jobs, out, shard)
        if shard is not None:
            _fail_on(failed)
            print(f"shard {shard} done. When every shard has finished, write the report with "
                  "the same command, --report-only instead of --shard.")
            return None
    path = make_report(g, specs, datasets[data_key(specs[0].cfg)], out, data, figures)
    _fail_on(failed)
    return path


def _train(g: Grid, specs: list[RunSpec], mine: list[RunSpec], data: str | None,
           datasets: dict[str, Any], jobs: int, out: Path, shard: str | None) -> list[RunResult]:
    todo = [s for s in mine if run_state(s.dir) != "done"]
    resumed = sum(run_state(s.dir) == "partial" for s in todo)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "grid.json", describe_grid(g, specs))
    where = f"shard {shard}: " if shard else ""
    workers = min(jobs, len(todo))
    print(f"{where}{len(mine)} runs ({len(mine) - len(todo)} finished already, {resumed} to "
          f"resume); {len(todo)} to train"
          + (f" in {workers} worker processes" if workers > 1 else "")
          + f". Logs: {out}/runs/<variant>/seed<k>/train.log", flush=True)
    counter = {"done": len(mine) - len(todo), "total": len(mine)}
    try:
        results = run_grid(todo, data, datasets, jobs, report=lambda r: _print_result(r, counter))
    except Interrupted:
        finished = sum(run_state(s.dir) == "done" for s in mine)
        raise AvlocError(
            f"interrupted: {finished} of {len(mine)} runs finished; run the same command again "
            "to continue (finished runs are kept, interrupted ones resume from their last "
            "checkpoint)"
        ) from None
    return [r for r in results if r.status in ("failed", "busy")]


def _print_result(r: RunResult, counter: dict[str, int]) -> None:
    if r.status == "started":
        print(f"  {r.key}: training", flush=True)
        return
    if r.status in ("trained", "finished"):
        counter["done"] += 1
    head = f"[{counter['done']}/{counter['total']}] {r.key}:"
    if r.status == "busy":
        print(f"{head} skipped, another process is training it", flush=True)
    elif r.status == "failed":
        print(f"{head} FAILED: {r.message}", flush=True)
    else:
        test = (r.metrics or {}).get("test", {})
        key = next((k for k in ("accuracy", "average_mAP") if k in test),
                   "segment_level.type_av")
        value = metric_value(test, key)
        label = METRIC_LABELS.get(key, key)
        shown = f"test {label} {100 * value:.1f}%" if value is not None else ""
        epoch = (r.metrics or {}).get("best_epoch")
        print(f"{head} {shown} (best epoch {epoch}, {r.seconds:.0f} s)", flush=True)


def _fail_on(failed: list[RunResult]) -> None:
    if not failed:
        return
    first = failed[0]
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    raise AvlocError(f"run {first.key} did not finish ({first.message}){more}; see its "
                     "train.log, fix, and run the same command again")


def dataset_info(ds: Any, cfg: Any, data: str | None) -> dict[str, Any]:
    label = DATASETS.get(cfg.data.format) or (
        "synthetic AVE-like data (a generated stand-in, not real data)"
        if cfg.data.format == "synthetic" else ds.name)
    return {"name": ds.name, "label": label, "format": cfg.data.format, "task": ds.task,
            "data": str(data) if data else None, "classes": len(ds.classes),
            "videos": {k: len(v) for k, v in ds.splits.items()}}


def make_report(
    g: Grid, specs: list[RunSpec], ds: Any, out: Path, data: str | None, figures: bool = True,
) -> Path:
    """report.md, report.json and figures/ from every finished run of the grid."""
    out.mkdir(parents=True, exist_ok=True)
    info = dataset_info(ds, specs[0].cfg, data)
    figs = report_figures(g, specs, ds, out) if figures else []
    report = build_report(g, specs, info, figs)
    md, js = write_report(out, report)
    print()
    print(main_table(report))
    print(f"\nwrote {md} and {js}" + (f" ({len(figs)} figures in {out / 'figures'})"
                                      if figs else ""))
    return md


def _first_finished(specs: list[RunSpec], variant: str, seed: int | None = None):
    return next((s for s in specs if s.variant == variant and (seed is None or s.seed == seed)
                 and run_state(s.dir) == "done"), None)


def report_figures(g: Grid, specs: list[RunSpec], ds: Any, out: Path) -> list[dict[str, str]]:
    """Training curves of every variant, and for the reference model (its lowest finished
    seed): the class activation figure beside the comparison model, and its attention."""
    folder = out / "figures"
    made: list[dict[str, str]] = []
    finished = [s for s in specs if run_state(s.dir) == "done"]
    if not finished:
        return made
    groups: dict[str, list[Path]] = {}
    for s in finished:
        groups.setdefault(s.variant, []).append(s.dir)
    curves_figure(groups, folder / "curves.png", f"{g.title}: training curves (mean over "
                    "seeds, band from lowest to highest seed)")
    made.append({"path": "figures/curves.png", "title": "Training curves",
                 "caption": "Losses (unweighted parts of Eq. 10, and the weighted total) and "
                 "the validation metric per epoch; one line per variant, the mean over its "
                 "seeds, the band spans the lowest to the highest seed."})
    ref = _first_finished(specs, g.reference or g.variants[0].name)
    if ref is None:
        return made
    main = load_run(ref.dir)
    comp = _first_finished(specs, g.compare, ref.seed) if g.compare else None
    runs = [main] + ([load_run(comp.dir)] if comp else [])
    if ds.task == "parsing":
        vid = _parsing_figure(ds, runs, folder, made)
    else:
        vid = _cas_figure(ds, runs, folder, made)
    if ref.cfg.model.stages > 0:
        attention_figure(ds, main, vid, folder / "attention.png")
        made.append({
            "path": "figures/attention.png", "title": "Cross attention",
            "caption": f"{main.label} on {vid}: the audio attention A_u of the last "
            "cross-attention stage; row = a visual snippet, columns = the audio snippets it "
            "attends to (dashed: ground-truth boundaries).",
        })
    return made


def _cas_figure(ds: Any, runs: list, folder: Path, made: list[dict[str, str]]) -> str:
    """The class activation figure of the reference model (and the comparison model)."""
    vid = pick_video(ds, runs)
    cas_figure(ds, runs, vid, folder / "cas.png")
    versus = f" relative to {runs[1].label}" if len(runs) > 1 else ""
    made.append({
        "path": "figures/cas.png", "title": "Class activation sequence",
        "caption": f"Test video {vid}, chosen as the one where {runs[0].label} localizes the "
        f"true class best{versus} (temporal IoU), among videos with background around the "
        "event: an illustration, not a typical case. Green: ground "
        "truth; coloured bars: predicted segments; grey strips: probability of the class "
        "per snippet (darker = higher); bottom: μ, the foreground reliability.",
    })
    return vid


def _parsing_figure(ds: Any, runs: list, folder: Path, made: list[dict[str, str]]) -> str:
    """Parsing data: the audio and visual event tracks of the reference (and comparison)."""
    vid = pick_parsing_video(ds, runs)
    parsing_figure(ds, runs, vid, folder / "events.png")
    made.append({
        "path": "figures/events.png", "title": "Audio and visual events",
        "caption": f"Test video {vid}, chosen as the one with an event in one modality only "
        f"where {runs[0].label} scores best (segment-level Type@AV): an illustration, not a "
        "typical case. Per modality, a row per class: green the ground truth, coloured bars "
        "each model's events (thresholds from its settings).",
    })
    return vid


__all__ = ["reproduce", "make_report", "headline"]
