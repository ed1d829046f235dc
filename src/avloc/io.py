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


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: json keeps the last of repeated keys; a repeated video id is a bug."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing file, non-UTF-8 text, bad JSON, a repeated key or absurd
    nesting is a one-line AvlocError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AvlocError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise AvlocError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise AvlocError(f"{path}: key {e.args[0]!r} appears twice in one JSON object") from None
    except json.JSONDecodeError as e:
        raise AvlocError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise AvlocError(f"{path}: JSON nested too deeply to be an annotation file") from None


def _to_builtin(obj: Any) -> Any:
    """json.dump fallback: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


@contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", keep_previous: bool = False, what: str = ""
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success flush it to disk and rename it over
    `path` (os.replace is atomic), on any failure delete it. Readers, and a run killed at
    any moment, only ever see the old file or the complete new one. With keep_previous
    the old file is renamed to `<name>.prev` just before (the new one is complete by
    then). `what` names the file in errors ("checkpoint")."""
    path = Path(path)
    label = f"cannot write {what}".rstrip()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
    except OSError as e:
        raise AvlocError(f"{path}: {label} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, path.with_name(path.name + ".prev"))
        os.replace(tmp, path)
    except OSError as e:  # disk full, quota, permissions: the old file is untouched
        Path(tmp).unlink(missing_ok=True)
        raise AvlocError(f"{path}: {label} ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable across a power cut (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
