"""`avloc localize`: from one raw video file to localized, timed segments.

The checkpoint records how its training features were made (`avloc extract` back-ends
and snippet grid, see `Dataset.extractors`); the video is extracted the same way, run
through the model, and turned into segments: runs of argmax classes for event models
(AVE-style), the W-TALC two-stage thresholding for action models, audio and visual event
tracks for parsing models (LLP-style; each segment then has a "modality").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.checkpoint import find_checkpoint, model_from_checkpoint, read_checkpoint
from avloc.data.base import Video
from avloc.errors import AvlocError
from avloc.predict import VideoPrediction, predict


@dataclass
class Localization:
    vid: str
    prediction: VideoPrediction
    segments: list[dict[str, Any]]  # [{label, score, segment: [start, end] seconds}]
    snippet_seconds: float
    duration: float
    classes: list[str]
    task: str = "event"  # the checkpoint's: event | action | parsing
    thresholds: str = ""  # parsing: where the thresholds come from


def recorded_extractors(ckpt: dict[str, Any], source: str) -> dict[str, Any]:
    ext = ckpt.get("extractors")
    if not ext or "audio_backend" not in ext or "visual_backend" not in ext:
        raise AvlocError(
            f"{source}: the checkpoint records no feature extractors (it was trained on features "
            "not made by `avloc extract`); train on `avloc extract` output to localize raw videos"
        )
    return ext


def check_requested(
    ext: dict[str, Any], audio: str | None, visual: str | None, source: str
) -> None:
    """A back-end the user names must be the one the checkpoint was trained on."""
    for kind, asked in (("audio", audio), ("visual", visual)):
        trained = ext[f"{kind}_backend"]
        if asked and asked != trained:
            raise AvlocError(
                f"{source}: trained on {kind} features from {trained!r}, not {asked!r}; "
                f"features from another network mean nothing to this model"
            )


def localize_video(
    video: str | Path, checkpoint: str | Path, *, audio_backend: str | None = None,
    visual_backend: str | None = None, audio_weights: str | Path | None = None,
    visual_weights: str | Path | None = None,
) -> Localization:
    from avloc.evaluate import recorded_thresholds
    from avloc.extract import extract_video, make_audio_backend, make_visual_backend
    from avloc.segments import event_segments, parsing_events, segments_from_cas

    path = find_checkpoint(checkpoint)
    ckpt = read_checkpoint(path)
    ext = recorded_extractors(ckpt, str(path))
    check_requested(ext, audio_backend, visual_backend, str(path))
    audio, visual, meta = extract_video(
        video, make_audio_backend(ext["audio_backend"], audio_weights),
        make_visual_backend(ext["visual_backend"], visual_weights),
        float(ext["snippet_seconds"]), int(ext.get("frames_per_snippet", 1)),
    )  # (T, D_a), (T, D_v)
    dims = [audio.shape[1], visual.shape[1]]
    if dims != list(ckpt["feature_dims"]):
        raise AvlocError(f"{video}: extracted feature dims {dims} differ from the checkpoint's "
                         f"{ckpt['feature_dims']}")
    model, cfg = model_from_checkpoint(ckpt)
    classes = list(ckpt["classes"])
    vid = Path(video).stem
    item = Video(vid, audio, visual, np.zeros(len(classes), np.float32))
    pred = predict(model, [item])[0]
    seconds = float(ext["snippet_seconds"])
    duration = float(meta.get("duration", len(audio) * seconds))
    source = ""
    if ckpt["task"] == "parsing":  # the thresholds its run tuned on validation, if any
        cfg, source = recorded_thresholds(cfg, path.parent)
        segments = parsing_events(pred.audio, pred.visual, pred.video, seconds, classes,
                                  cfg.localize)
    elif ckpt["task"] == "event":
        segments = event_segments(pred.p, seconds, classes)
    else:
        segments = segments_from_cas(pred.cas, pred.video_scores(cfg.loss.topk_divisor), seconds,
                                     classes, cfg.localize, duration=duration)
    return Localization(vid, pred, segments, seconds, duration, classes, ckpt["task"], source)


def format_segments(loc: Localization) -> str:
    parsing = loc.task == "parsing"
    lines = [f"{loc.vid}: {loc.duration:.2f} s, {len(loc.prediction.p)} snippets of "
             f"{loc.snippet_seconds:g} s, {len(loc.segments)} "
             + (f"audio and visual events (thresholds: {loc.thresholds})" if parsing
                else "segments"),
             f"{'start (s)':>9} {'end (s)':>8} {'score':>6}  " + ("modality  " if parsing else "")
             + "label"]
    for s in loc.segments:
        start, end = s["segment"]
        modality = f"{s['modality']:<8}  " if parsing else ""
        lines.append(f"{start:>9.2f} {end:>8.2f} {s['score']:>6.3f}  {modality}{s['label']}")
    return "\n".join(lines)


def timeline_figure(loc: Localization, out: str | Path, max_classes: int = 6) -> Path:
    """Predicted segments, the class activation sequence of the top classes (rows, darker =
    higher) and mu over the video's timeline in seconds; a parsing model's audio and visual
    event tracks."""
    from avloc.report.figures import _figure, save

    if loc.task == "parsing":
        from avloc.report.parsing_figures import localize_figure

        return localize_figure(loc, out)

    cas = loc.prediction.cas  # (T, C)
    top = np.argsort(-cas.max(axis=0), kind="stable")[:max_classes]  # strongest classes
    T, sec = len(cas), loc.snippet_seconds
    span = T * sec
    fig = _figure(10, 2.2 + 0.3 * len(top))
    grid = fig.add_gridspec(3, 2, width_ratios=[60, 1],
                            height_ratios=[0.6, 0.3 * len(top) + 0.3, 1.2], hspace=0.3)
    ax_seg = fig.add_subplot(grid[0, 0])
    for s in loc.segments:
        ax_seg.axvspan(*s["segment"], color="#1f77b4", alpha=0.35 + 0.5 * min(s["score"], 1))
        ax_seg.text(sum(s["segment"]) / 2, 0.5, s["label"], ha="center", va="center", fontsize=8)
    ax_seg.set(xlim=(0, span), ylim=(0, 1), yticks=[])
    ax_seg.set_ylabel("segments", rotation=0, ha="right", va="center")
    ax_seg.set_title(f"{loc.vid}: localized segments and class activation", fontsize=11)
    ax_cas = fig.add_subplot(grid[1, 0], sharex=ax_seg)
    im = ax_cas.imshow(cas[:, top].T, aspect="auto", cmap="Greys", vmin=0, vmax=1,
                       extent=(0, span, len(top) - 0.5, -0.5), interpolation="nearest")
    ax_cas.set_yticks(range(len(top)), [loc.classes[c] for c in top], fontsize=8)
    fig.colorbar(im, cax=fig.add_subplot(grid[1, 1]), label="p(class)")
    for ax in (ax_seg, ax_cas):
        ax.tick_params(axis="x", labelbottom=False)
    ax_mu = fig.add_subplot(grid[2, 0], sharex=ax_seg)
    ax_mu.plot((np.arange(T) + 0.5) * sec, loc.prediction.mu, drawstyle="steps-mid", marker=".")
    ax_mu.set(xlim=(0, span), ylim=(-0.02, 1.02), xlabel="time (s)", ylabel="μ (foreground)")
    ax_mu.grid(alpha=0.3)
    return save(fig, out)
