"""Checkpoints: atomic writes, safe loads, and everything `avloc eval` needs.

A checkpoint is a dict of plain data (numbers, strings, lists, dicts, tensors) so it
loads with `torch.load(weights_only=True)`: no pickled objects, no code execution.
Settings are stored as `Config.to_dict()`, not as a dataclass.

Writes go to a temporary file in the same folder that is renamed over the old one, so a
kill at any moment leaves either the old or the new file, never a broken one. Each
checkpoint also carries a SHA-256 `checksum` of its contents: PyTorch's zip reader does
not verify its CRCs, so without it a flipped byte in a copied file would load as
silently different weights.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch

from avloc.config import Config, config_from_dict
from avloc.data.base import Dataset
from avloc.model import DTYPES, AVLocModel, build_model
from avloc.util.errors import AvlocError, first_line
from avloc.util.io import atomic_open

FORMAT = "avloc-checkpoint"
VERSION = 2  # 2 added "checksum"; version 1 files (without one) still load
REQUIRED = ("config", "classes", "feature_dims", "model")  # what every checkpoint holds


def _digest(obj: Any, h: Any) -> None:
    """Feed plain data and tensor bytes to `h` in a form that survives a save/load cycle."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        t = t.to_dense() if t.layout != torch.strided else t
        # fresh strides: a size-1 dimension counts as contiguous with any stride (a damaged
        # file can carry 0), and viewing it as bytes needs stride 1
        t = t.clone(memory_format=torch.contiguous_format)
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, any dtype
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():  # pickle keeps insertion order
            _digest(k, h)
            _digest(v, h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _digest(v, h)
    else:  # str, int, float, bool, None, dtype: repr round-trips exactly
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def payload_checksum(payload: dict[str, Any]) -> str:
    """SHA-256 over every entry but `checksum` itself."""
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != "checksum"}, h)
    return h.hexdigest()


def atomic_torch_save(obj: Any, path: Path, keep_previous: bool = False) -> None:
    """torch.save through `avloc.util.io.atomic_open`: never a half-written checkpoint."""
    with atomic_open(path, "wb", keep_previous=keep_previous, what="checkpoint") as f:
        torch.save(obj, f)


def save_checkpoint(path: Path, payload: dict[str, Any], keep_previous: bool = False) -> None:
    """Save atomically; with keep_previous the old file survives as `<name>.prev`.

    The new file is written completely before the old one is moved aside, so the window
    in which `path` is missing is two renames long; a resume (`RunFolder.restore`) then
    uses `.prev`.
    """
    payload = {"format": FORMAT, "version": VERSION, **payload}
    payload["checksum"] = payload_checksum(payload)
    atomic_torch_save(payload, path, keep_previous)


def checkpoint_id(ckpt: dict[str, Any]) -> str:
    """What identifies a checkpoint's contents: its checksum (computed for version 1 files,
    which carry none). Outputs made by a model record it, so a rerun can tell them apart."""
    return str(ckpt.get("checksum") or payload_checksum(ckpt))


def checkpoint_header(cfg: Config, ds: Dataset) -> dict[str, Any]:
    """What every checkpoint of a run holds besides its weights: the settings, and what the
    model needs of the data (classes, feature sizes, task, snippet grid, feature extractors)."""
    return {
        "config": cfg.to_dict(),
        "classes": list(ds.classes),
        "feature_dims": list(ds.feature_dims),
        "task": ds.task,
        "snippet_seconds": ds.snippet_seconds,
        "extractors": ds.extractors,
    }


def check_compatible(ds: Dataset, ckpt: dict[str, Any], source: str) -> None:
    """A checkpoint only runs on data with its classes and feature sizes."""
    dims = list(ds.feature_dims)
    if list(ckpt["feature_dims"]) != dims:
        raise AvlocError(
            f"{source}: trained on features of dims (audio, visual) = "
            f"{tuple(ckpt['feature_dims'])}, "
            f"but the data has {tuple(dims)}"
        )
    if list(ckpt["classes"]) != list(ds.classes):
        raise AvlocError(f"{source}: the data's class list differs from the checkpoint's")
    task = ckpt.get("task")
    if task and (task == "parsing") != (ds.task == "parsing"):
        raise AvlocError(f"{source}: trained on {task} data, but the data is {ds.task} data")


def _check_contents(ckpt: dict[str, Any], path: Path) -> None:
    """Version, checksum, the entries every checkpoint has, finite weights."""
    version = ckpt.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise AvlocError(f"{path}: unknown avloc checkpoint version {version!r}")
    if version > VERSION:
        raise AvlocError(
            f"{path}: written by a newer avloc (checkpoint version {version}; "
            f"this one reads up to {VERSION}); upgrade avloc"
        )
    if version >= 2:
        if ckpt.get("checksum") != payload_checksum(ckpt):
            raise AvlocError(f"{path}: checksum mismatch, the file is corrupted")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise AvlocError(f"{path}: checkpoint lacks {', '.join(missing)}")
    model = ckpt["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise AvlocError(f"{path}: checkpoint entry 'model' is not a dict of named tensors")
    for name, t in model.items():
        if not t.is_floating_point():  # load_state_dict would cast it silently
            dtype = str(t.dtype).removeprefix("torch.")
            raise AvlocError(f"{path}: weight {name} has dtype {dtype}, not floating point")
        if not bool(torch.isfinite(t).all()):
            raise AvlocError(f"{path}: weight {name} contains NaN/Inf")
    dims = ckpt["feature_dims"]  # (D_a, D_v); D_a = 0: trained without audio features
    if not (isinstance(dims, (list, tuple)) and len(dims) == 2
            and all(isinstance(d, int) and d >= 0 for d in dims) and dims[1] > 0):
        raise AvlocError(f"{path}: checkpoint entry feature_dims={dims!r} is not two sizes")
    classes = ckpt["classes"]
    if not (isinstance(classes, (list, tuple)) and classes
            and all(isinstance(c, str) for c in classes)):
        raise AvlocError(f"{path}: checkpoint entry 'classes' is not a list of names")
    if not isinstance(ckpt["config"], dict):
        raise AvlocError(f"{path}: checkpoint entry 'config' is not a mapping of settings")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely; a broken, corrupted or foreign file is a one-line AvlocError.

    weights_only=True refuses pickled objects (a checkpoint from an untrusted source
    cannot run code); the checksum catches bytes changed in transit or on disk.
    """
    path = Path(path)
    if not path.is_file():
        raise AvlocError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning: our verdict follows
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupted, or carrying pickled objects
        raise AvlocError(f"{path}: not a loadable avloc checkpoint ({first_line(e)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise AvlocError(f"{path}: not an avloc checkpoint")
    _check_contents(ckpt, path)
    return ckpt


def find_checkpoint(run_or_ckpt: str | Path, name: str = "best.pt") -> Path:
    """A run folder means its best checkpoint; a file is taken as it is."""
    p = Path(run_or_ckpt)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise AvlocError(f"{p}: checkpoint not found (train a model with `avloc train` first)")
    return p


def model_from_checkpoint(
    ckpt: dict[str, Any], source: str = "checkpoint"
) -> tuple[AVLocModel, Config]:
    """Rebuild the model from its stored settings; a mismatch is an AvlocError naming `source`."""
    try:
        cfg = config_from_dict(ckpt["config"])
    except AvlocError as e:
        raise AvlocError(f"{source}: {e}") from None
    da, dv = ckpt["feature_dims"]
    model = build_model(cfg.model, da, dv, len(ckpt["classes"]), cfg.loss.topk_divisor)
    model = model.to(DTYPES[cfg.train.dtype])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # its first line only names the model class
        raise AvlocError(
            f"{source}: weights do not fit the stored settings ({first_line(e, skip=1)})"
        ) from None
    return model, cfg


def load_model(run_or_ckpt: str | Path) -> tuple[AVLocModel, Config, dict[str, Any]]:
    """(model in eval mode, settings, the checkpoint dict) from a run folder or a file."""
    path = find_checkpoint(run_or_ckpt)
    ckpt = read_checkpoint(path)
    model, cfg = model_from_checkpoint(ckpt, str(path))
    return model.eval(), cfg, ckpt

