"""Small file helpers shared by the commands (metrics, results, run records)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from avloc.errors import AvlocError


def _to_builtin(obj: Any) -> Any:
    """json.dump fallback: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write `obj` as JSON so that `path` is either the old file or the complete new one.

    The text goes to a temporary file in the same folder, is flushed to disk, then
    renamed over `path` (os.replace is atomic on POSIX and Windows), so an interrupted
    run never leaves a truncated metrics or results file behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise AvlocError(f"{path}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=indent, default=_to_builtin)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise AvlocError(f"{path}: cannot write ({e.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
