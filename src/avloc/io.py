"""Small file helpers shared by the commands (metrics, results, run records)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from avloc.errors import AvlocError


def _to_builtin(obj: Any) -> Any:
    """json.dump fallback: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success flush it to disk and rename it over
    `path` (os.replace is atomic), on any failure delete it. Readers, and a run killed at
    any moment, only ever see the old file or the complete new one."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
    except OSError as e:
        raise AvlocError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # disk full, quota, permissions: the old file is untouched
        Path(tmp).unlink(missing_ok=True)
        raise AvlocError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write `obj` as JSON (NumPy values allowed) with `atomic_open`."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=indent, default=_to_builtin)
        f.write("\n")
