"""The dataset interface every reader returns.

Training only ever receives `Video` objects: features and the video-level label.
Snippet labels and segments live in `Annotation`, which only evaluation reads, so
there is no path by which temporal supervision can reach a loss.

Class indices: `Dataset.classes` lists the C action classes. In the model's C + 1
outputs and in `Annotation.snippet_labels`, index 0 is background and index c + 1
is `classes[c]` (the paper's convention, Sec. 3: "0 denotes the background class").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class Video:
    """What training sees: per-snippet features and the video-level label."""

    vid: str
    audio: np.ndarray  # (T, D_a) float32
    visual: np.ndarray  # (T, D_v) float32
    labels: np.ndarray  # (C,) float32 multi-hot over action classes; all zero = background only

    @property
    def length(self) -> int:
        return int(self.audio.shape[0])


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float  # seconds
    label: str  # an entry of Dataset.classes


def snippets_in(start: float, end: float, length: int, snippet_seconds: float) -> np.ndarray:
    """(T,) bool: the snippets a segment [start, end) seconds holds. Snippet t holds when its
    start t * snippet_seconds lies in the segment (1e-6 s tolerance): the rule of the scored
    event labels (`Annotation.snippet_labels`) and of the figures' ground truth."""
    starts = np.arange(length) * snippet_seconds  # (T,) snippet start times
    return (starts >= start - 1e-6) & (starts < end - 1e-6)


@dataclass
class Annotation:
    """Temporal ground truth, for evaluation only."""

    vid: str
    duration: float  # seconds
    segments: list[Segment] = field(default_factory=list)
    snippet_labels: np.ndarray | None = None  # (T,) int64: 0 background, c + 1 = classes[c]


@dataclass
class Dataset:
    name: str
    task: str  # "event": AVE snippet accuracy; "action": ActivityNet mAP@tIoU
    classes: list[str]
    snippet_seconds: float
    splits: dict[str, list[Video]]  # keys from SPLITS; a missing split is an empty list
    annotations: dict[str, Annotation]  # vid -> ground truth (evaluation only)
    # how the features were made (`avloc extract` back-ends and snippet grid), when known;
    # checkpoints record it so `avloc localize` extracts new videos the same way
    extractors: dict[str, Any] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def feature_dims(self) -> tuple[int, int]:
        """(D_a, D_v), read off the first video of any split."""
        for videos in self.splits.values():
            if videos:
                return int(videos[0].audio.shape[1]), int(videos[0].visual.shape[1])
        raise ValueError(f"dataset {self.name} has no videos")
