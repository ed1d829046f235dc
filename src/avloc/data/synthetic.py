"""The embedded default dataset: AVE-like videos generated deterministically.

A synthetic stand-in, not real data. Each video has `synth_length` one-second
snippets and at most one event of one class; background elsewhere. Features are
class prototypes plus Gaussian noise, built so that each modality carries only part
of the evidence and fusion matters:

- clean  (40 %): the event is heard and seen only while it happens;
- drowned (30 %): unrelated music covers the soundtrack; the event's sound is faint,
  the picture shows it clearly (audio alone fails here);
- static (30 %): the scene looks the same before, during and after the event (it shows
  the class all along but not when), the sound marks the event (vision alone cannot
  find the boundaries).

Background-only training videos (like AVE's "noisy" set) have no event at all.
"""

from __future__ import annotations

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Video

KINDS = ("clean", "drowned", "static")
KIND_P = (0.4, 0.3, 0.3)
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


def _make_video(
    protos: _Prototypes, cfg: DataConfig, rng: np.random.Generator, cls: int | None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Features of one video and its event [start, end) in snippets (0, 0 when none)."""
    L = cfg.synth_length
    audio = np.tile(protos.ambient[rng.integers(4)] * SCENE, (L, 1))  # (L, D_a)
    visual = np.tile(protos.scenes[rng.integers(6)] * SCENE, (L, 1))  # (L, D_v)
    start = end = 0
    if cls is not None:
        length = int(rng.integers(2, L + 1))
        start = int(rng.integers(0, L - length + 1))
        end = start + length
        kind = KINDS[rng.choice(3, p=KIND_P)]
        sound = FAINT if kind == "drowned" else STRONG
        audio[start:end] += protos.audio[cls] * sound
        if kind == "drowned":
            audio += protos.music[rng.integers(3)] * STRONG
        if kind == "static":
            visual += protos.visual[cls] * STRONG  # the whole video looks like the class
        else:
            visual[start:end] += protos.visual[cls] * STRONG
    audio += rng.standard_normal(audio.shape) * cfg.synth_noise
    visual += rng.standard_normal(visual.shape) * cfg.synth_noise
    return audio.astype(np.float32), visual.astype(np.float32), start, end


def make_synthetic(cfg: DataConfig) -> Dataset:
    """Generate the dataset; the same settings always give the same arrays."""
    rng = np.random.default_rng(cfg.synth_seed)
    protos = _Prototypes(cfg, rng)
    classes = [f"event{c:02d}" for c in range(cfg.synth_classes)]
    sizes = {"train": cfg.synth_videos, "val": cfg.synth_videos // 4, "test": cfg.synth_videos // 4}
    splits: dict[str, list[Video]] = {}
    annotations: dict[str, Annotation] = {}
    for split, n in sizes.items():
        n_bg = cfg.synth_background_videos if split == "train" else 0
        videos = []
        for i in range(n + n_bg):
            cls = int(rng.integers(cfg.synth_classes)) if i < n else None
            audio, visual, start, end = _make_video(protos, cfg, rng, cls)
            vid = f"{split}_{i:05d}"
            labels = np.zeros(cfg.synth_classes, np.float32)
            snippet_labels = np.zeros(cfg.synth_length, np.int64)
            segments = []
            if cls is not None:
                labels[cls] = 1.0
                snippet_labels[start:end] = cls + 1
                t = cfg.snippet_seconds
                segments = [Segment(start * t, end * t, classes[cls])]
            videos.append(Video(vid, audio, visual, labels))
            annotations[vid] = Annotation(
                vid, cfg.synth_length * cfg.snippet_seconds, segments, snippet_labels
            )
        splits[split] = videos
    return Dataset("synthetic", "event", classes, cfg.snippet_seconds, splits, annotations)
