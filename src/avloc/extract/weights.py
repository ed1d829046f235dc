"""Weight files the user supplies (vggish, resnet152): where they are looked for, and loading
them into a plain-torch network with one-line errors instead of tracebacks.

Nothing is ever downloaded: a missing file is an AvlocError saying which file to put where.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from avloc.errors import AvlocError

WEIGHTS_ENV = "AVLOC_WEIGHTS"  # folder searched for <default file name> when no path is given


def resolve_weights(
    backend: str, given: str | Path | None, default_name: str, flag: str, source: str
) -> Path:
    """The weight file of `backend`: `given` if set, else $AVLOC_WEIGHTS/default_name."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise AvlocError(f"{path}: weight file of back-end {backend} does not exist")
        return path
    folder = os.environ.get(WEIGHTS_ENV)
    if folder:
        path = Path(folder).expanduser() / default_name
        if path.is_file():
            return path
        where = f"{path} does not exist"
    else:
        where = f"${WEIGHTS_ENV} is not set"
    raise AvlocError(
        f"back-end {backend} needs its weight file {default_name} ({source}): pass {flag} PATH "
        f"or put it at ${WEIGHTS_ENV}/{default_name} ({where}); see docs/extraction.md"
    )


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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle/zip errors have many types
        raise AvlocError(f"{path}: not a readable torch weight file ({_first(err)})") from err


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _strip(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key
