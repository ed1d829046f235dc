"""The dataset interface every reader returns.

Training only ever receives `Video` objects: features and the video-level label (and,
with a recipe, targets a teacher model made from them: avloc.train.recipes).
Snippet labels and segments live in `Annotation`, which only evaluation reads, so
there is no path by which temporal supervision can reach a loss.

Class indices: `Dataset.classes` lists the C action classes. In the model's C + 1
outputs and in `Annotation.snippet_labels`, index 0 is background and index c + 1
is `classes[c]` (the paper's convention, Sec. 3: "0 denotes the background class").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class Video:
    """What training sees: per-snippet features and the video-level label."""

    vid: str
    audio: np.ndarray  # (T, D_a) float32; D_a = 0: the dataset has no audio features
    visual: np.ndarray  # (T, D_v) float32
    labels: np.ndarray  # (C,) float32 multi-hot over action classes; all zero = background only
    # set by the recipes from a teacher's predictions on training videos, never read from
    # annotations (avloc.train.recipes): (2, C) the labels judged heard (row 0) and seen
    # (row 1), subsets of `labels` (train.label_refinement=ma); (T,) int64 snippet pseudo
    # labels, 0 background, c + 1 = classes[c], -1 none (train.self_training_rounds)
    modality_labels: np.ndarray | None = None
    snippet_targets: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.audio.shape[0])


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float  # seconds
    label: str  # an entry of Dataset.classes
    # parsing data (LLP): "audio" (heard) or "visual" (seen); "" for event and action data
    modality: str = ""


@dataclass(frozen=True)
class Timing:
    """Where a video's snippets lie: snippet t covers [offset + t s, offset + (t + 1) s).

    Most layouts share one grid (offset 0, `Dataset.snippet_seconds`). ActionFormer's
    THUMOS'14 features are taken every few frames at each video's own frame rate and
    centred on their window, so each video has its own (data/thumos.py).
    """

    seconds: float
    offset: float = 0.0

    def at(self, index: Any) -> np.ndarray:
        """Seconds at snippet boundary `index` (t: start of snippet t; t + 0.5: its centre)."""
        return self.offset + np.asarray(index, dtype=np.float64) * self.seconds


def frame_timing(fps: float, feat_stride: int, num_frames: int, downsample: int = 1) -> Timing:
    """The grid of features every feat_stride frames of num_frames each at `fps`, every
    downsample-th kept: each kept feature's stride-wide interval centred on its window
    (ActionFormer's feature centre, (i s + n / 2) / fps)."""
    stride = feat_stride * downsample  # frames between kept features
    return Timing(stride / fps, (num_frames - stride) / 2 / fps)


def snippets_in(start: float, end: float, length: int, timing: Timing | float) -> np.ndarray:
    """(T,) bool: the snippets a segment [start, end) seconds holds, on the snippet grid
    `timing` (or seconds per snippet). Snippet t holds when its start lies in the segment
    (1e-6 s tolerance): the rule of the scored event labels (`Annotation.snippet_labels`)
    and of the figures' ground truth."""
    grid = timing if isinstance(timing, Timing) else Timing(float(timing))
    starts = grid.at(np.arange(length))  # (T,) snippet start times
    return (starts >= start - 1e-6) & (starts < end - 1e-6)



def snippets_in_any(
    segments: Iterable[tuple[float, float]], length: int, timing: Timing | float
) -> np.ndarray:
    """(T,) bool: the snippets inside any of the [start, end) segments (`snippets_in`)."""
    out = np.zeros(length, dtype=bool)
    for start, end in segments:
        out |= snippets_in(start, end, length, timing)
    return out

@dataclass
class Annotation:
    """Temporal ground truth, for evaluation only."""

    vid: str
    duration: float  # seconds
    segments: list[Segment] = field(default_factory=list)
    snippet_labels: np.ndarray | None = None  # (T,) int64: 0 background, c + 1 = classes[c]
    timing: Timing | None = None  # the video's own snippet grid; None: the dataset's
    # video-level labels only (generic layout's "labels" without "annotations"): its segments
    # are unknown, not absent, so it trains but cannot be scored
    weak: bool = False


@dataclass
class Dataset:
    name: str
    # "event": AVE snippet accuracy; "action": ActivityNet mAP@tIoU; "parsing": LLP F-scores
    # per modality (segments carry their modality)
    task: str
    classes: list[str]
    snippet_seconds: float
    splits: dict[str, list[Video]]  # keys from SPLITS; a missing split is an empty list
    annotations: dict[str, Annotation]  # vid -> ground truth (evaluation only)
    # how the features were made (`avloc extract` back-ends and snippet grid), when known;
    # checkpoints record it so `avloc localize` extracts new videos the same way
    extractors: dict[str, Any] | None = None
    # generated data only: how each video was made (vid -> data.synthetic.KINDS or
    # "background"), for benchmarks that ask which kind of video a model fails on
    video_kinds: dict[str, str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def feature_dims(self) -> tuple[int, int]:
        """(D_a, D_v), read off the first video of any split; D_a = 0 without audio."""
        for videos in self.splits.values():
            if videos:
                return int(videos[0].audio.shape[1]), int(videos[0].visual.shape[1])
        raise ValueError(f"dataset {self.name} has no videos")

    @property
    def has_audio(self) -> bool:
        """False for visual-only features (THUMOS'14's I3D): audio arrays are (T, 0)."""
        return self.feature_dims[0] > 0

    def timing(self, vid: str) -> Timing:
        """Video `vid`'s snippet grid: its own when the reader set one, else the dataset's."""
        ann = self.annotations.get(vid)
        if ann is not None and ann.timing is not None:
            return ann.timing
        return Timing(self.snippet_seconds)
