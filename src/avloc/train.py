"""The training loop: batches, losses, validation, checkpoints, resume, distributed.

One run lives in one folder:
  config.yaml   the settings
  last.pt       model, optimizer, position and RNG state (resume from here)
  best.pt       the weights of the best validation epoch (what `avloc eval` loads)
  log.jsonl     one line per epoch: losses, validation metric, seconds
  metrics.json  validation (best epoch) and test (scored once, with best.pt)

Determinism: batch order and crops are functions of (seed, epoch, batch); dropout
draws from torch's global generator, whose state is checkpointed (with CUDA's, NumPy's
and Python's). A run resumed from any checkpoint ends with the same weights, log and
metrics as an uninterrupted one (bit-identical on CPU with the same thread count;
docs/reliability.md lists what was tried). A kill at any moment is safe: every file is
written to a temporary name and renamed, and `restore` reconciles best.pt and log.jsonl
with the checkpoint it resumes from.
Distributed: under torchrun every rank builds the same global batch and takes its
own slice; gradients are averaged by DistributedDataParallel; rank 0 alone writes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from avloc.checkpoint import read_checkpoint, save_checkpoint
from avloc.config import Config, apply_dict, read_yaml, validate
from avloc.data import Dataset, load_dataset
from avloc.data.batching import Batch, PairBatchSampler, collate
from avloc.errors import AvlocError
from avloc.evaluate import evaluate_split, missing_classes_note, selection_metric
from avloc.io import write_json_atomic, write_text_atomic
from avloc.losses import total_loss
from avloc.model import build_model


@dataclass
class Progress:
    epoch: int = 0  # epochs fully done
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps in all
    best_metric: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    # the current epoch's loss sums and seconds so far, so that a run resumed mid-epoch
    # logs the same epoch averages as an uninterrupted one
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_setting: str) -> tuple[Dist, torch.device]:
    """Join the torchrun process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    wants_cuda = device_setting.startswith("cuda")
    if wants_cuda and not torch.cuda.is_available():
        raise AvlocError(f"setting train.device={device_setting}: no CUDA device is available "
                         "(use train.device=auto or cpu)")
    cuda = torch.cuda.is_available() and (device_setting == "auto" or wants_cuda)
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        info = Dist(dist.get_rank(), world, local)
        if cuda:
            torch.cuda.set_device(local)
            return info, torch.device("cuda", local)
        return info, torch.device("cpu")
    if device_setting == "auto":
        return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return Dist(), torch.device(device_setting)


def check_training_data(ds: Dataset) -> None:
    """Every video of every split, before the first step: a bad one found at epoch 50
    would waste the run. The readers check their files in detail; this also covers a
    Dataset built in Python and passed to `train(dataset=...)`."""
    dims, c = None, ds.num_classes
    for split, videos in ds.splits.items():
        for v in videos:
            where = f"dataset {ds.name}, {split} video {v.vid}"
            for name, x in (("audio", v.audio), ("visual", v.visual)):
                if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] > 0
                        and np.issubdtype(x.dtype, np.floating)):
                    raise AvlocError(f"{where}: {name} features must be a (T, D) float array "
                                     f"with T >= 1 (got {getattr(x, 'shape', type(x))})")
                if not np.isfinite(x).all():
                    raise AvlocError(f"{where}: {name} features contain NaN/Inf")
            if v.audio.shape[0] != v.visual.shape[0]:
                raise AvlocError(f"{where}: {v.audio.shape[0]} audio but "
                                 f"{v.visual.shape[0]} visual snippets")
            dims = dims or (v.audio.shape[1], v.visual.shape[1])
            if (v.audio.shape[1], v.visual.shape[1]) != dims:
                raise AvlocError(f"{where}: feature dims differ from the first video's {dims}")
            labels = np.asarray(v.labels)
            if labels.shape != (c,) or not np.isin(labels, (0, 1)).all():
                raise AvlocError(f"{where}: labels must be {c} values of 0 or 1")


def fit_modality(cfg: Config, ds: Dataset, say: bool = True) -> Config:
    """A dataset without audio features (THUMOS'14's I3D) trains the visual-only model of
    the paper's ablations (model.modality=visual model.stages=0), said in one log line; the
    returned settings go into config.yaml and the checkpoints, so `avloc eval` rebuilds it."""
    if ds.has_audio or cfg.model.modality == "visual":
        return cfg
    if cfg.model.modality == "audio":
        raise AvlocError(f"setting model.modality=audio: dataset {ds.name} has no audio features")
    if say:
        print(f"avloc: dataset {ds.name} has no audio features: training the visual-only model "
              "(model.modality=visual model.stages=0)", flush=True)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, modality="visual",
                                                              stages=0))


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


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a best.pt was saved at; None when it is missing or does not load."""
    try:
        epoch = read_checkpoint(path).get("epoch") if path.is_file() else None
    except AvlocError:
        return None
    return epoch if isinstance(epoch, int) else None


class StopRequested(Exception):
    pass


class ReplayCheckedSteps(Exception):
    """A deferred check found a non-finite step: replay from the last verified state."""


@contextmanager
def stop_on_signals():
    """SIGINT/SIGTERM set a flag; the loop saves at the next batch and stops cleanly.

    A second signal (Ctrl-C pressed twice during a long validation) stops at once:
    checkpoints are written atomically, so the last one is intact either way.
    """
    flag = {"stop": False}

    def handler(signum, frame):  # noqa: ARG001
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    old = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, cfg: Config, ds: Dataset, out: Path, device: torch.device, d: Dist):
        self.cfg, self.ds, self.out, self.device, self.dist = cfg, ds, out, device, d
        if not ds.splits.get("train"):
            raise AvlocError(f"dataset {ds.name}: the train split is empty")
        torch.manual_seed(cfg.train.seed)  # dropout; NumPy's and Python's for code added later
        np.random.seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        da, dv = ds.feature_dims
        self.model = build_model(cfg.model, da, dv, ds.num_classes).to(device)
        self.optim = torch.optim.Adam(
            self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        self.net = self.model
        if d.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.train.compile:
            self.net = torch.compile(self.net)
        self.sampler = PairBatchSampler(
            ds.splits["train"], cfg.train.batch_size, cfg.train.similar_pairs, cfg.train.seed,
            groups=d.world,
        )
        self.progress = Progress()
        self.metric_name = selection_metric(cfg, ds.task)
        self.told_missing_classes = False
        # GPU: a helper thread assembles (and pins) the next batch while the device runs
        # this one, and the non-finite check syncs every check_every steps, not every step
        cuda = device.type == "cuda"
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="avloc-batch") if cuda else None
        self.ahead: dict[tuple[int, int], Future] = {}
        # GPU: each check waits for the device (a sync); a non-finite step is still
        # reported exactly (see verify). CPU: every step, which costs nothing there.
        self.check_every = max(1, cfg.train.finite_check_every) if cuda else 1
        self.strict = self.check_every == 1
        self.bad: torch.Tensor | None = None  # some step since the last verify was non-finite
        self.verified: dict[str, Any] | None = None  # the state at the last verify

    # ---- checkpoints -------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "classes": list(self.ds.classes),
            "feature_dims": list(self.ds.feature_dims),
            "task": self.ds.task,
            "snippet_seconds": self.ds.snippet_seconds,
            "extractors": self.ds.extractors,
        }

    def save_last(self) -> None:
        if not self.dist.main:
            return
        p = self.progress
        save_checkpoint(self.out / "last.pt", {
            **self._meta(),
            "model": self.model.state_dict(),
            "optimizer": self.optim.state_dict(),
            "progress": {"epoch": p.epoch, "batch": p.batch, "step": p.step,
                         "best_metric": p.best_metric, "best_epoch": p.best_epoch,
                         "history": p.history, "seconds": p.seconds,
                         "sums": {k: v.detach().cpu() for k, v in p.sums.items()}},
            # every generator; a learning-rate scheduler, if one is added, goes here too
            "rng": rng_state(),
        }, keep_previous=True)

    def save_best(self) -> None:
        """best.pt.prev keeps the previous best: `restore` goes back to it when a kill
        came between this write and the next last.pt (the epoch is then replayed)."""
        if self.dist.main:
            save_checkpoint(self.out / "best.pt", {**self._meta(), "model": self.model.state_dict(),
                                                   "epoch": self.progress.epoch},
                            keep_previous=True)

    def restore(self) -> bool:
        """Continue from last.pt, or from last.pt.prev when last.pt does not load.

        A checkpoint that fails to load or to apply is reported; once the previous one
        has loaded, the bad one is moved aside as `<name>.bad` (so the next save cannot
        rotate it over the good `.prev`). Returns False when the run folder holds no
        checkpoint at all (killed before the first save): training then starts from the
        beginning, which the same seed makes identical to an uninterrupted run.
        """
        errors, bad = [], []
        for name in ("last.pt", "last.pt.prev"):
            path = self.out / name
            if not path.exists():
                continue
            try:
                self._apply(read_checkpoint(path), path)
            except AvlocError as e:
                errors.append(str(e))
                bad.append(path)
                print(f"avloc: warning: {e}; trying the previous checkpoint", flush=True)
                continue
            if self.dist.main:
                for b in bad:
                    os.replace(b, b.with_name(b.name + ".bad"))
                self._reconcile_files()
            return True
        if errors:
            raise AvlocError(f"{self.out}: no loadable checkpoint to resume from ({errors[-1]})")
        return False

    def _apply(self, ckpt: dict[str, Any], path: Path) -> None:
        """Load model, optimizer, position and generators; any mismatch is an AvlocError."""
        check_compatible(self.ds, ckpt, str(path))
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optim.load_state_dict(ckpt["optimizer"])
            p = ckpt["progress"]
            sums = {k: v.to(self.device) for k, v in p.get("sums", {}).items()}
            progress = Progress(int(p["epoch"]), int(p["batch"]), int(p["step"]),
                                float(p["best_metric"]), int(p["best_epoch"]),
                                list(p["history"]), sums, float(p.get("seconds", 0.0)))
            set_rng_state(ckpt["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise AvlocError(
                f"{path}: does not fit this run ({type(e).__name__} {reason})"
            ) from None
        self.progress = progress

    def _reconcile_files(self) -> None:
        """Make best.pt and log.jsonl agree with the checkpoint being resumed.

        A kill between writing best.pt and last.pt leaves a best.pt from an epoch that
        will now be replayed: go back to best.pt.prev. log.jsonl lines of replayed
        epochs are dropped (the log is rewritten from the checkpoint's history), and
        temporary files of interrupted writes are removed.
        """
        for tmp in self.out.glob(".*.tmp"):
            if tmp.name.split(".")[1] in ("last", "best", "log", "config", "metrics"):
                tmp.unlink(missing_ok=True)
        p, best, prev = self.progress, self.out / "best.pt", self.out / "best.pt.prev"
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
        write_text_atomic(self.out / "log.jsonl", log)

    # ---- the loop ----------------------------------------------------------------------
    def load_batch(self, epoch: int, groups: list[np.ndarray]) -> Batch:
        """This process's share of one global batch, on the CPU; pinned when training on
        CUDA, so that the copy to the device does not wait for the device."""
        videos = self.ds.splits["train"]
        mine = groups[self.dist.rank]
        crops = [np.random.default_rng([self.cfg.train.seed, epoch, int(i)]) for i in mine]
        batch = collate([videos[i] for i in mine], self.cfg.data.max_seqlen, crops)
        if self.device.type == "cuda":
            batch = batch.map(torch.Tensor.pin_memory)
        return batch

    def prefetch(self, epoch: int, index: int, batches: list[list[np.ndarray]]) -> None:
        """Start assembling batch `index` in the helper thread (GPU training only)."""
        if self.loader is not None and index < len(batches):
            self.ahead[(epoch, index)] = self.loader.submit(self.load_batch, epoch, batches[index])

    def train_step(self, epoch: int, index: int, groups: list[np.ndarray]) -> dict[str, float]:
        cfg = self.cfg
        videos = self.ds.splits["train"]
        mine = groups[self.dist.rank]
        ready = self.ahead.pop((epoch, index), None)
        batch = ready.result() if ready is not None else self.load_batch(epoch, groups)
        batch = batch.to(self.device)  # non-blocking on CUDA
        self.net.train()
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.train.amp)
        with self.rank_dropout(), amp:
            out = self.net(batch.audio, batch.visual, batch.mask)
        out = {k: v.float() for k, v in out.items()}
        loss, parts = total_loss(out, batch.mask, batch.labels, cfg.loss, batch.casl_classes)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.check_finite(loss, epoch, index, [videos[i].vid for i in mine])
        self.optim.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    @contextmanager
    def rank_dropout(self):
        """Distributed: every process starts from the same seed, so without this all would
        draw the same dropout masks (for different videos). Here the masks come from a
        generator seeded by (seed, step, rank): independent across processes, and a resumed
        run draws the same ones. One process: torch's global generator, as always."""
        if self.dist.world == 1:
            yield
            return
        seed = int(np.random.default_rng([self.cfg.train.seed, self.progress.step,
                                          self.dist.rank]).integers(2**62))
        devices = [self.device.index] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def check_finite(self, loss: torch.Tensor, epoch: int, index: int, vids: list[str]) -> None:
        """Stop before a NaN/Inf reaches the weights, naming the step, batch and videos.

        The loss and every gradient are checked after backward (one device sync; a finite
        loss can still have an infinite gradient). The optimizer has not stepped, so the
        saved last.pt holds the last good weights; under DDP the averaged gradients are
        non-finite on every rank alike, so all ranks stop together.
        """
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        ok = torch.isfinite(loss)
        if grads:
            ok = ok & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if not self.strict:  # deferred (GPU): remembered on the device, no sync; see verify
            self.bad = ~ok if self.bad is None else self.bad | ~ok
            return
        if bool(ok):
            return
        what = "loss" if not bool(torch.isfinite(loss)) else "gradient"
        self.optim.zero_grad(set_to_none=True)
        self.save_last()
        by_id = {v.vid: v for v in self.ds.splits["train"]}
        bad = [i for i in vids if not all(np.isfinite(x).all() for x in
                                          (by_id[i].audio, by_id[i].visual))]
        shown = bad or vids
        names = ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")
        names = f"NaN/Inf features in {names}" if bad else f"videos {names}"
        raise AvlocError(
            f"non-finite {what} at step {self.progress.step + 1} (epoch {epoch + 1}, batch "
            f"{index + 1}; {names}); last good state saved in {self.out / 'last.pt'}"
        )

    def validate(self) -> dict[str, Any] | None:
        if not self.ds.splits.get("val"):
            return None
        metrics, _ = evaluate_split(self.model, self.ds, "val", self.cfg, self.device)
        note = missing_classes_note(metrics, "validation")
        if note and not self.told_missing_classes:  # the same every epoch: said once
            print(f"avloc: {note}", flush=True)
            self.told_missing_classes = True
        return metrics

    # ---- deferred non-finite checks (GPU) -----------------------------------------------
    def snapshot(self) -> None:
        """Keep a device copy of the current state: where a deferred check rolls back to."""
        self.verified = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optim.state_dict()),
            "progress": copy.deepcopy(self.progress),
            "rng": rng_state(),
        }

    def verify(self, everyone: bool = True) -> None:
        """Deferred mode: one sync for the last check_every steps instead of one per step.

        When one of them was non-finite, go back to the state of the last verify and
        replay those steps checking each one (batches, crops and dropout are functions of
        the saved state): the replay stops at the bad step with the usual error, after
        saving the last good state, exactly as a per-step check would. `everyone`: all
        processes call this at the same step (not so when a signal stops them).
        """
        if self.strict:
            return
        if self.bad is not None:
            bad = self.bad.to(torch.int32)
            if self.dist.world > 1 and everyone:  # a rank's own loss may be the only NaN
                dist.all_reduce(bad, op=dist.ReduceOp.MAX)
            self.bad = None
            if bool(bad) and self.verified is not None:
                s = self.verified
                self.model.load_state_dict(s["model"])
                self.optim.load_state_dict(copy.deepcopy(s["optimizer"]))
                self.progress = copy.deepcopy(s["progress"])
                set_rng_state(s["rng"])
                self.strict, self.ahead = True, {}
                raise ReplayCheckedSteps
        self.snapshot()

    def run_epoch(self, epoch: int, flag: dict[str, bool]) -> dict[str, float]:
        """One epoch; on GPU a non-finite step found by `verify` replays from its snapshot."""
        self.strict = self.check_every == 1
        while True:
            try:
                losses = self._run_epoch(epoch, flag)
                break
            except ReplayCheckedSteps:
                continue
        return losses

    def _run_epoch(self, epoch: int, flag: dict[str, bool]) -> dict[str, float]:
        batches = self.sampler.epoch(epoch)
        p = self.progress
        sums = p.sums  # the loss sums of batches done before a resume, else empty
        start, before = time.perf_counter(), p.seconds
        self.verify()  # snapshot at the start
        bar = tqdm(total=len(batches), initial=p.batch, desc=f"epoch {epoch + 1}",
                   leave=False, disable=not (self.cfg.train.progress and self.dist.main))
        try:
            self.prefetch(epoch, p.batch, batches)
            for index in range(p.batch, len(batches)):
                if flag["stop"]:
                    self.verify(everyone=False)
                    p.seconds = before + time.perf_counter() - start
                    self.save_last()
                    raise StopRequested
                self.prefetch(epoch, index + 1, batches)
                parts = self.train_step(epoch, index, batches[index])
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0) + v
                p.batch = index + 1
                p.step += 1
                bar.update(1)
                every = self.cfg.train.checkpoint_every
                if every and p.step % every == 0 and index + 1 < len(batches):
                    self.verify()
                    p.seconds = before + time.perf_counter() - start
                    self.save_last()
                elif p.step % self.check_every == 0:
                    self.verify()
            self.verify()
        finally:
            bar.close()
        p.seconds = before + time.perf_counter() - start
        n = max(len(batches), 1)
        return {k: float(v) / n for k, v in self.mean_over_ranks(sums).items()}

    def mean_over_ranks(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The epoch's loss sums averaged over processes, so that a distributed run logs
        the losses of the whole global batch (equal to one process's with the same data)."""
        if self.dist.world == 1 or not sums:
            return sums
        keys = sorted(sums)
        t = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(self.device)
                         for k in keys])
        dist.all_reduce(t)
        return dict(zip(keys, t / self.dist.world, strict=True))

    def end_epoch(self, epoch: int, losses: dict[str, float], seconds: float) -> None:
        p = self.progress
        p.epoch, p.batch, p.sums, p.seconds = epoch + 1, 0, {}, 0.0
        record: dict[str, Any] = {"epoch": epoch + 1, "step": p.step, "seconds": round(seconds, 3),
                                  **{f"loss_{k}": v for k, v in losses.items()}}
        last = epoch + 1 == self.cfg.train.epochs
        if self.dist.main and ((epoch + 1) % self.cfg.train.eval_every == 0 or last):
            metrics = self.validate()
            if metrics is not None:
                value = float(metrics[self.metric_name])
                record[f"val_{self.metric_name}"] = value
                if value > p.best_metric:
                    p.best_metric, p.best_epoch = value, epoch + 1
                    self.save_best()
            elif last:  # no validation split: the last epoch is the model
                p.best_epoch = epoch + 1
                self.save_best()
        p.history.append(record)
        if self.dist.main:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            print(format_log_line(record, self.metric_name), flush=True)
        self.save_last()

    def fit(self) -> None:
        try:
            with stop_on_signals() as flag:
                for epoch in range(self.progress.epoch, self.cfg.train.epochs):
                    losses = self.run_epoch(epoch, flag)
                    self.end_epoch(epoch, losses, self.progress.seconds)
                    if self.dist.world > 1:
                        dist.barrier()
        finally:
            if self.loader is not None:
                self.loader.shutdown(wait=False, cancel_futures=True)


def format_log_line(record: dict[str, Any], metric: str) -> str:
    losses = " ".join(f"{k[5:]} {v:.4f}" for k, v in record.items() if k.startswith("loss_"))
    val = record.get(f"val_{metric}")
    val_text = f" | val {metric} {val:.4f}" if val is not None else ""
    return f"epoch {record['epoch']:3d} | {losses}{val_text} | {record['seconds']:.1f}s"


def write_config(cfg: Config, out: Path) -> None:
    write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def read_run_config(out: Path) -> Config:
    """The settings a run was started with (its config.yaml, read with safe loading)."""
    saved = out / "config.yaml"
    if not saved.is_file():
        raise AvlocError(f"{out}: not a run folder (no config.yaml) to resume")
    return validate(apply_dict(Config(), read_yaml(saved) or {}, str(saved)))


RUN_FILES = ("config.yaml", "last.pt", "last.pt.prev", "best.pt", "metrics.json")
DATA_FILE = "data.txt"  # the dataset folder a run trains on, so that --resume needs no --data


def remember_data_root(out: Path, data_root: str | Path | None) -> None:
    if data_root is not None:
        write_text_atomic(out / DATA_FILE, f"{Path(data_root).resolve()}\n")


def remembered_data_root(out: Path) -> Path | None:
    """The dataset folder the run in `out` was started on; None for generated data."""
    saved = out / DATA_FILE
    if not saved.is_file():
        return None
    root = Path(saved.read_text().strip())
    if not root.exists():
        raise AvlocError(f"{saved}: the run's dataset folder {root} no longer exists; "
                         "give its new place with --data")
    return root


@contextmanager
def run_lock(out: Path, main: bool):
    """One process per run folder: a requeued job resuming a run whose first process
    still lives would interleave two runs' checkpoints. The lock dies with its process
    (even on SIGKILL); where locks are unsupported (Windows, some network file systems)
    the run goes on without one."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if not main or fcntl is None:
        yield
        return
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AvlocError(f"{out}: in use by another avloc process") from None
        except OSError:
            pass
        yield


def final_metrics(trainer: Trainer) -> dict[str, Any]:
    """Validation at the best epoch, then the test split scored once with best.pt."""
    from avloc.checkpoint import model_from_checkpoint

    result: dict[str, Any] = {"best_epoch": trainer.progress.best_epoch,
                              "select_metric": trainer.metric_name,
                              "history": trainer.progress.history}
    best = read_checkpoint(trainer.out / "best.pt")
    model, _ = model_from_checkpoint(best, str(trainer.out / "best.pt"))
    model.to(trainer.device)
    for split in ("val", "test"):
        if trainer.ds.splits.get(split):
            result[split], _ = evaluate_split(model, trainer.ds, split, trainer.cfg, trainer.device)
    return result


def train(
    cfg: Config, data_root: str | Path | None, out: str | Path, resume: bool = False,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run in `out`; returns the metrics written to metrics.json.

    With resume the settings come from `out/config.yaml` (`cfg` is ignored), and the data
    from the folder the run started on unless `data_root` names another. Nothing is
    written before the data and the model are known to be good, so a bad input leaves
    no half-made run folder behind.
    """
    out = Path(out)
    if resume:
        cfg = read_run_config(out)
        data_root = data_root if data_root is not None else remembered_data_root(out)
    d, device = setup_distributed(cfg.train.device)
    if not resume and any((out / name).exists() for name in RUN_FILES):
        raise AvlocError(f"{out}: already holds a run; use --resume {out} or another --out")
    ds = dataset if dataset is not None else load_dataset(cfg.data, data_root)
    check_training_data(ds)
    cfg = fit_modality(cfg, ds, say=d.main)
    trainer = Trainer(cfg, ds, out, device, d)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    with run_lock(out, d.main):
        if d.main and not resume:
            write_config(cfg, out)
            remember_data_root(out, data_root)
        if resume and not trainer.restore():
            print(f"avloc: {out} has no checkpoint yet; starting from the beginning", flush=True)
        try:
            trainer.fit()
        except StopRequested:
            raise AvlocError(
                f"stopped by signal; resume with: avloc train --resume {out}"
            ) from None
        if not d.main:
            return {}
        metrics = final_metrics(trainer)
        write_json_atomic(out / "metrics.json", metrics)
    return metrics


__all__ = ["train", "Trainer", "check_compatible"]
