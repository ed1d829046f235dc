"""Small file helpers shared by the commands (metrics, results, run records), and the one
reader of `.npy` files (`load_npy`), which never runs code from the file."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from avloc.util.errors import AvlocError

try:  # NumPy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core import multiarray as _multiarray
except ImportError:  # NumPy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]


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


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Python 3 pickles bytes as `_codecs.encode(text, 'latin1')` under protocol 2 (the
    real ActivityNet 1.2 labels_all.npy does); only that use of _codecs.encode is served."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not bytes")
    return text.encode("latin1")


# The only globals a pickled NumPy object array of numbers, strings, lists and arrays
# refers to (W-TALC's .npy files: checked on the real ActivityNet 1.2 and THUMOS'14
# ones). Strings, numbers, lists, tuples and dicts need no global at all.
NPY_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    (module, name): obj
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")  # NumPy 1.x, 2.x names
    for name, obj in (("_reconstruct", _multiarray._reconstruct), ("scalar", _multiarray.scalar))
}
NPY_PICKLE_GLOBALS |= {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                       ("_codecs", "encode"): _latin1_bytes}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain data only: any other class or function a pickle
    names (os.system, builtins.eval, ...) is refused before it can be called."""

    def __init__(self, file: IO[bytes], path: Path):
        # encoding="bytes": W-TALC's files are Python 2 pickles; their str stay bytes
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return NPY_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise AvlocError(
                f"{self.path}: refused to unpickle {module}.{name} (a .npy object array may "
                "only hold NumPy arrays, numbers and strings; this file could run code)"
            ) from None


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    return shape, dtype


def load_npy(path: str | Path) -> np.ndarray:
    """Read a .npy file without ever running code from it; any problem is one AvlocError.

    Numeric and string arrays are read with allow_pickle=False. Object arrays (W-TALC's
    annotation and feature files) are unpickled by `_ArrayUnpickler`, which builds NumPy
    arrays, numbers, strings and containers and refuses every other global, so a crafted
    file cannot call os.system or anything else.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            arr = _ArrayUnpickler(f, path).load()
    except AvlocError:
        raise
    except Exception as e:  # a corrupt pickle can raise nearly anything
        raise AvlocError(f"{path}: cannot read as .npy ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        raise AvlocError(f"{path}: the pickled data is not the {shape} array its header announces")
    return arr
