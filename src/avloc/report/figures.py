"""Figures: class activation sequences (the paper's Fig. 2-4), training curves, attention.

Drawn with matplotlib's object API on the Agg canvas (no display, no global pyplot
state), saved as PNG (or PDF/SVG by the file's extension). Time axes are in seconds.

- `cas_figure`: for one video and one target class, the ground-truth segments, each
  model's predicted segments and its activation of the class over time as a grey strip
  (darker = higher, as in the paper's Fig. 4), then mu (foreground reliability).
- `curves_figure`: losses and the validation metric per epoch, one line per variant
  (mean over seeds, band from the lowest to the highest seed).
- `attention_figure`: the L x L audio attention A_u of the last cross-attention stage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data.base import Timing, snippets_in_any
from avloc.errors import AvlocError

GT_COLOR = "#2ca02c"  # green, as in the paper's Fig. 4
MODEL_COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]  # blue (proposed), orange, ...
FORMATS = (".png", ".pdf", ".svg")
LOSS_TITLES = {
    "loss_loss": "total loss L (Eq. 10)",
    "loss_mil": "L_mil (multiple instance)",
    "loss_cas": "L_cas (co-activity similarity)",
    "loss_cont": "L_cont (foreground continuity)",
    "loss_pseu": "L_pseu (pseudo localization)",
}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise AvlocError(f"--out {out}: a figure file ends in {', '.join(FORMATS)}")
    return out


def save(fig, out: str | Path) -> Path:
    out = check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    return out


# ---- runs, data and predictions ----------------------------------------------------------
@dataclass
class LoadedRun:
    label: str
    model: Any  # AVLocModel in eval mode
    cfg: Any  # Config
    ckpt: dict[str, Any]


def run_label(run_dir: Path) -> str:
    """runs/<variant>/seed<k> -> '<variant> (seed k)'; any other folder: its name."""
    run_dir = Path(run_dir)
    if run_dir.name.startswith("seed") and run_dir.name[4:].isdigit():
        return f"{run_dir.parent.name} (seed {run_dir.name[4:]})"
    return run_dir.name


def load_run(run_dir: str | Path) -> LoadedRun:
    """A run's model, with its tuned post-processing (RUN/localize.yaml) when it has one,
    so the predicted segments drawn are those `avloc eval` scores."""
    from avloc.tune import load_tuned_model

    m = load_tuned_model(run_dir)
    return LoadedRun(run_label(Path(run_dir)), m.model, m.cfg, m.ckpt)


def load_data(run: LoadedRun, data_root: str | Path | None, others: Sequence[LoadedRun] = ()):
    """The dataset the run was trained on (its stored data settings), checked against it."""
    from avloc.checkpoint import check_compatible
    from avloc.data import load_dataset

    ds = load_dataset(run.cfg.data, data_root)
    for r in (run, *others):
        check_compatible(ds, r.ckpt, r.label)
    return ds


def find_video(ds, vid: str) -> tuple[Any, str]:
    for split, videos in ds.splits.items():
        for v in videos:
            if v.vid == vid:
                return v, split
    some = ", ".join(v.vid for v in ds.splits.get("test", [])[:3])
    raise AvlocError(f"video {vid!r}: not in the data (test videos are named like {some})")


def predict_one(run: LoadedRun, video) -> Any:
    from avloc.predict import predict

    return predict(run.model, [video])[0]


def target_class(ds, vid: str, p: np.ndarray) -> int:
    """The video's ground-truth class with the most annotated time (0-based action index);
    for a background-only video, the class the model scores highest."""
    ann = ds.annotations.get(vid)
    if ann is not None and ann.segments:
        time_per = {}
        for s in ann.segments:
            time_per[s.label] = time_per.get(s.label, 0.0) + max(s.end - s.start, 0.0)
        return ds.classes.index(max(time_per, key=time_per.get))
    return int(p[:, 1:].max(axis=0).argmax())


def _runs_of(mask: np.ndarray, timing: Timing) -> list[tuple[float, float]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return [(float(timing.at(s)), float(timing.at(e))) for s, e in zip(starts, ends, strict=True)]


def predicted_segments(ds, cfg, pred, target: int) -> list[tuple[float, float]]:
    """Event data: runs of snippets whose argmax is the class; action data: the W-TALC
    segments of the class (avloc.segments.segments_from_cas), as the evaluation makes them."""
    if ds.task == "event":
        return _runs_of(pred.p.argmax(axis=1) == target + 1, ds.timing(pred.vid))
    from avloc.segments import segments_from_cas

    ann = ds.annotations.get(pred.vid)
    segs = segments_from_cas(pred.cas, pred.video_scores(cfg.loss.topk_divisor),
                             ds.timing(pred.vid), ds.classes, cfg.localize,
                             duration=ann.duration if ann else None)
    return [tuple(s["segment"]) for s in segs if s["label"] == ds.classes[target]]


def truth_segments(ds, vid: str, target: int) -> list[tuple[float, float]]:
    ann = ds.annotations.get(vid)
    name = ds.classes[target]
    return [(s.start, s.end) for s in (ann.segments if ann else []) if s.label == name]


def pick_video(ds, runs: Sequence[LoadedRun], split: str = "test") -> str:
    """The video of `split` where the first model's segments of the true class overlap the
    truth best (temporal IoU), counting also its gain over the second model when there is
    one: the kind of example the paper's figures show, chosen, not typical. Videos whose
    event covers only part of them come first."""
    from avloc.predict import predict

    videos = [v for v in ds.splits.get(split, []) if truth_segments_any(ds, v.vid)]
    if not videos:
        every = [v.vid for name in ("val", "train") for v in ds.splits.get(name, [])]
        shown = sorted(every, key=lambda vid: not truth_segments_any(ds, vid))  # stable
        example = f" (e.g. --video {shown[0]})" if shown else ""
        raise AvlocError(f"the data has no {split} video with annotated segments to pick from; "
                         f"name the video to show with --video VID{example}")
    preds = [predict(r.model, videos) for r in runs]
    best, best_score = videos[0].vid, -math.inf
    for i, v in enumerate(videos):
        target = target_class(ds, v.vid, preds[0][i].p)
        truth = snippets_in_any(truth_segments(ds, v.vid, target), v.length, ds.timing(v.vid))
        # prefer videos with background too: boundaries are what localization is about
        partial = 0.0 < truth.mean() < 1.0
        ious = []
        for r, p in zip(runs, preds, strict=True):
            segments = predicted_segments(ds, r.cfg, p[i], target)
            mask = snippets_in_any(segments, v.length, ds.timing(v.vid))
            ious.append((mask & truth).sum() / max((mask | truth).sum(), 1))
        # how well the first model does, plus how much better than the second
        score = 2 * ious[0] - (ious[1] if len(ious) > 1 else ious[0]) + (3.0 if partial else 0.0)
        if score > best_score:
            best, best_score = v.vid, score
    return best


def truth_segments_any(ds, vid: str) -> bool:
    ann = ds.annotations.get(vid)
    return bool(ann and ann.segments)


# ---- class activation sequences ----------------------------------------------------------
def _strip_axis(ax, label: str, duration: float) -> None:
    ax.set_xlim(0, duration)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    ax.tick_params(axis="x", labelbottom=False)


def cas_figure(ds, runs: Sequence[LoadedRun], vid: str, out: str | Path) -> Path:
    """GT, then per model its predicted segments and its activation strip, then mu."""
    video, split = find_video(ds, vid)
    preds = [predict_one(r, video) for r in runs]
    target = target_class(ds, vid, preds[0].p)
    timing, length = ds.timing(vid), video.length
    duration = float(timing.at(length))
    truth = truth_segments(ds, vid, target)

    from matplotlib.patches import Patch

    n = len(runs)
    fig = _figure(10, 1.3 + 1.1 * n + 1.8)
    grid = fig.add_gridspec(2 + 2 * n, 2, width_ratios=[60, 1],
                            height_ratios=[0.5] + [0.5, 0.5] * n + [2.0], hspace=0.25)
    ax_gt = fig.add_subplot(grid[0, 0])
    for s, e in truth:
        ax_gt.axvspan(s, e, color=GT_COLOR, alpha=0.85)
    _strip_axis(ax_gt, "ground truth", duration)
    name = ds.classes[target]
    ax_gt.set_title(f"{vid} ({split} split): class activation of '{name}'", fontsize=11)
    strips = []
    for i, (run, pred) in enumerate(zip(runs, preds, strict=True)):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        ax_p = fig.add_subplot(grid[1 + 2 * i, 0], sharex=ax_gt)
        segs = predicted_segments(ds, run.cfg, pred, target)
        for s, e in segs:
            ax_p.axvspan(s, e, color=color, alpha=0.85)
        if not segs:
            ax_p.text(duration / 2, 0.5, "no segment predicted", ha="center", va="center",
                      fontsize=8, color="0.4")
        _strip_axis(ax_p, f"{run.label}\nprediction", duration)
        ax_c = fig.add_subplot(grid[2 + 2 * i, 0], sharex=ax_gt)
        act = pred.p[:, target + 1]  # (T,) p of the class: mu * softmax(h) for open-max
        im = ax_c.imshow(act[None, :], aspect="auto", cmap="Greys", vmin=0, vmax=1,
                         extent=(float(timing.at(0)), duration, 0, 1), interpolation="nearest")
        _strip_axis(ax_c, f"{run.label}\nactivation", duration)
        strips.append(im)
    cax = fig.add_subplot(grid[1:1 + 2 * n, 1])
    bar = fig.colorbar(strips[0], cax=cax)
    bar.set_label("p(class)", fontsize=8)
    bar.ax.tick_params(labelsize=7)

    ax_mu = fig.add_subplot(grid[-1, 0], sharex=ax_gt)
    for s, e in truth:
        ax_mu.axvspan(s, e, color=GT_COLOR, alpha=0.12, lw=0)
    centers = timing.at(np.arange(length) + 0.5)
    for i, (run, pred) in enumerate(zip(runs, preds, strict=True)):
        ax_mu.plot(centers, pred.mu, color=MODEL_COLORS[i % len(MODEL_COLORS)], marker=".",
                   drawstyle="steps-mid", label=run.label)
    ax_mu.set_xlim(0, duration)
    ax_mu.set_ylim(-0.02, 1.02)
    ax_mu.set_ylabel("μ (foreground\nreliability)", fontsize=9)
    ax_mu.set_xlabel("time (s)")
    ax_mu.grid(alpha=0.3)
    handles = [Patch(color=GT_COLOR, alpha=0.85, label=f"ground truth: {name}")]
    handles += ax_mu.get_legend_handles_labels()[0]
    ax_mu.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    fig.add_subplot(grid[0, 1]).axis("off")
    fig.add_subplot(grid[-1, 1]).axis("off")
    return save(fig, out)


# ---- attention ---------------------------------------------------------------------------
def attention_matrix(run: LoadedRun, video) -> np.ndarray:
    """(T, T) A_u of the last stage: row l = visual snippet l's weights over audio snippets."""
    import torch

    from avloc.data.batching import collate

    if run.model.fusion is None:
        raise AvlocError(f"{run.label}: has no cross attention (model.stages=0)")
    batch = collate([video])
    with torch.inference_mode():
        out = run.model(batch.audio, batch.visual, batch.mask, return_attention=True)
    return out["attn"][0].float().numpy()  # (T, T)


def attention_figure(ds, run: LoadedRun, vid: str, out: str | Path) -> Path:
    video, split = find_video(ds, vid)
    attn = attention_matrix(run, video)
    pred = predict_one(run, video)
    target = target_class(ds, vid, pred.p)
    timing = ds.timing(vid)
    start, end = float(timing.at(0)), float(timing.at(video.length))
    fig = _figure(6.4, 5.6)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(attn, cmap="viridis", vmin=0, extent=(start, end, end, start),
                   interpolation="nearest")
    for i, (s, e) in enumerate(truth_segments(ds, vid, target)):
        for t in (s, e):
            label = f"ground-truth '{ds.classes[target]}' boundaries" if i == 0 and t == s else None
            ax.axvline(t, color="#d62728", ls="--", lw=1.4, label=label)
            ax.axhline(t, color="#d62728", ls="--", lw=1.4)
    ax.set_xlabel("audio snippet attended to: time (s)")
    ax.set_ylabel("visual snippet (query): time (s)")
    stages = run.cfg.model.stages
    ax.set_title(f"{run.label}: audio attention $A_u$ of stage {stages} of {stages}\n"
                 f"{vid} ({split} split)", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("attention weight (each row sums to 1)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False)
    return save(fig, out)


# ---- training curves ---------------------------------------------------------------------
def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """log.jsonl, one record per epoch (the last line wins if an epoch was replayed)."""
    path = Path(run_dir) / "log.jsonl"
    by_epoch: dict[int, dict[str, Any]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise AvlocError(f"{path}: no training log (is {run_dir} a run folder?)") from None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            by_epoch[record["epoch"]] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def find_runs(paths: Sequence[str | Path]) -> dict[str, list[Path]]:
    """Run folders grouped by variant: a run folder, a variant folder (seed*/) or an
    `avloc reproduce` output folder (runs/<variant>/seed*/)."""
    groups: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if (p / "log.jsonl").is_file():
            name = p.parent.name if p.name.startswith("seed") else p.name
            groups.setdefault(name, []).append(p)
        elif any(p.glob("seed*/log.jsonl")):
            groups.setdefault(p.name, []).extend(sorted(p.glob("seed*")))
        elif any(p.glob("runs/*/seed*/log.jsonl")):
            for run in sorted(p.glob("runs/*/seed*")):
                if (run / "log.jsonl").is_file():
                    groups.setdefault(run.parent.name, []).append(run)
        else:
            raise AvlocError(f"{p}: no training log here (expected a run folder with "
                             "log.jsonl, or an `avloc reproduce` output folder)")
    return groups


def _panels(logs: dict[str, list[list[dict[str, Any]]]]) -> list[str]:
    keys: list[str] = []
    for runs in logs.values():
        for records in runs:
            for r in records:
                keys += [k for k in r if k not in keys and (k in LOSS_TITLES
                                                            or k.startswith("val_"))]
    return [k for k in LOSS_TITLES if k in keys] + [k for k in keys if k.startswith("val_")]


def curves_figure(groups: dict[str, list[Path]], out: str | Path, title: str = "") -> Path:
    from matplotlib.ticker import MaxNLocator

    logs = {name: [read_log(d) for d in dirs] for name, dirs in groups.items()}
    panels = _panels(logs)
    if not panels:
        raise AvlocError("no epochs logged yet in the given runs")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(4.2 * cols, 3.0 * rows + 0.8)
    lines = {}
    for i, key in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        scale = 100.0 if key.startswith("val_") else 1.0
        for j, (name, runs) in enumerate(logs.items()):
            epochs = sorted({r["epoch"] for rec in runs for r in rec if key in r})
            if not epochs:
                continue
            values = [[r[key] * scale for rec in runs for r in rec
                       if r["epoch"] == e and key in r] for e in epochs]
            mean = [float(np.mean(v)) for v in values]
            color = f"C{j % 10}"
            (line,) = ax.plot(epochs, mean, color=color, lw=1.5, label=name)
            if max(len(v) for v in values) > 1:
                ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values],
                                color=color, alpha=0.15, lw=0)
            lines[name] = line
        metric = key[4:].replace("_", " ")
        ax.set_title(f"validation {metric} (%)" if key.startswith("val_")
                     else LOSS_TITLES[key] + ("" if key == "loss_loss" else ", unweighted"),
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{metric} (%)" if key.startswith("val_") else "loss")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Training curves: mean over seeds, band from lowest to highest seed",
                 fontsize=11)
    fig.legend(list(lines.values()), list(lines), loc="lower center",
               ncol=min(len(lines), 6), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07 if len(lines) <= 6 else 0.12, 1, 1))
    return save(fig, out)


# ---- the `avloc plot` command -----------------------------------------------------------
def plot(
    figure: str, runs: Sequence[str], out: str | Path | None = None,
    data: str | None = None, video: str | None = None, compare: str | None = None,
) -> Path:
    """`avloc plot cas|attention|curves`: one figure from run folders; returns its path."""
    out = check_output(out or f"{figure}.png")
    if figure == "curves":
        path = curves_figure(find_runs(runs), out)
    else:
        if len(runs) != 1:
            raise AvlocError(f"plot {figure}: give one run folder (and --compare for a second)")
        main = load_run(runs[0])
        others = [load_run(compare)] if compare and figure == "cas" else []
        ds = load_data(main, data, others)
        parsing = ds.task == "parsing"  # LLP: audio and visual event tracks instead of a CAS
        if parsing:
            from avloc.report.parsing_figures import parsing_figure, pick_parsing_video
        vid = video or (pick_parsing_video if parsing else pick_video)(ds, [main, *others])
        if not video:
            print(f"video: {vid} (the test video where {main.label} localizes best"
                  + (f" relative to {others[0].label})" if others and not parsing else ")"))
        if figure == "cas" and parsing:
            path = parsing_figure(ds, [main, *others], vid, out)
        elif figure == "cas":
            path = cas_figure(ds, [main, *others], vid, out)
        elif figure == "attention":
            path = attention_figure(ds, main, vid, out)
        else:
            raise AvlocError(f"plot {figure!r}: expected cas, curves or attention")
    print(f"wrote {path}")
    return path
