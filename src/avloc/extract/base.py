"""The back-end interface: a name, a feature size, and one call from a whole decoded
video to (T, D) float32 snippet features. run.py knows nothing else about back-ends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from avloc.extract import melspec
from avloc.extract.grid import pool_patches


class AudioBackend:
    """Maps a 16 kHz mono waveform covering T snippets to (T, dim) features."""

    name: str = ""
    dim: int = 0

    def embed(self, wave: np.ndarray, num: int, snippet_seconds: float) -> np.ndarray:
        raise NotImplementedError


class PatchAudioBackend(AudioBackend):
    """A network over 0.96 s log-mel patches every 0.48 s; patch embeddings are pooled
    onto the snippet grid by overlap-weighted mean (grid.overlap_weights)."""

    log_offset: float = melspec.YAMNET_LOG_OFFSET

    def patch_embeddings(self, patches: np.ndarray) -> np.ndarray:
        """(P, 96, 64) log-mel -> (P, dim)."""
        raise NotImplementedError

    def embed(self, wave: np.ndarray, num: int, snippet_seconds: float) -> np.ndarray:
        patches, starts = melspec.patches(wave, self.log_offset)  # (P, 96, 64), (P,)
        values = self.patch_embeddings(patches)  # (P, dim)
        return pool_patches(values, starts, melspec.PATCH_SECONDS, num, snippet_seconds)


class VisualBackend:
    """Maps the (T, k, H, W, 3) uint8 RGB frames of a video to (T, dim): each frame goes
    through the network in batches, and the k frames of a snippet are averaged."""

    name: str = ""
    dim: int = 0
    input_size: int = 224  # decode crops frames to input_size x input_size
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # on [0, 1] RGB
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = max(1, int(batch_size))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, dim)."""
        raise NotImplementedError

    def to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float, normalised by mean/std."""
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.mean).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std).view(1, 3, 1, 1) * 255.0
        return (images - mean) / std

    def per_frame(
        self, frames: np.ndarray, call: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) float32 through `call` (default: features)."""
        call = call or self.features
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                batch = self.to_tensor(frames[start : start + self.batch_size])
                out.append(call(batch).float().numpy())
        return np.concatenate(out).astype(np.float32)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        num, per = frames.shape[:2]
        flat = frames.reshape((num * per,) + frames.shape[2:])  # (T * k, H, W, 3)
        values = self.per_frame(flat)  # (T * k, dim)
        return values.reshape(num, per, -1).mean(axis=1).astype(np.float32)  # (T, dim)
