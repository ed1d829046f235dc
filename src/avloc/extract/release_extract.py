"""What the release protocols' extractors share: their weight files, VGGish (both AVE and
LLP embed one-second log-mel examples with it), their record in `meta`, and batching of
a stream of picked frames through a network.

An extractor is a class built as Class(weights_dir, batch_size) with
`extract(path) -> store.Extracted` (extract.protocols names one per release).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config.protocols import Protocol
from avloc.extract.audio import VGGISH_SOURCE, VggishBackend
from avloc.extract.grid import num_snippets
from avloc.extract.release_decode import FrameClock
from avloc.extract.store import FORMAT_VERSION
from avloc.extract.weights import WEIGHTS_ENV, find_weights
from avloc.util.errors import AvlocError


def weight_file(protocol: Protocol, names: tuple[str, ...], source: str,
                folder: str | Path | None) -> Path:
    """The first of `names` found in `folder` (else $AVLOC_WEIGHTS); else one line saying
    which file the protocol needs and where it was looked for."""
    reasons = []
    for name in names:
        found = find_weights(name, folder)
        if isinstance(found, Path):
            return found
        reasons.append(found)
    where = f"--weights DIR or ${WEIGHTS_ENV}"
    raise AvlocError(f"protocol {protocol.name} needs {' or '.join(names)} ({source}) in {where} "
                     f"({reasons[0]}); see docs/extraction.md")


def vggish(protocol: Protocol, folder: str | Path | None) -> VggishBackend:
    """VGGish from vggish.pth (torchvggish's layout), as the back-end loads it."""
    return VggishBackend(weight_file(protocol, ("vggish.pth",), VGGISH_SOURCE, folder))


def snippets(clock: FrameClock, protocol: Protocol) -> int:
    """T: the video's whole snippets on the protocol's grid (extract.grid's rule)."""
    return num_snippets(clock.duration, protocol.snippet_seconds)


def release_meta(path: Path, protocol: Protocol, clock: FrameClock, audio: np.ndarray,
                 visual: np.ndarray, has_audio: bool, **facts: Any) -> dict[str, Any]:
    """The .npz meta of a protocol's file: the settings that define it (store.SETTING_KEYS)
    and the video's facts."""
    return dict(
        format_version=FORMAT_VERSION, protocol=protocol.name,
        snippet_seconds=protocol.snippet_seconds, video=path.name, num_snippets=len(audio),
        audio_dim=int(audio.shape[1]), visual_dim=int(visual.shape[1]),
        duration=round(clock.duration, 6), fps=round(clock.fps, 6), has_audio=has_audio,
        **facts,
    )  # fmt: skip


def batched(frames: Iterable[np.ndarray], size: int,
            net: Callable[[np.ndarray], torch.Tensor]) -> Iterator[np.ndarray]:
    """net(stacked frames) for each `size` consecutive frames (the last batch shorter)."""
    batch: list[np.ndarray] = []
    with torch.inference_mode():
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield net(np.stack(batch)).float().numpy()
                batch = []
        if batch:
            yield net(np.stack(batch)).float().numpy()

