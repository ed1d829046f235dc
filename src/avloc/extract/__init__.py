"""Feature extraction: raw video files -> per-snippet audio and visual features.

Public API (the CLI's `avloc extract` and `avloc localize` call these):
- extract_folder(inputs, out_dir, ...) -> ExtractSummary: one .npz per video.
- extract_video(path, ...) -> (audio (T, D_a), visual (T, D_v), meta): one video in memory.
- read_features(path) -> (audio, visual, meta): read one .npz back.
- make_audio_backend / make_visual_backend: load a back-end once, reuse it across videos.

Decoding and the networks need the optional `video` extra (PyAV, onnxruntime, ...);
they are imported only when used, so `import avloc.extract` works without it.
docs/extraction.md describes back-ends, alignment rules, weight files and the layout.

Modules: run (batch and single-video extraction), decode (frames and 16 kHz audio on
the snippet grid), grid (snippet counts, sample instants, patch pooling), melspec (the
log-mel frontend), audio / visual (the back-end interfaces and back-ends), backends
(back-ends by name), nets (VGGish, ResNet-152), yamnet (the ONNX export), weights
(optional packages and weight files), store (the .npz format).

The release protocols (`--protocol`, table config.protocols): protocol_ave and
protocol_llp (the extractors), release_extract (what they share), release_grid (the
releases' sampling arithmetic), release_decode (decoding as FFmpeg's tools did),
release_audio (VGGish's inputs as the releases framed them), release_nets (VGG-19,
R(2+1)D-18).
"""

from avloc.extract.backends import (
    AUDIO_BACKENDS,
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    DIMS,
    VISUAL_BACKENDS,
    make_audio_backend,
    make_visual_backend,
)
from avloc.extract.run import ExtractSummary, extract_folder, extract_video
from avloc.extract.store import read_features

__all__ = [
    "AUDIO_BACKENDS",
    "DEFAULT_AUDIO",
    "DEFAULT_VISUAL",
    "DIMS",
    "VISUAL_BACKENDS",
    "ExtractSummary",
    "extract_folder",
    "extract_video",
    "make_audio_backend",
    "make_visual_backend",
    "read_features",
]
