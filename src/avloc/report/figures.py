"""Figures of one video and of attention: class activation sequences (the paper's Fig.
2-4) and the last stage's cross attention. Time axes are in seconds.

- `cas_figure`: for one video and one target class, the ground-truth segments, each
  model's predicted segments and its activation of the class over time as a grey strip
  (darker = higher, as in the paper's Fig. 4), then mu (foreground reliability).
- `attention_figure`: the L x L audio attention A_u of the last cross-attention stage.
(Training curves: report/curves.py; parsing's event tracks: report/parsing_figures.py.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avloc.data.base import Timing, snippets_in_any
from avloc.report.loaded import LoadedRun, find_video, predict_one
from avloc.report.style import GT_COLOR, MODEL_COLORS, new_figure, save
from avloc.util.errors import AvlocError


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
    segments of the class (scoring.segments.segments_from_cas), as the evaluation makes them."""
    if ds.task == "event":
        return _runs_of(pred.p.argmax(axis=1) == target + 1, ds.timing(pred.vid))
    from avloc.scoring.segments import segments_from_cas

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
    from avloc.scoring.predict import predict

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
    fig = new_figure(10, 1.3 + 1.1 * n + 1.8)
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
    fig = new_figure(6.4, 5.6)
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
