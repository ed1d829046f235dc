"""The training loop: steps, epochs, the end of an epoch, validation and the best
checkpoint (`Trainer`); avloc.train.start starts and resumes runs with it.

Determinism: batch order and crops are functions of (seed, epoch, batch); dropout draws
from torch's global generator, whose state is checkpointed (with CUDA's, NumPy's and
Python's). A run resumed from any checkpoint ends with the same weights, log and
metrics as an uninterrupted one (bit-identical on CPU with the same thread count;
docs/reliability.md lists what was tried).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avloc.config import Config
from avloc.data import Dataset
from avloc.data.batching import (
    Batch,
    BatchPrefetcher,
    PairBatchSampler,
    crop_length,
    load_share,
)
from avloc.losses import training_loss
from avloc.model import DTYPES, build_model
from avloc.runs.state import Progress, RunFolder
from avloc.scoring.evaluate import (
    evaluate_split,
    metric_value,
    selection_metric,
    selection_value,
)
from avloc.scoring.reports import missing_classes_note
from avloc.train import distributed
from avloc.train.dashboard import Dashboard
from avloc.train.distributed import Dist
from avloc.train.finite import FiniteChecks, ReplayCheckedSteps, nonfinite_error
from avloc.util.errors import AvlocError
from avloc.util.progress import Heartbeat, eta_text, interactive
from avloc.util.signals import StopRequested, stop_requests


class Trainer:
    """One process's training of one run: model, optimizer, batches and position."""

    def __init__(
        self, cfg: Config, ds: Dataset, out: Path, device: torch.device, d: Dist,
        finite: FiniteChecks | None = None, prefetch: bool | None = None,
    ) -> None:
        """Build the model (its initial weights drawn from torch's global generator: seed it
        first, `seed_generators`), the optimizer and the batch sampler. `finite`: the NaN/Inf
        checks (default: every step on a CPU, every train.finite_check_every steps on CUDA);
        `prefetch`: assemble batches in a helper thread (default: on CUDA)."""
        if not ds.splits.get("train"):
            raise AvlocError(f"dataset {ds.name}: the train split is empty")
        self.cfg, self.ds, self.out, self.device, self.dist = cfg, ds, Path(out), device, d
        self.folder = RunFolder(self.out, d.main)
        da, dv = ds.feature_dims
        self.model = build_model(cfg.model, da, dv, ds.num_classes,
                                 cfg.loss.topk_divisor).to(device, DTYPES[cfg.train.dtype])
        self.optim = torch.optim.Adam(
            self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        self.net = distributed.wrap_model(self.model, d, device)
        if cfg.train.compile:
            self.net = torch.compile(self.net)
        # CASL's pairs only when its loss is on: otherwise they would only add videos
        # drawn by class to each batch (more steps per epoch, rare classes oversampled)
        pairs = cfg.train.similar_pairs if cfg.loss.alpha else 0
        self.sampler = PairBatchSampler(
            ds.splits["train"], cfg.train.batch_size, pairs, cfg.train.seed,
            groups=d.world, bucket=cfg.data.batching == "bucket",
        )
        cuda = device.type == "cuda"
        self.finite = finite or FiniteChecks(cfg.train.finite_check_every if cuda else 1, d.world)
        self.batches = BatchPrefetcher(self._load, cuda if prefetch is None else prefetch)
        self.progress = Progress()
        self.metric_name = selection_metric(cfg, ds.task)
        self.told_missing_classes = False
        self.dashboard: Dashboard | None = None  # TensorBoard events, opened by fit()

    # ---- checkpoints (RunFolder) ----------------------------------------------------------
    def save_last(self) -> None:
        self.folder.save_last(self.cfg, self.ds, self.model, self.optim, self.progress)

    def save_best(self) -> None:
        self.folder.save_best(self.cfg, self.ds, self.model, self.progress.epoch)

    def restore(self) -> bool:
        """Continue from the run folder's last checkpoint; False when it holds none yet."""
        progress = self.folder.restore(self.ds, self.model, self.optim, self.device)
        if progress is not None:
            self.progress = progress
        return progress is not None

    # ---- one step -------------------------------------------------------------------------
    def _load(self, epoch: int, groups: list[np.ndarray]) -> Batch:
        videos, data = self.ds.splits["train"], self.cfg.data
        crop = crop_length(videos, groups, data.batching, data.max_seqlen)
        return load_share(videos, groups[self.dist.rank], self.cfg.train.seed, epoch, crop,
                          pin=self.device.type == "cuda")

    def rank_dropout(self) -> AbstractContextManager[None]:
        """Dropout masks of this process and step (`distributed.rank_dropout`)."""
        return distributed.rank_dropout(self.dist, self.cfg.train.seed, self.progress.step,
                                        self.device)

    def train_step(
        self, epoch: int, index: int, groups: list[np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """One optimizer step on batch `index` of `epoch` (`groups`: each process's video
        indices). Returns the batch's total loss L (Eq. 10) as "loss" and its parts, 0-d
        tensors on the device, detached (reading them waits for the device). A non-finite
        step checked now saves the last good state and stops with `nonfinite_error`."""
        batch = self.batches.get(epoch, index, groups)  # on the CPU
        batch = batch.to(self.device, DTYPES[self.cfg.train.dtype])  # non-blocking on CUDA
        self.net.train()
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.train.amp)
        with self.rank_dropout(), amp:
            out = self.net(batch.audio, batch.visual, batch.mask)
        loss, parts = training_loss(out.full_precision(), batch.mask, batch.labels,
                                    self.cfg.loss, batch.casl_classes, batch.modality_labels,
                                    batch.snippet_targets)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        what = self.finite.after_backward(loss, self.model)
        if what is not None:  # the optimizer has not stepped: last.pt gets the last good state
            self.optim.zero_grad(set_to_none=True)
            self.save_last()
            videos = [self.ds.splits["train"][i] for i in groups[self.dist.rank]]
            raise nonfinite_error(what, self.progress.step + 1, epoch, index, videos,
                                  self.out / "last.pt")
        self.optim.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    # ---- one epoch ------------------------------------------------------------------------
    def run_epoch(self, epoch: int, flag: dict[str, bool]) -> dict[str, float]:
        """The epoch's mean losses. A non-finite step found by a deferred check replays the
        steps since the last verified state, checking each (FiniteChecks)."""
        self.finite.start_epoch()
        while True:
            try:
                return self._run_epoch(epoch, flag)
            except ReplayCheckedSteps as replay:
                self.progress = replay.progress
                self.batches.forget()
                if self.dashboard is not None:
                    self.dashboard.forget_after(replay.progress.step)

    def _verify(self, everyone: bool = True) -> None:
        self.finite.verify_and_snapshot(self.model, self.optim, self.progress, everyone)

    def _run_epoch(self, epoch: int, flag: dict[str, bool]) -> dict[str, float]:
        batches = self.sampler.epoch(epoch)
        p = self.progress
        sums = p.sums  # the loss sums of batches done before a resume, else empty
        start, before = time.perf_counter(), p.seconds
        self._verify()  # the state a bad window rolls back to
        shown = self.cfg.train.progress and self.dist.main
        bar = tqdm(total=len(batches), initial=p.batch, desc=f"epoch {epoch + 1}",
                   leave=False, disable=not (shown and interactive()))
        beat = Heartbeat(self.cfg.train.progress_minutes if shown and bar.disable else 0)
        try:
            self.batches.prefetch(epoch, p.batch, batches)
            for index in range(p.batch, len(batches)):
                if flag["stop"]:
                    self._verify(everyone=False)
                    p.seconds = before + time.perf_counter() - start
                    self.save_last()
                    raise StopRequested
                self.batches.prefetch(epoch, index + 1, batches)
                parts = self.train_step(epoch, index, batches[index])
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0) + v
                p.batch, p.step = index + 1, p.step + 1
                bar.update(1)
                if self.dashboard is not None:
                    self.dashboard.step(p.step, parts)
                if beat.due():
                    self._progress_line(epoch, len(batches), before + time.perf_counter() - start)
                every = self.cfg.train.checkpoint_every
                if every and p.step % every == 0 and index + 1 < len(batches):
                    self._verify()
                    p.seconds = before + time.perf_counter() - start
                    self.save_last()
                elif self.finite.due(p.step):
                    self._verify()
            self._verify()
        finally:
            bar.close()
        if self.dashboard is not None:
            self.dashboard.flush()
        p.seconds = before + time.perf_counter() - start
        sums = distributed.mean_over_ranks(sums, self.dist, self.device)
        return {k: float(v) / max(len(batches), 1) for k, v in sums.items()}

    def _progress_line(self, epoch: int, batches: int, seconds: float) -> None:
        """Where a long epoch is, for a log file (no bar there); writes the pending events."""
        p = self.progress
        loss = float(p.sums["loss"]) / max(p.batch, 1) if "loss" in p.sums else float("nan")
        print(f"epoch {epoch + 1}: batch {p.batch}/{batches} ({100 * p.batch / batches:.0f} %), "
              f"loss {loss:.4f}, {eta_text(p.batch, batches, seconds)}", flush=True)
        if self.dashboard is not None:
            self.dashboard.flush()

    def end_epoch(self, epoch: int, losses: dict[str, float], seconds: float) -> None:
        """Close epoch `epoch` (0-based): validate when due, log it, save last.pt."""
        p = self.progress
        p.epoch, p.batch, p.sums, p.seconds = epoch + 1, 0, {}, 0.0
        record: dict[str, Any] = {"epoch": epoch + 1, "step": p.step, "seconds": round(seconds, 3),
                                  **{f"loss_{k}": v for k, v in losses.items()}}
        self.validate_and_keep_best(epoch, record)
        p.history.append(record)
        self.folder.append_log(record)
        if self.dist.main:
            print(format_log_line(record, self.metric_name), flush=True)
        self.save_last()

    def validate_and_keep_best(self, epoch: int, record: dict[str, Any]) -> None:
        """Rank 0, every train.eval_every epochs and at the last: the validation metric goes
        into `record`, and best.pt follows its best epoch. Without a validation split the
        last epoch is the model."""
        last = epoch + 1 == self.cfg.train.epochs
        if not self.dist.main or ((epoch + 1) % self.cfg.train.eval_every and not last):
            return
        p, metrics = self.progress, self.validation_metrics()
        if metrics is not None:
            value = selection_value(metrics, self.metric_name,
                                    self.cfg.train.select_separation)
            shown = metric_value(metrics, self.metric_name)  # accuracy_separated: accuracy
            record[f"val_{self.metric_name}"] = shown
            if self.metric_name == "accuracy_separated":
                record["val_mu_separated"] = value > shown  # ranked above the unseparated
            if value > p.best_metric:
                p.best_metric, p.best_epoch = value, epoch + 1
                self.save_best()
        elif last:
            p.best_epoch = epoch + 1
            self.save_best()

    def validation_metrics(self) -> dict[str, Any] | None:
        """The validation split's metrics; None without a validation split."""
        if not self.ds.splits.get("val"):
            return None
        metrics, preds = evaluate_split(self.model, self.ds, "val", self.cfg, self.device)
        if self.dashboard is not None:
            self.dashboard.validation(self.progress.step, metrics, preds, self.ds)
        note = missing_classes_note(metrics, "validation")
        if note and not self.told_missing_classes:  # the same every epoch: said once
            print(f"avloc: {note}", flush=True)
            self.told_missing_classes = True
        return metrics

    def fit(self) -> None:
        """Train from the current position to the last epoch; StopRequested on a signal."""
        if self.cfg.train.tensorboard and self.dist.main:  # events past the checkpoint: purged
            purge = self.progress.step + 1 if self.progress.step else None
            self.dashboard = Dashboard(self.out, self.cfg.train.lr, purge)
        try:
            with stop_requests() as flag:
                for epoch in range(self.progress.epoch, self.cfg.train.epochs):
                    losses = self.run_epoch(epoch, flag)
                    self.end_epoch(epoch, losses, self.progress.seconds)
                    distributed.barrier(self.dist)
        finally:
            self.batches.close()
            if self.dashboard is not None:
                self.dashboard.close()


def format_log_line(record: dict[str, Any], metric: str) -> str:
    losses = " ".join(f"{k[5:]} {v:.4f}" for k, v in record.items() if k.startswith("loss_"))
    val = record.get(f"val_{metric}")
    val_text = f" | val {metric} {val:.4f}" if val is not None else ""
    if "val_mu_separated" in record:  # accuracy_separated: does this epoch count?
        val_text += " (mu separated)" if record["val_mu_separated"] else " (mu not separated)"
    return f"epoch {record['epoch']:3d} | {losses}{val_text} | {record['seconds']:.1f}s"
