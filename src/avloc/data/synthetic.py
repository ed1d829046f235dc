"""The embedded datasets: videos generated deterministically (a stand-in, not real data).

Features are class prototypes plus Gaussian noise, built so that each modality carries
only part of the evidence and fusion matters. Every event-holding video is one of:

- clean  (40 %): the event is heard and seen only while it happens;
- drowned (30 %): unrelated music covers the soundtrack; the event's sound is faint,
  the picture shows it clearly (audio alone fails here);
- static (30 %, `data.synth_static_share`): the scene looks the same before, during
  and after the event (it shows the class all along but not when), the sound marks the
  event (vision alone cannot find the boundaries).

Two structures (`data.synth_task`):
- `event` (AVE-like, the default and the demo): `synth_length` one-second snippets, one
  event. Event times (`data.synth_events`): `uniform` draws a length of 2..L snippets and a
  start; `ave` draws [start, end) from the events of the real AVE release (`AVE_EVENTS`,
  counted from its Annotations.txt: two in three events last the whole ten seconds), so
  background is as rare as there and the oracle that labels every snippet with the video's
  class is as strong (82 % on AVE's test split).
- `action` (untrimmed videos, evaluated by mAP, one class per video): video lengths,
  instances per video and instance lengths drawn from the real annotations'
  distributions (`data.synth_actions`): `anet12`, ActivityNet 1.2's (`ANET_*`: 4 to 373
  snippets of 0.64 s, mean 180; 1.5 instances; an instance covers 2 % to 99 % of its
  video, median 36 %); `thumos14`, THUMOS'14's (`THUMOS_*`: 14 to 2,615 snippets, median
  241; median 8 instances, up to 218; median 4.7 snippets each, so about a third of a
  video is action).

Noise is Gaussian, independent across snippets by default; `data.synth_noise_corr` makes
it AR(1) in time, as real features of neighbouring snippets are alike (a localizer that
thresholds activations over time needs that).

Hard mode (`data.synth_groups` > 0), what real classes do: classes come in groups that
share looks and sounds (a class is `synth_group_share` its group's prototype, the rest its
own), and a video's background scene matches its class group all video long.

Background-only training videos (like AVE's "noisy" set) have no event at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Video

# (start, end) in seconds -> events of AVE-ECCV18's Annotations.txt (4143 rows) with them
AVE_EVENTS = {
    (0, 10): 2750, (5, 10): 98, (6, 10): 92, (7, 10): 92, (0, 6): 91, (0, 4): 83,
    (4, 10): 82, (8, 10): 76, (0, 5): 74, (1, 10): 74, (3, 10): 72, (0, 3): 71, (2, 10): 60,
    (0, 7): 56, (0, 2): 54, (0, 8): 49, (0, 9): 21, (3, 5): 20, (6, 8): 17, (3, 6): 15,
    (4, 7): 12, (1, 4): 11, (2, 6): 11, (2, 8): 11, (7, 9): 10, (4, 6): 10, (1, 7): 9,
    (2, 4): 9, (1, 3): 9, (5, 7): 9, (3, 7): 8, (1, 5): 8, (2, 7): 8, (5, 9): 8, (2, 5): 7,
    (3, 9): 7, (1, 8): 7, (5, 8): 7, (4, 8): 7, (4, 9): 6, (3, 8): 6, (6, 9): 5, (1, 6): 4,
    (2, 9): 4, (1, 9): 2,
}  # one zero-length row (0, 0) left out: an event needs a snippet here
# ActivityNet 1.2 (7202 videos): snippets of 0.64 s per video at the 0, 5, 10, ..., 100th
# percentiles (duration / 0.64 s); instances per video (1 to 9); instance length / video
# length at the 0, 5, 10, ..., 100th percentiles (capped at 1). Computed from the W-TALC
# annotation files (tests/test_synthetic.py checks them against the files).
ANET_LENGTH_PCT = (4, 25, 45, 61, 79, 94, 108, 123, 139, 155, 173, 191, 208, 227, 248, 267,
                   288, 308, 329, 351, 373)
ANET_INSTANCES = {1: 5444, 2: 1062, 3: 310, 4: 158, 5: 84, 6: 45, 7: 37, 8: 19, 9: 15}
ANET_FRACTION_PCT = (0.0, 0.02, 0.033, 0.048, 0.067, 0.092, 0.124, 0.167, 0.225, 0.29, 0.362,
                     0.449, 0.541, 0.626, 0.705, 0.779, 0.843, 0.893, 0.938, 0.987, 1.0)
# THUMOS'14 (ActionFormer's thumos14.json, 412 videos): snippets of 0.64 s per video,
# instances per video, and instance lengths in snippets of 0.64 s, each at the 0, 5, 10, ...,
# 100th percentiles (tests/test_synthetic.py checks them against the file).
THUMOS_LENGTH_PCT = (14, 49, 66, 96, 112, 139, 161, 181, 201, 216, 241, 266, 287, 308, 332,
                     357, 397, 482, 672, 1100, 2615)
THUMOS_INSTANCES_PCT = (1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 11, 14, 16, 20, 23, 29, 36, 51.45,
                        218)
THUMOS_INSTANCE_PCT = (0.31, 1.25, 1.56, 1.88, 2.19, 2.5, 2.97, 3.28, 3.75, 4.22, 4.69, 5.47,
                       6.25, 7.19, 8.28, 9.22, 10.16, 11.72, 13.28, 16.72, 184.53)
KINDS = ("clean", "drowned", "static")


def kind_shares(static: float) -> tuple[float, float, float]:
    """P(clean), P(drowned), P(static) for data.synth_static_share (0.3: 0.4, 0.3, 0.3)."""
    return (1 - static) * 4 / 7, (1 - static) * 3 / 7, static
STRONG, FAINT, SCENE = 0.45, 0.12, 0.45


class _Prototypes:
    """Fixed random directions for classes, background sounds, music and scenes."""

    def __init__(self, cfg: DataConfig, rng: np.random.Generator):
        da, dv, c = cfg.synth_audio_dim, cfg.synth_visual_dim, cfg.synth_classes
        self.audio = rng.standard_normal((c, da))  # (C, D_a) event sounds
        self.visual = rng.standard_normal((c, dv))  # (C, D_v) event appearance
        self.ambient = rng.standard_normal((4, da))  # (4, D_a) background sounds
        self.music = rng.standard_normal((3, da))  # (3, D_a) unrelated music
        self.scenes = rng.standard_normal((6, dv))  # (6, D_v) background scenes
        self.group = np.zeros(c, dtype=np.int64)
        if cfg.synth_groups:  # classes of a group share looks, sounds and scenes
            g, share = cfg.synth_groups, cfg.synth_group_share
            self.group = np.arange(c) % g  # (C,)
            for protos in (self.audio, self.visual):
                shared = rng.standard_normal((g, protos.shape[1]))  # (G, D)
                protos[:] = np.sqrt(share) * shared[self.group] + np.sqrt(1 - share) * protos
            self.scenes = rng.standard_normal((g, dv))  # (G, D_v) one scene per group


def _quantile_draw(rng: np.random.Generator, pct: tuple[float, ...]) -> float:
    """A draw from the distribution with these evenly spaced percentiles (piecewise
    uniform between them)."""
    u = rng.random() * (len(pct) - 1)
    i = min(int(u), len(pct) - 2)
    return pct[i] + (u - i) * (pct[i + 1] - pct[i])


def _event_times(cfg: DataConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """[start, end) in snippets of each event of one video (event task: exactly one)."""
    L = cfg.synth_length
    if cfg.synth_events == "ave":
        times = list(AVE_EVENTS)
        counts = np.array(list(AVE_EVENTS.values()), dtype=np.float64)
        s, e = times[rng.choice(len(times), p=counts / counts.sum())]
        return [(round(s * L / 10), round(e * L / 10))]  # AVE's ten seconds onto L snippets
    length = int(rng.integers(2, L + 1))
    start = int(rng.integers(0, L - length + 1))
    return [(start, start + length)]


def _action_times(
    cfg: DataConfig, rng: np.random.Generator
) -> tuple[int, list[tuple[int, int]]]:
    """An untrimmed video (data.synth_actions: ActivityNet 1.2's or THUMOS'14's
    statistics): its length and its instances' [start, end), disjoint."""
    if cfg.synth_actions == "thumos14":
        T = max(4, round(_quantile_draw(rng, THUMOS_LENGTH_PCT)))
        n = max(1, round(_quantile_draw(rng, THUMOS_INSTANCES_PCT)))
        lengths = [max(1, round(_quantile_draw(rng, THUMOS_INSTANCE_PCT))) for _ in range(n)]
        while len(lengths) > 1 and sum(lengths) > T:  # short videos hold fewer instances
            lengths.pop()
    else:
        T = max(4, round(_quantile_draw(rng, ANET_LENGTH_PCT)))
        counts = np.array(list(ANET_INSTANCES.values()), dtype=np.float64)
        n = list(ANET_INSTANCES)[rng.choice(len(counts), p=counts / counts.sum())]
        lengths = [max(1, round(_quantile_draw(rng, ANET_FRACTION_PCT) * T / n))
                   for _ in range(n)]
    n = len(lengths)
    gaps = rng.dirichlet(np.ones(n + 1)) * max(T - sum(lengths), 0)  # background between
    times, at = [], 0.0
    for length, gap in zip(lengths, gaps, strict=False):
        start = min(int(at + gap), T - 1)
        times.append((start, min(start + length, T)))
        at = start + length
    return T, [(s, e) for s, e in times if e > s]


def _make_video(
    protos: _Prototypes, cfg: DataConfig, rng: np.random.Generator, cls: int | None
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], str]:
    """Features of one video of class `cls` (None: background only), its events'
    [start, end) in snippets, and its kind (KINDS; "background" without a class)."""
    ambient, scene = rng.integers(4), rng.integers(len(protos.scenes))
    if cfg.synth_groups and cls is not None:
        scene = protos.group[cls]  # the class group's scene, all video long
    if cfg.synth_task == "action":
        L, events = _action_times(cfg, rng)
    else:
        L, events = cfg.synth_length, []
    audio = np.tile(protos.ambient[ambient] * SCENE, (L, 1))  # (L, D_a)
    visual = np.tile(protos.scenes[scene] * SCENE, (L, 1))  # (L, D_v)
    if cls is not None:
        events = events or _event_times(cfg, rng)
        kind = KINDS[rng.choice(3, p=kind_shares(cfg.synth_static_share))]
        sound = FAINT if kind == "drowned" else STRONG
        for start, end in events:
            audio[start:end] += protos.audio[cls] * sound
            if kind != "static":
                visual[start:end] += protos.visual[cls] * STRONG
        if kind == "drowned":
            audio += protos.music[rng.integers(3)] * STRONG
        if kind == "static":
            visual += protos.visual[cls] * STRONG  # the whole video looks like the class
    else:
        events, kind = [], "background"
    audio += _noise(rng, audio.shape, cfg) * cfg.synth_noise
    visual += _noise(rng, visual.shape, cfg) * cfg.synth_noise
    return audio.astype(np.float32), visual.astype(np.float32), events, kind


def _noise(rng: np.random.Generator, shape: tuple[int, int], cfg: DataConfig) -> np.ndarray:
    """(L, D) unit-variance noise, AR(1) in time with coefficient data.synth_noise_corr
    (real features of neighbouring snippets are alike: 0 makes them independent)."""
    eps = rng.standard_normal(shape)  # (L, D)
    rho = cfg.synth_noise_corr
    if rho == 0:
        return eps
    out = np.empty_like(eps)
    out[0] = eps[0]
    for t in range(1, len(eps)):
        out[t] = rho * out[t - 1] + np.sqrt(1 - rho**2) * eps[t]
    return out


def make_synthetic(cfg: DataConfig, root: Path | None = None) -> Dataset:
    """Generate the dataset; the same settings always give the same arrays (`root`, the
    formats table's reader argument, is not used: nothing is read)."""
    rng = np.random.default_rng(cfg.synth_seed)
    protos = _Prototypes(cfg, rng)
    classes = [f"event{c:02d}" for c in range(cfg.synth_classes)]
    sizes = {"train": cfg.synth_videos, "val": cfg.synth_videos // 4, "test": cfg.synth_videos // 4}
    action = cfg.synth_task == "action"
    t = cfg.snippet_seconds
    splits: dict[str, list[Video]] = {}
    annotations: dict[str, Annotation] = {}
    kinds: dict[str, str] = {}
    for split, n in sizes.items():
        n_bg = cfg.synth_background_videos if split == "train" else 0
        videos = []
        for i in range(n + n_bg):
            cls = int(rng.integers(cfg.synth_classes)) if i < n else None
            vid = f"{split}_{i:05d}"
            audio, visual, events, kinds[vid] = _make_video(protos, cfg, rng, cls)
            length = len(audio)
            labels = np.zeros(cfg.synth_classes, np.float32)
            snippet_labels = np.zeros(length, np.int64)
            segments = []
            if cls is not None:
                labels[cls] = 1.0
                for start, end in events:
                    snippet_labels[start:end] = cls + 1
                    segments.append(Segment(start * t, end * t, classes[cls]))
            videos.append(Video(vid, audio, visual, labels))
            annotations[vid] = Annotation(vid, length * t, segments,
                                          None if action else snippet_labels)
        splits[split] = videos
    task = "action" if action else "event"
    return Dataset("synthetic", task, classes, cfg.snippet_seconds, splits, annotations,
                   video_kinds=kinds)
