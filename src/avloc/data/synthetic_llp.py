"""LLP-structured synthetic data (`data.format=llp_synthetic`): a stand-in, not real data.

Ten one-second segments per clip and the 25 LLP classes; each event is heard, seen or
both, in separate audio and visual tracks. Features are class prototypes plus Gaussian
noise: an event adds its class's sound to the audio segments where it is heard and its
class's look to the visual segments where it is seen, over a clip-wide ambient sound and
scene. A model that treats the two modalities as one cannot tell a heard-only event from
a seen-only one, which is what the per-modality scores measure.

Two sources of structure:
- with the real LLP annotation files (`--data DIR` or setting `data.annotations`, the
  AVVP-ECCV20 CSVs): the real clip lists and labels (the first `data.synth_videos` training
  clips, every validation and test clip) and, for validation and test, the real
  per-modality events: features show an event exactly where the evaluation files say it is
  heard or seen. Training clips have no temporal annotation in the release; their events
  are drawn, for their real labels, from the statistics of those files;
- without them (`avloc demo --task parsing`): label sets and events drawn from the same
  statistics, embedded below (`EMBEDDED`), `data.synth_videos` training clips and a
  quarter as many for validation and for test.

The embedded numbers are derived statistics of the real files (computed by
`llp_statistics`, checked against the files by tests/test_data_llp.py), not the files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Video
from avloc.data.llp import (
    LLP_CLASSES,
    SEGMENTS,
    LLPAnnotations,
    annotation_folder,
    multi_hot_labels,
    read_llp_annotations,
    report_notes,
)

# LLP training clips (AVVP_train.csv) per class, in LLP_CLASSES order
CLASS_COUNTS = (4988, 624, 528, 761, 192, 343, 455, 218, 299, 602, 186, 1172, 437, 1457, 495,
                146, 445, 224, 411, 587, 503, 99, 430, 291, 164)
LABELS_PER_CLIP = {1: 4032, 2: 5879, 3: 89}  # training clips with k labels
# training clips holding both classes i < j (label co-occurrence)
PAIR_COUNTS = {
    (0, 1): 367, (0, 2): 267, (0, 3): 680, (0, 4): 170, (0, 5): 135, (0, 6): 322, (0, 7): 102,
    (0, 8): 70, (0, 9): 37, (0, 10): 66, (0, 11): 521, (0, 12): 206, (0, 13): 586, (0, 14): 104,
    (0, 15): 90, (0, 16): 45, (0, 17): 90, (0, 18): 318, (0, 19): 146, (0, 20): 236,
    (0, 21): 62, (0, 22): 251, (0, 23): 78, (0, 24): 107, (1, 18): 5, (2, 3): 1, (2, 6): 3,
    (2, 11): 48, (2, 24): 14, (3, 4): 11, (3, 8): 1, (3, 11): 7, (3, 12): 5, (3, 13): 2,
    (3, 14): 3, (3, 15): 2, (3, 18): 2, (3, 19): 1, (3, 21): 1, (3, 22): 4, (3, 24): 2,
    (4, 20): 1, (8, 17): 3, (8, 18): 11, (9, 10): 1, (9, 11): 13, (9, 13): 516, (9, 16): 7,
    (9, 20): 7, (10, 11): 58, (10, 13): 48, (10, 16): 1, (10, 20): 12, (11, 13): 42,
    (11, 16): 22, (11, 20): 137, (11, 22): 1, (11, 24): 12, (13, 16): 14, (13, 20): 64,
    (13, 24): 1, (16, 20): 1, (17, 18): 5, (17, 19): 1,
}
# per class, its (validation or test clip, label) pairs that are heard only, seen only,
# heard and seen, and neither (a label without any annotated event)
MODALITY_COUNTS = (
    (752, 2, 217, 19), (2, 27, 104, 1), (74, 5, 49, 4), (13, 21, 134, 1), (2, 15, 39, 1),
    (4, 1, 59, 1), (4, 14, 61, 2), (6, 0, 30, 0), (1, 0, 44, 0), (23, 5, 93, 1), (8, 2, 34, 1),
    (81, 1, 180, 3), (7, 5, 86, 0), (39, 6, 186, 1), (6, 1, 92, 0), (7, 0, 25, 0),
    (21, 1, 59, 0), (3, 1, 40, 0), (4, 7, 71, 0), (9, 2, 92, 0), (13, 16, 126, 0),
    (8, 0, 11, 0), (13, 1, 62, 1), (0, 1, 55, 0), (52, 6, 69, 2),
)
# events of one label in one modality of one clip, when it has any
EVENTS_PER_TRACK = {
    "audio": {1: 2479, 2: 541, 3: 126, 4: 23, 5: 1},
    "visual": {1: 1923, 2: 200, 3: 31, 4: 3, 5: 1},
}
# (onset, offset) seconds of those events
EVENT_TIMES = {
    "audio": {
        (0, 1): 170, (0, 2): 128, (0, 3): 115, (0, 4): 101, (0, 5): 86, (0, 6): 68, (0, 7): 63,
        (0, 8): 53, (0, 9): 52, (0, 10): 1306, (1, 2): 49, (1, 3): 43, (1, 4): 34, (1, 5): 22,
        (1, 6): 16, (1, 7): 2, (1, 8): 11, (1, 9): 6, (1, 10): 64, (2, 3): 53, (2, 4): 42,
        (2, 5): 33, (2, 6): 16, (2, 7): 12, (2, 8): 15, (2, 9): 13, (2, 10): 65, (3, 4): 46,
        (3, 5): 32, (3, 6): 24, (3, 7): 17, (3, 8): 8, (3, 9): 8, (3, 10): 72, (4, 5): 38,
        (4, 6): 33, (4, 7): 27, (4, 8): 13, (4, 9): 12, (4, 10): 64, (5, 6): 51, (5, 7): 38,
        (5, 8): 28, (5, 9): 20, (5, 10): 65, (6, 7): 51, (6, 8): 37, (6, 9): 27, (6, 10): 126,
        (7, 8): 43, (7, 9): 49, (7, 10): 120, (8, 9): 23, (8, 10): 149, (9, 10): 177,
    },
    "visual": {
        (0, 1): 61, (0, 2): 52, (0, 3): 56, (0, 4): 56, (0, 5): 34, (0, 6): 50, (0, 7): 33,
        (0, 8): 37, (0, 9): 21, (0, 10): 1349, (1, 2): 14, (1, 3): 11, (1, 4): 14, (1, 5): 8,
        (1, 6): 8, (1, 7): 4, (1, 8): 4, (1, 9): 2, (1, 10): 23, (2, 3): 15, (2, 4): 14,
        (2, 5): 7, (2, 6): 4, (2, 7): 3, (2, 8): 4, (2, 9): 3, (2, 10): 32, (3, 4): 4,
        (3, 5): 16, (3, 6): 10, (3, 7): 7, (3, 8): 6, (3, 9): 7, (3, 10): 32, (4, 5): 11,
        (4, 6): 7, (4, 7): 9, (4, 8): 8, (4, 9): 4, (4, 10): 31, (5, 6): 11, (5, 7): 14,
        (5, 8): 9, (5, 9): 8, (5, 10): 30, (6, 7): 14, (6, 8): 16, (6, 9): 11, (6, 10): 50,
        (7, 8): 14, (7, 9): 14, (7, 10): 47, (8, 9): 7, (8, 10): 51, (9, 10): 66,
    },
}
TRACKS = ("audio", "visual")
# evidence of an event per dimension (over unit-variance prototypes), ambient sound / scene
STRONG, SCENE = 0.45, 0.45


@dataclass(frozen=True)
class LLPStats:
    """What the generator draws from: the real files' statistics (see the constants)."""

    class_counts: tuple[int, ...]
    labels_per_clip: dict[int, int]
    pair_counts: dict[tuple[int, int], int]
    modality_counts: tuple[tuple[int, int, int, int], ...]
    events_per_track: dict[str, dict[int, int]]
    event_times: dict[str, dict[tuple[int, int], int]]


EMBEDDED = LLPStats(CLASS_COUNTS, LABELS_PER_CLIP, PAIR_COUNTS, MODALITY_COUNTS,
                    EVENTS_PER_TRACK, EVENT_TIMES)


def llp_statistics(ann: LLPAnnotations) -> LLPStats:
    """The statistics above, computed from the real annotation files."""
    index = {c: i for i, c in enumerate(LLP_CLASSES)}
    per_clip: Counter[int] = Counter()
    classes: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    for _, labels in ann.lists["train"]:
        idx = sorted(index[c] for c in labels)
        per_clip[len(idx)] += 1
        classes.update(idx)
        pairs.update((a, b) for n, a in enumerate(idx) for b in idx[n + 1:])
    kinds: Counter[tuple[int, bool, bool]] = Counter()
    counts: dict[str, Counter[int]] = {m: Counter() for m in TRACKS}
    times: dict[str, Counter[tuple[int, int]]] = {m: Counter() for m in TRACKS}
    for split in ("val", "test"):
        for clip, labels in ann.lists[split]:
            for label in labels:
                track = {m: [s for s in ann.events[clip] if s.label == label and s.modality == m]
                         for m in TRACKS}
                kinds[(index[label], bool(track["audio"]), bool(track["visual"]))] += 1
                for m, events in track.items():
                    if events:
                        counts[m][len(events)] += 1
                        times[m].update((int(s.start), int(s.end)) for s in events)
    modality = tuple(tuple(kinds[(c, a, v)] for a, v in ((True, False), (False, True),
                                                          (True, True), (False, False)))
                     for c in range(len(LLP_CLASSES)))
    return LLPStats(
        tuple(classes[c] for c in range(len(LLP_CLASSES))), dict(sorted(per_clip.items())),
        dict(sorted(pairs.items())), modality,  # type: ignore[arg-type]
        {m: dict(sorted(counts[m].items())) for m in TRACKS},
        {m: dict(sorted(times[m].items())) for m in TRACKS},
    )


def _draw(rng: np.random.Generator, table: dict) -> object:
    """A key of `table`, with probability proportional to its count."""
    keys = list(table)
    p = np.array([table[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_labels(stats: LLPStats, rng: np.random.Generator) -> list[int]:
    """A label set: its size from the real distribution, the first class by frequency, each
    next one by its co-occurrence with those drawn (by frequency when none co-occurs)."""
    k = int(_draw(rng, stats.labels_per_clip))  # type: ignore[arg-type]
    weights = np.array(stats.class_counts, dtype=np.float64)  # (C,)
    chosen = [int(rng.choice(len(weights), p=weights / weights.sum()))]
    while len(chosen) < k:
        co = np.zeros_like(weights)
        for (a, b), n in stats.pair_counts.items():
            if a in chosen and b not in chosen:
                co[b] += n
            elif b in chosen and a not in chosen:
                co[a] += n
        if not co.any():
            co = weights.copy()
            co[chosen] = 0
        chosen.append(int(rng.choice(len(co), p=co / co.sum())))
    return sorted(chosen)


def sample_events(stats: LLPStats, labels: list[int], rng: np.random.Generator
                  ) -> list[Segment]:
    """Each label heard only, seen only, both or neither as often as in the real files; each
    track's events drawn from the real counts and (onset, offset) times."""
    out = []
    for c in labels:
        kind = int(rng.choice(4, p=np.array(stats.modality_counts[c]) / sum(
            stats.modality_counts[c])))
        for m, on in zip(TRACKS, ((True, False, True, False)[kind],
                                  (False, True, True, False)[kind]), strict=True):
            if not on:
                continue
            for _ in range(int(_draw(rng, stats.events_per_track[m]))):  # type: ignore[arg-type]
                start, end = _draw(rng, stats.event_times[m])  # type: ignore[misc]
                out.append(Segment(float(start), float(end), LLP_CLASSES[c], m))
    return out


class _Prototypes:
    """Fixed random directions: each class's sound and look, ambient sounds, scenes."""

    def __init__(self, cfg: DataConfig, rng: np.random.Generator):
        c, da, dv = len(LLP_CLASSES), cfg.synth_audio_dim, cfg.synth_visual_dim
        self.audio = rng.standard_normal((c, da))  # (C, D_a)
        self.visual = rng.standard_normal((c, dv))  # (C, D_v)
        self.ambient = rng.standard_normal((6, da))  # (6, D_a)
        self.scenes = rng.standard_normal((6, dv))  # (6, D_v)


def clip_features(protos: _Prototypes, events: list[Segment], cfg: DataConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(10, D_a) audio and (10, D_v) visual: ambient and scene, plus each event's class
    prototype in its own modality's segments [onset, offset), plus noise."""
    audio = np.tile(protos.ambient[rng.integers(6)] * SCENE, (SEGMENTS, 1))  # (10, D_a)
    visual = np.tile(protos.scenes[rng.integers(6)] * SCENE, (SEGMENTS, 1))  # (10, D_v)
    for s in events:
        c, a, b = LLP_CLASSES.index(s.label), int(s.start), int(s.end)
        if s.modality == "audio":
            audio[a:b] += protos.audio[c] * STRONG
        else:
            visual[a:b] += protos.visual[c] * STRONG
    audio += rng.standard_normal(audio.shape) * cfg.synth_noise
    visual += rng.standard_normal(visual.shape) * cfg.synth_noise
    return audio.astype(np.float32), visual.astype(np.float32)


def _layout(cfg: DataConfig, root: Path | None, rng: np.random.Generator
            ) -> tuple[dict[str, list[tuple[str, list[int], list[Segment] | None]]], LLPStats]:
    """Per split [(clip, labels, real events or None)] and the statistics to draw from."""
    if root is None and not cfg.annotations:
        sizes = {"train": cfg.synth_videos, "val": cfg.synth_videos // 4,
                 "test": cfg.synth_videos // 4}
        return {split: [(f"llp_{split}_{i:05d}", sample_labels(EMBEDDED, rng), None)
                        for i in range(n)] for split, n in sizes.items()}, EMBEDDED
    ann = read_llp_annotations(annotation_folder(cfg, root))
    report_notes(ann.notes)
    index = {c: i for i, c in enumerate(LLP_CLASSES)}
    layout = {}
    for split, items in ann.lists.items():
        items = items[:cfg.synth_videos] if split == "train" else items
        layout[split] = [(clip, sorted(index[c] for c in labels),
                          None if split == "train" else ann.events[clip])
                         for clip, labels in items]
    return layout, llp_statistics(ann)


def make_llp_synthetic(cfg: DataConfig, root: str | Path | None) -> Dataset:
    """Generate the dataset; the same settings (and files) always give the same arrays."""
    rng = np.random.default_rng(cfg.synth_seed)
    protos = _Prototypes(cfg, rng)
    layout, stats = _layout(cfg, Path(root) if root is not None else None, rng)
    splits: dict[str, list[Video]] = {}
    annotations: dict[str, Annotation] = {}
    for split, items in layout.items():
        videos = []
        for clip, labels, real in items:
            events = real if real is not None else sample_events(stats, labels, rng)
            audio, visual = clip_features(protos, events, cfg, rng)
            y = multi_hot_labels([LLP_CLASSES[c] for c in labels])
            videos.append(Video(clip, audio, visual, y))
            annotations[clip] = Annotation(clip, float(SEGMENTS), list(events))
        splits[split] = videos
    return Dataset("llp_synthetic", "parsing", list(LLP_CLASSES), 1.0, splits, annotations)
