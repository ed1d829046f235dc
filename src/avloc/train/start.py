"""The two entry points of training: `train()` starts a run, `resume()` continues one
after a kill or a signal. Both check the data, build a `Trainer` (avloc.train.loop), fit
it, then score validation and test with the best checkpoint into metrics.json."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch

from avloc.config import RESUMABLE, Config, apply_overrides, load_config, validate
from avloc.data import Dataset, load_dataset
from avloc.data.checks import (
    check_head,
    check_training_data,
    no_background_note,
    no_validation_note,
)
from avloc.runs.layout import read_run_config, remembered_data_root
from avloc.runs.state import Progress, RunFolder, seed_generators
from avloc.scoring.eval_run import score_with_best
from avloc.scoring.reports import run_summary
from avloc.train import distributed, recipes
from avloc.train.dashboard import require_tensorboard
from avloc.train.distributed import Dist
from avloc.train.loop import Trainer
from avloc.util.cpus import use_threads
from avloc.util.errors import AvlocError
from avloc.util.io import write_json_atomic
from avloc.util.signals import StopRequested


def train(
    cfg: Config, data_root: str | Path | None, out: str | Path, dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Start a run in `out`, which must not hold one; returns the metrics written to
    metrics.json. `dataset`: a Dataset built in Python, used instead of reading data_root.
    Nothing is written before the data and the model are known to be good, so a bad input
    leaves no half-made run folder behind."""
    out = Path(out)
    d, device = distributed.setup_distributed(cfg.train.device)
    RunFolder(out, d.main).check_new()
    trainer = _trainer(cfg, data_root, out, d, device, dataset)
    with trainer.folder.lock():
        trainer.folder.start(trainer.cfg, data_root)
        recipes.prepare(trainer, data_root)  # a recipe's teachers first (train.recipes)
        return _fit_and_score(trainer)


def resume(
    out: str | Path, data_root: str | Path | None = None, dataset: Dataset | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Continue the run in `out` from its last checkpoint, with its own settings
    (config.yaml) and data (the folder it started on, unless `data_root` names another);
    a run killed before its first checkpoint starts over. `overrides` (KEY=VALUE) may change
    how long and how it goes on (config.RESUMABLE: train.epochs extends a finished run);
    others are refused. Returns the metrics."""
    out = Path(out)
    saved = read_run_config(out, "to resume")
    cfg = resume_settings(saved, overrides or [], out)
    data_root = data_root if data_root is not None else remembered_data_root(out)
    d, device = distributed.setup_distributed(cfg.train.device)
    trainer = _trainer(cfg, data_root, out, d, device, dataset)
    with trainer.folder.lock():
        if not trainer.restore():
            print(f"avloc: {out} has no checkpoint yet; starting from the beginning", flush=True)
        check_epochs(trainer.cfg, trainer.progress, out)
        if trainer.cfg.to_dict() != saved.to_dict():
            trainer.folder.save_config(trainer.cfg)  # the next resume goes on with them
        finished = trainer.progress.epoch >= trainer.cfg.train.epochs
        if finished and d.main:
            print(f"avloc: {out} has trained all its {trainer.cfg.train.epochs} epochs; nothing "
                  f"to train (to train longer: avloc train --resume {out} train.epochs=N)",
                  flush=True)
        else:
            recipes.prepare(trainer, data_root)
        return _fit_and_score(trainer)


def train_command(config: str | None, data: str | Path | None, out: str | Path | None,
                  resume_dir: str | Path | None, overrides: list[str]) -> dict[str, Any]:
    """`avloc train`: a new run in `out` with the preset or YAML `config` (default ave) and
    `overrides`, or with `resume_dir`, that run continued (its folder and settings kept:
    `overrides` may change only how long and how it goes on)."""
    if resume_dir:
        for flag, value in (("--config", config), ("--out", out)):
            if value:
                raise AvlocError(f"{flag} with --resume: the run keeps its folder and settings "
                                 f"({resume_dir}/config.yaml); give changes as KEY=VALUE, "
                                 "e.g. train.epochs=60")
        return resume(Path(resume_dir), data, overrides=overrides)
    if not out:
        raise AvlocError("train: --out RUN_DIR is required (or --resume RUN_DIR)")
    return train(load_config(config or "ave", overrides), data, Path(out))


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


def _trainer(
    cfg: Config, data_root: str | Path | None, out: Path, d: Dist, device: torch.device,
    dataset: Dataset | None,
) -> Trainer:
    """The data, checked, and a trainer on it with the run's initial weights (and settings:
    `fit_modality`); the folder."""
    threads = use_threads(cfg.train.threads)
    if d.main and device.type == "cpu":
        print(f"avloc: {threads}", flush=True)
    ds = dataset if dataset is not None else load_dataset(cfg.data, data_root)
    check_training_data(ds)
    check_head(cfg.model.head, ds)
    if cfg.train.tensorboard:
        require_tensorboard()
    for note in (no_validation_note(ds, cfg.data.format, cfg.data.val_fraction),
                 no_background_note(ds)):
        if note and d.main:
            print(f"avloc: {note}", flush=True)
    cfg = fit_modality(cfg, ds, say=d.main)
    seed_generators(cfg.train.seed)  # a resume then restores the generators it saved
    trainer = Trainer(cfg, ds, out, device, d)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    return trainer


def _fit_and_score(trainer: Trainer) -> dict[str, Any]:
    """Train to the end, then score validation at the best epoch and the test split once,
    with best.pt (rank 0 writes metrics.json; the others return {})."""
    try:
        trainer.fit()
    except StopRequested:
        raise AvlocError(
            f"stopped by signal; resume with: avloc train --resume {trainer.out}"
        ) from None
    if not trainer.dist.main:
        return {}
    p = trainer.progress
    metrics = {"best_epoch": p.best_epoch, "select_metric": trainer.metric_name,
               "history": p.history, **score_with_best(trainer.out / "best.pt", trainer.ds,
                                                       trainer.cfg, trainer.device)}
    write_json_atomic(trainer.out / "metrics.json", metrics)
    print(run_summary(metrics, trainer.ds.task, trainer.out), flush=True)
    return metrics


def resume_settings(saved: Config, overrides: list[str], out: Path) -> Config:
    """The run's settings with `overrides` applied; a change to a setting that is not
    resumable (config.RESUMABLE: how long and how a run goes on, never what a step
    computes) is refused in one line (it would make the continued run another experiment)."""
    cfg = validate(apply_overrides(copy.deepcopy(saved), overrides))
    old, new = saved.to_dict(), cfg.to_dict()
    for section, values in new.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            if value != old[section][name] and key not in RESUMABLE:
                raise AvlocError(f"--resume {out}: setting {key} cannot change in a run "
                                 f"(it is {old[section][name]!r}); start a new run with --out, "
                                 f"or change only {', '.join(RESUMABLE)}")
    return cfg


def check_epochs(cfg: Config, progress: Progress, out: Path) -> None:
    """train.epochs given on --resume may extend a run, never cut off what it has done."""
    done = progress.epoch + (1 if progress.batch else 0)
    if cfg.train.epochs < done:
        raise AvlocError(f"setting train.epochs={cfg.train.epochs}: {out} has already trained "
                         f"{'into ' if progress.batch else ''}epoch {done}")
