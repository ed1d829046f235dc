"""Figures of audio-visual video parsing: audio and visual event tracks over time.

One panel per modality; in each, a row per event class that the ground truth or a
prediction holds, with the ground-truth events (green) and each model's events (one colour
per model) as bars over the seconds of the video. `parsing_figure` draws a dataset video
(for `avloc plot cas` and `avloc reproduce` on parsing data), `localize_figure` a raw
video run through `avloc localize` (predictions and each modality's probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc.report.loaded import LoadedRun, find_video
from avloc.report.style import GT_COLOR, MODEL_COLORS, new_figure, save
from avloc.util.errors import AvlocError

MODALITIES = ("audio", "visual")
TITLES = {"audio": "audio events (heard)", "visual": "visual events (seen)"}


def _tracks(ax, tracks: list[tuple[str, str, list[dict[str, Any]]]], classes: list[str],
            duration: float, modality: str) -> None:
    """Bars of each track's events of one modality, a row per class, tracks side by side."""
    n = len(tracks)
    height = 0.8 / max(n, 1)
    for i, (_, color, events) in enumerate(tracks):
        for e in events:
            if e["modality"] != modality or e["label"] not in classes:
                continue
            y = classes.index(e["label"]) - 0.4 + i * height
            start, end = e["segment"]
            ax.broken_barh([(start, end - start)], (y, height * 0.9), color=color, alpha=0.85)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_ylim(len(classes) - 0.5, -0.5)
    ax.set_xlim(0, duration)
    ax.set_title(TITLES[modality], fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)


def _draw(tracks: list[tuple[str, str, list[dict[str, Any]]]], title: str, duration: float,
          out: str | Path) -> Path:
    from matplotlib.patches import Patch

    classes = sorted({e["label"] for _, _, events in tracks for e in events})
    if not classes:
        classes = ["(no event)"]
    fig = new_figure(10, 2.0 + 0.55 * len(classes) * 2)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, modality in zip(axes, MODALITIES, strict=True):
        _tracks(ax, tracks, classes, duration, modality)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=11)
    handles = [Patch(color=color, alpha=0.85, label=name) for name, color, _ in tracks]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return save(fig, out)


def truth_events(ds, vid: str) -> list[dict[str, Any]]:
    ann = ds.annotations.get(vid)
    return [{"label": s.label, "modality": s.modality, "segment": [s.start, s.end]}
            for s in (ann.segments if ann else []) if s.modality in MODALITIES]


def predicted_events(ds, run: LoadedRun, video) -> list[dict[str, Any]]:
    """The run's decided events of one video, with the thresholds its settings give."""
    from avloc.scoring.predict import predict
    from avloc.scoring.segments import parsing_events

    pred = predict(run.model, [video])[0]
    if pred.audio is None:
        raise AvlocError(f"{run.label}: not a parsing model (model.head=parsing)")
    return parsing_events(pred.audio, pred.visual, pred.video, ds.timing(video.vid),
                          ds.classes, run.cfg.localize)


def parsing_figure(ds, runs: Sequence[LoadedRun], vid: str, out: str | Path) -> Path:
    """Ground truth and each model's audio and visual events of one dataset video."""
    video, split = find_video(ds, vid)
    tracks = [("ground truth", GT_COLOR, truth_events(ds, vid))]
    tracks += [(run.label, MODEL_COLORS[i % len(MODEL_COLORS)],
                predicted_events(ds, run, video)) for i, run in enumerate(runs)]
    duration = float(ds.timing(vid).at(video.length))
    return _draw(tracks, f"{vid} ({split} split): audio and visual events", duration, out)


def pick_parsing_video(ds, runs: Sequence[LoadedRun], split: str = "test") -> str:
    """A video of `split` with an event heard but not seen or seen but not heard, where the
    first model's segment-level Type@AV is high and the ground truth rich: the largest
    Type@AV + 0.05 per annotated event (an illustration, chosen, not typical)."""
    from avloc.scoring.evaluate import parsing_metrics
    from avloc.scoring.predict import predict

    videos = [v for v in ds.splits.get(split, []) if _modality_specific(truth_events(ds, v.vid))]
    if not videos:
        raise AvlocError(f"split {split!r}: no video with an event in one modality only")
    preds = predict(runs[0].model, videos)
    scores = [parsing_metrics(ds, [p], runs[0].cfg.localize)["segment_level"]["type_av"]
              + 0.05 * len(truth_events(ds, p.vid)) for p in preds]
    return videos[int(np.argmax(scores))].vid


def _modality_specific(events: list[dict[str, Any]]) -> bool:
    """True when some class has events in one modality and none in the other."""
    per = {m: {e["label"] for e in events if e["modality"] == m} for m in MODALITIES}
    return bool(per["audio"] ^ per["visual"])


def localize_figure(loc, out: str | Path) -> Path:
    """`avloc localize` on a parsing model: the predicted audio and visual event tracks."""
    duration = loc.snippet_seconds * len(loc.prediction.p)
    tracks = [("predicted", MODEL_COLORS[0], loc.segments)]
    return _draw(tracks, f"{loc.vid}: audio and visual events", duration, out)
