"""A run's state in its folder, written by training: checkpoints, position, RNG state, the
lock, and how a resume reconciles them after a kill at any moment.

Every file is written to a temporary name and renamed (avloc.util.io), so a reader or a
resume only ever sees an old or a complete new file; `RunFolder.restore` then reconciles
best.pt and log.jsonl with the checkpoint it resumes from (docs/reliability.md). The
folder's files and how they are read: avloc.runs.layout.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from avloc.checkpoint import (
    check_compatible,
    checkpoint_header,
    read_checkpoint,
    save_checkpoint,
)
from avloc.config import Config
from avloc.data.base import Dataset
from avloc.runs.layout import BEST, CONFIG, DATA, LAST, LOCK, LOG, PREVIOUS, RUN_FILES
from avloc.util.errors import AvlocError, first_line
from avloc.util.io import write_text_atomic

TEMPORARY = ("last", "best", "log", "config", "metrics")  # .<name>.*.tmp left by a kill


@dataclass
class Progress:
    """Where a run is; saved in last.pt as `to_dict()`."""

    epoch: int = 0  # epochs fully done
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps in all
    best_metric: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)  # log.jsonl's records
    # the current epoch's loss sums and seconds so far, so that a run resumed mid-epoch
    # logs the same epoch averages as an uninterrupted one
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: float = 0.0

    OPTIONAL = ("sums", "seconds")  # absent from checkpoints of older versions

    def to_dict(self) -> dict[str, Any]:
        """Plain data (loads with weights_only); the sums as CPU tensors."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["sums"] = {k: v.detach().cpu() for k, v in self.sums.items()}
        return out

    @classmethod
    def from_dict(cls, saved: dict[str, Any], device: torch.device) -> Progress:
        """Inverse of `to_dict`, the sums on `device`; a missing or malformed entry raises
        KeyError, TypeError or ValueError."""
        p = cls(**{f.name: saved[f.name] for f in fields(cls)
                   if f.name in saved or f.name not in cls.OPTIONAL})
        for f in fields(p):
            cast = {"int": int, "float": float}.get(str(f.type))
            if cast is not None:
                setattr(p, f.name, cast(getattr(p, f.name)))
        p.history = list(p.history)
        p.sums = {k: v.to(device) for k, v in dict(p.sums).items()}
        return p


# ---- random generators ----------------------------------------------------------------
def seed_generators(seed: int) -> None:
    """Seed every global generator a run draws from: torch's (weight init, dropout); NumPy's
    and Python's, for code added later (augmentations)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every random generator a training step could draw from, as weights_only-safe data.

    Only torch's generators are used today (dropout); NumPy's and Python's global ones
    are kept too so that code added later (augmentations) still resumes exactly.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`; generators missing from an older checkpoint are left alone."""
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    if "python" in state:
        py = state["python"]
        random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ---- the folder ---------------------------------------------------------------------------
def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a best.pt was saved at; None when it is missing or does not load."""
    try:
        epoch = read_checkpoint(path).get("epoch") if path.is_file() else None
    except AvlocError:
        return None
    return epoch if isinstance(epoch, int) else None


class RunFolder:
    """The files of one run. `main`: this process writes (rank 0); the others only read."""

    def __init__(self, out: Path, main: bool = True) -> None:
        self.out, self.main = Path(out), main

    def check_new(self) -> None:
        """A new run must not land on an old one's files."""
        if any((self.out / name).exists() for name in RUN_FILES):
            raise AvlocError(f"{self.out}: already holds a run; use --resume {self.out} or "
                             "another --out")

    def start(self, cfg: Config, data_root: str | Path | None) -> None:
        """config.yaml, and data.txt when the run trains on a dataset folder."""
        if not self.main:
            return
        self.save_config(cfg)
        if data_root is not None:
            write_text_atomic(self.out / DATA, f"{Path(data_root).resolve()}\n")

    def save_config(self, cfg: Config) -> None:
        if self.main:
            write_text_atomic(self.out / CONFIG,
                              yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def save_last(self, cfg: Config, ds: Dataset, model: torch.nn.Module,
                  optim: torch.optim.Optimizer, progress: Progress) -> None:
        """last.pt: everything a resume needs (the previous one kept as last.pt.prev)."""
        if self.main:
            save_checkpoint(self.out / LAST, {
                **checkpoint_header(cfg, ds),
                "model": model.state_dict(),
                "optimizer": optim.state_dict(),
                "progress": progress.to_dict(),
                # every generator; a learning-rate scheduler, if one is added, goes here too
                "rng": rng_state(),
            }, keep_previous=True)

    def save_best(self, cfg: Config, ds: Dataset, model: torch.nn.Module, epoch: int) -> None:
        """best.pt.prev keeps the previous best: `restore` goes back to it when a kill
        came between this write and the next last.pt (the epoch is then replayed)."""
        if self.main:
            save_checkpoint(self.out / BEST, {**checkpoint_header(cfg, ds),
                                                   "model": model.state_dict(), "epoch": epoch},
                            keep_previous=True)

    def append_log(self, record: dict[str, Any]) -> None:
        if self.main:
            with open(self.out / LOG, "a") as f:
                f.write(json.dumps(record) + "\n")

    def restore(self, ds: Dataset, model: torch.nn.Module, optim: torch.optim.Optimizer,
                device: torch.device) -> Progress | None:
        """Continue from last.pt, or from last.pt.prev when last.pt does not load: model,
        optimizer and generators loaded, the position returned.

        A checkpoint that fails to load or does not fit is reported; once the previous one
        has loaded, the bad one is moved aside as `<name>.bad` (so the next save cannot
        rotate it over the good `.prev`). Returns None when the folder holds no checkpoint
        at all (killed before the first save): training then starts from the beginning,
        which the same seed makes identical to an uninterrupted run.
        """
        errors, bad = [], []
        for name in (LAST, LAST + PREVIOUS):
            path = self.out / name
            if not path.exists():
                continue
            try:
                progress = _apply(read_checkpoint(path), path, ds, model, optim, device)
            except AvlocError as e:
                errors.append(str(e))
                bad.append(path)
                print(f"avloc: warning: {e}; trying the previous checkpoint", flush=True)
                continue
            if self.main:
                for b in bad:
                    os.replace(b, b.with_name(b.name + ".bad"))
                self.reconcile(progress)
            return progress
        if errors:
            raise AvlocError(f"{self.out}: no loadable checkpoint to resume from ({errors[-1]})")
        return None

    def reconcile(self, p: Progress) -> None:
        """Make best.pt and log.jsonl agree with the checkpoint being resumed.

        A kill between writing best.pt and last.pt leaves a best.pt from an epoch that
        will now be replayed: go back to best.pt.prev. log.jsonl lines of replayed
        epochs are dropped (the log is rewritten from the checkpoint's history), and
        temporary files of interrupted writes are removed.
        """
        for tmp in self.out.glob(".*.tmp"):
            if tmp.name.split(".")[1] in TEMPORARY:
                tmp.unlink(missing_ok=True)
        best, prev = self.out / BEST, self.out / (BEST + PREVIOUS)
        if checkpoint_epoch(best) != p.best_epoch:
            if p.best_epoch >= 0 and checkpoint_epoch(prev) == p.best_epoch:
                os.replace(prev, best)
            else:
                best.unlink(missing_ok=True)
                if p.best_epoch >= 0:  # both lost (deleted by hand?): pick a best afresh
                    print(f"avloc: warning: {best} of epoch {p.best_epoch} is missing; "
                          "the best epoch is chosen again from here on", flush=True)
                    p.best_metric, p.best_epoch = -math.inf, -1
        log = "".join(json.dumps(r) + "\n" for r in p.history)
        write_text_atomic(self.out / LOG, log)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One process per run folder: a requeued job resuming a run whose first process
        still lives would interleave two runs' checkpoints. The lock dies with its process
        (even on SIGKILL); where locks are unsupported (Windows, some network file systems)
        the run goes on without one."""
        try:
            import fcntl
        except ImportError:
            fcntl = None
        if not self.main or fcntl is None:
            yield
            return
        with open(self.out / LOCK, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AvlocError(f"{self.out}: in use by another avloc process") from None
            except OSError:
                pass
            yield


def _apply(ckpt: dict[str, Any], path: Path, ds: Dataset, model: torch.nn.Module,
           optim: torch.optim.Optimizer, device: torch.device) -> Progress:
    """Load model, optimizer and generators; return the position. A mismatch is an
    AvlocError naming the file."""
    check_compatible(ds, ckpt, str(path))
    try:
        model.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optimizer"])
        progress = Progress.from_dict(ckpt["progress"], device)
        set_rng_state(ckpt["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise AvlocError(
            f"{path}: does not fit this run ({type(e).__name__}: {first_line(e)})"
        ) from None
    return progress
