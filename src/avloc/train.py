"""The training loop: batches, losses, validation, checkpoints, resume, distributed.

One run lives in one folder:
  config.yaml   the settings
  last.pt       model, optimizer, position and RNG state (resume from here)
  best.pt       the weights of the best validation epoch (what `avloc eval` loads)
  log.jsonl     one line per epoch: losses, validation metric, seconds
  metrics.json  validation (best epoch) and test (scored once, with best.pt)

Determinism: batch order and crops are functions of (seed, epoch, batch); dropout
draws from torch's global generator, whose state is checkpointed. A run resumed from
any checkpoint ends with the same weights as an uninterrupted one (on CPU).
Distributed: under torchrun every rank builds the same global batch and takes its
own slice; gradients are averaged by DistributedDataParallel; rank 0 alone writes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from avloc.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from avloc.config import Config, config_from_dict
from avloc.data import Dataset, load_dataset
from avloc.data.batching import PairBatchSampler, collate
from avloc.errors import AvlocError
from avloc.evaluate import evaluate_split, selection_metric
from avloc.io import write_json_atomic
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
    cuda = torch.cuda.is_available() and device_setting in ("auto", "cuda")
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


class StopRequested(Exception):
    pass


@contextmanager
def stop_on_signals():
    """SIGINT/SIGTERM set a flag; the loop saves at the next batch and stops cleanly."""
    flag = {"stop": False}

    def handler(signum, frame):  # noqa: ARG001
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
        torch.manual_seed(cfg.train.seed)
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

    # ---- checkpoints -------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "classes": list(self.ds.classes),
            "feature_dims": list(self.ds.feature_dims),
            "task": self.ds.task,
            "snippet_seconds": self.ds.snippet_seconds,
            "extractors": getattr(self.ds, "extractors", None),
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
                         "history": p.history},
            "rng": {"torch": torch.get_rng_state()},
        }, keep_previous=True)

    def save_best(self) -> None:
        if self.dist.main:
            save_checkpoint(self.out / "best.pt", {**self._meta(), "model": self.model.state_dict(),
                                                   "epoch": self.progress.epoch})

    def restore(self) -> None:
        """Continue from last.pt, or from last.pt.prev when last.pt does not load."""
        ckpt, errors = None, []
        for name in ("last.pt", "last.pt.prev"):
            path = self.out / name
            if not path.exists():
                continue
            try:
                ckpt = read_checkpoint(path)
                break
            except AvlocError as e:
                errors.append(str(e))
                print(f"avloc: warning: {e}; trying the previous checkpoint")
        if ckpt is None:
            detail = f" ({errors[-1]})" if errors else ""
            raise AvlocError(f"{self.out}: no checkpoint to resume from{detail}")
        check_compatible(self.ds, ckpt, str(self.out))
        self.model.load_state_dict(ckpt["model"])
        self.optim.load_state_dict(ckpt["optimizer"])
        p = ckpt["progress"]
        self.progress = Progress(p["epoch"], p["batch"], p["step"], p["best_metric"],
                                 p["best_epoch"], list(p["history"]))
        torch.set_rng_state(ckpt["rng"]["torch"])

    # ---- the loop ----------------------------------------------------------------------
    def train_step(self, epoch: int, index: int, groups: list[np.ndarray]) -> dict[str, float]:
        cfg = self.cfg
        videos = self.ds.splits["train"]
        mine = groups[self.dist.rank]
        crops = [np.random.default_rng([cfg.train.seed, epoch, int(i)]) for i in mine]
        batch = collate([videos[i] for i in mine], cfg.data.max_seqlen, crops).to(self.device)
        self.net.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.train.amp):
            out = self.net(batch.audio, batch.visual, batch.mask)
        out = {k: v.float() for k, v in out.items()}
        loss, parts = total_loss(out, batch.mask, batch.labels, cfg.loss)
        if not torch.isfinite(loss):
            self.save_last()
            names = ", ".join(videos[i].vid for i in mine[:5])
            raise AvlocError(
                f"non-finite loss at step {self.progress.step + 1} (epoch {epoch + 1}, batch "
                f"{index + 1}; videos {names}{', ...' if len(mine) > 5 else ''}); "
                f"last good state saved in {self.out / 'last.pt'}"
            )
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def validate(self) -> dict[str, Any] | None:
        if not self.ds.splits.get("val"):
            return None
        metrics, _ = evaluate_split(self.model, self.ds, "val", self.cfg, self.device)
        return metrics

    def run_epoch(self, epoch: int, flag: dict[str, bool]) -> dict[str, float]:
        batches = self.sampler.epoch(epoch)
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(total=len(batches), initial=self.progress.batch, desc=f"epoch {epoch + 1}",
                   leave=False, disable=not (self.cfg.train.progress and self.dist.main))
        for index in range(self.progress.batch, len(batches)):
            if flag["stop"]:
                self.save_last()
                raise StopRequested
            parts = self.train_step(epoch, index, batches[index])
            for k, v in parts.items():
                sums[k] = sums.get(k, 0) + v
            self.progress.batch = index + 1
            self.progress.step += 1
            bar.update(1)
            every = self.cfg.train.checkpoint_every
            if every and self.progress.step % every == 0 and index + 1 < len(batches):
                self.save_last()
        bar.close()
        n = max(len(batches), 1)
        return {k: float(v) / n for k, v in sums.items()}

    def end_epoch(self, epoch: int, losses: dict[str, float], seconds: float) -> None:
        p = self.progress
        p.epoch, p.batch = epoch + 1, 0
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
        with stop_on_signals() as flag:
            for epoch in range(self.progress.epoch, self.cfg.train.epochs):
                t0 = time.perf_counter()
                losses = self.run_epoch(epoch, flag)
                self.end_epoch(epoch, losses, time.perf_counter() - t0)
                if self.dist.world > 1:
                    dist.barrier()


def format_log_line(record: dict[str, Any], metric: str) -> str:
    losses = " ".join(f"{k[5:]} {v:.4f}" for k, v in record.items() if k.startswith("loss_"))
    val = record.get(f"val_{metric}")
    val_text = f" | val {metric} {val:.4f}" if val is not None else ""
    return f"epoch {record['epoch']:3d} | {losses}{val_text} | {record['seconds']:.1f}s"


def write_config(cfg: Config, out: Path) -> None:
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def final_metrics(trainer: Trainer) -> dict[str, Any]:
    """Validation at the best epoch, then the test split scored once with best.pt."""
    from avloc.checkpoint import model_from_checkpoint

    result: dict[str, Any] = {"best_epoch": trainer.progress.best_epoch,
                              "select_metric": trainer.metric_name,
                              "history": trainer.progress.history}
    best = read_checkpoint(trainer.out / "best.pt")
    model, _ = model_from_checkpoint(best)
    model.to(trainer.device)
    for split in ("val", "test"):
        if trainer.ds.splits.get(split):
            result[split], _ = evaluate_split(model, trainer.ds, split, trainer.cfg, trainer.device)
    return result


def train(
    cfg: Config, data_root: str | Path | None, out: str | Path, resume: bool = False,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run in `out`; returns the metrics written to metrics.json."""
    out = Path(out)
    d, device = setup_distributed(cfg.train.device)
    if resume:
        saved = out / "config.yaml"
        if not saved.exists():
            raise AvlocError(f"{out}: not a run folder (no config.yaml) to resume")
        cfg = config_from_dict(yaml.safe_load(saved.read_text()))
    elif (out / "last.pt").exists():
        raise AvlocError(f"{out}: already holds a run; use --resume {out} or another --out")
    ds = dataset if dataset is not None else load_dataset(cfg.data, data_root)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_config(cfg, out)
    trainer = Trainer(cfg, ds, out, device, d)
    if resume:
        trainer.restore()
    try:
        trainer.fit()
    except StopRequested:
        raise AvlocError(f"stopped by signal; resume with: avloc train --resume {out}") from None
    if not d.main:
        return {}
    metrics = final_metrics(trainer)
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


__all__ = ["train", "Trainer", "check_compatible", "atomic_torch_save"]
