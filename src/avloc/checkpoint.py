"""Checkpoints: atomic writes, safe loads, and everything `avloc eval` needs.

A checkpoint is a dict of plain data (numbers, strings, lists, dicts, tensors) so it
loads with `torch.load(weights_only=True)`: no pickled objects, no code execution.
Settings are stored as `Config.to_dict()`, not as a dataclass.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from avloc.config import Config, config_from_dict
from avloc.errors import AvlocError
from avloc.model import AVLocModel, build_model

FORMAT = "avloc-checkpoint"
VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, payload: dict[str, Any], keep_previous: bool = False) -> None:
    """Save atomically; with keep_previous the old file survives as `<name>.prev`."""
    payload = {"format": FORMAT, "version": VERSION, **payload}
    if keep_previous and path.exists():
        os.replace(path, path.with_name(path.name + ".prev"))
    atomic_torch_save(payload, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely; a broken or foreign file is a one-line AvlocError."""
    path = Path(path)
    if not path.is_file():
        raise AvlocError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupted, or carrying pickled objects
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AvlocError(f"{path}: not a loadable avloc checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise AvlocError(f"{path}: not an avloc checkpoint")
    return ckpt


def find_checkpoint(run_or_ckpt: str | Path, name: str = "best.pt") -> Path:
    """A run folder means its best checkpoint; a file is taken as it is."""
    p = Path(run_or_ckpt)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise AvlocError(f"{p}: checkpoint not found (train a model with `avloc train` first)")
    return p


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[AVLocModel, Config]:
    cfg = config_from_dict(ckpt["config"])
    da, dv = ckpt["feature_dims"]
    model = build_model(cfg.model, da, dv, len(ckpt["classes"]))
    model.load_state_dict(ckpt["model"])
    return model, cfg


def load_model(run_or_ckpt: str | Path) -> tuple[AVLocModel, Config, dict[str, Any]]:
    """(model in eval mode, settings, the checkpoint dict) from a run folder or a file."""
    ckpt = read_checkpoint(find_checkpoint(run_or_ckpt))
    model, cfg = model_from_checkpoint(ckpt)
    return model.eval(), cfg, ckpt
