"""Lazy imports of the optional `video` extra, so `import avloc` never needs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from avloc.errors import AvlocError

INSTALL_HINT = "feature extraction needs `pip install avloc[video]`"


def need(module: str) -> ModuleType:
    """Import `module` or raise the one-line install hint (the CLI prints it and exits)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise AvlocError(f"{INSTALL_HINT} (missing Python module {module!r})") from err
