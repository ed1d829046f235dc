"""Back-ends by name. The defaults need no file from the user; vggish and resnet152 (the
paper's networks) need a weight file; rms and meanrgb are exact diagnostics for tests.

The names are known without importing torch or a network (the CLI's choices); the
back-ends themselves live in avloc.extract.audio and avloc.extract.visual.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from avloc.extract.weights import WEIGHT_FILES
from avloc.util.errors import AvlocError

if TYPE_CHECKING:
    from avloc.extract.audio import AudioBackend
    from avloc.extract.visual import VisualBackend

DEFAULT_AUDIO = "yamnet"
DEFAULT_VISUAL = "efficientnet_lite0"
AUDIO_BACKENDS = ("yamnet", "vggish", "rms")
VISUAL_BACKENDS = ("efficientnet_lite0", "resnet152", "meanrgb")
# Feature sizes, known without loading a network (e.g. to check a checkpoint's inputs).
DIMS = {"yamnet": 1024, "vggish": 128, "rms": 1,
        "efficientnet_lite0": 1280, "resnet152": 2048, "meanrgb": 3}  # fmt: skip


def _check(kind: str, name: str, names: tuple[str, ...], weights: object, flag: str) -> None:
    if name not in names:
        raise AvlocError(f"unknown {kind} back-end {name!r} (choose from {', '.join(names)})")
    if weights is not None and name not in WEIGHT_FILES:
        raise AvlocError(f"{flag} is not used by the {kind} back-end {name} (it needs no file)")


def check_names(
    audio: str, visual: str, audio_weights: object = None, visual_weights: object = None
) -> None:
    """Fail fast on a misspelt back-end or a weight file given to one that takes none."""
    _check("audio", audio, AUDIO_BACKENDS, audio_weights, "--audio-weights")
    _check("visual", visual, VISUAL_BACKENDS, visual_weights, "--visual-weights")


def make_audio_backend(
    name: str = DEFAULT_AUDIO, weights: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> AudioBackend:
    """Build (load) the audio back-end `name`; `weights` (else its file in weights_dir, else
    in $AVLOC_WEIGHTS) only for vggish."""
    _check("audio", name, AUDIO_BACKENDS, weights, "--audio-weights")
    from avloc.extract import audio

    if name == "yamnet":
        return audio.YamnetBackend()
    if name == "vggish":
        return audio.VggishBackend(weights, weights_dir)
    return audio.RmsBackend()


def make_visual_backend(
    name: str = DEFAULT_VISUAL, weights: str | Path | None = None, batch_size: int = 32,
    weights_dir: str | Path | None = None,
) -> VisualBackend:
    """Build (load) the visual back-end `name`; `weights` (else its file in weights_dir, else
    in $AVLOC_WEIGHTS) only for resnet152."""
    _check("visual", name, VISUAL_BACKENDS, weights, "--visual-weights")
    from avloc.extract import visual

    if name == "efficientnet_lite0":
        return visual.EfficientNetLite0Backend(batch_size)
    if name == "resnet152":
        return visual.ResNet152Backend(weights, batch_size, weights_dir)
    return visual.MeanRgbBackend(batch_size)
