"""TensorBoard events of one run (setting train.tensorboard=true), in RUN/tensorboard:

    loss/<term>      every loss term (loss = L of Eq. 10, mil, cas, cont, pseu) per step
    lr               the learning rate per step
    val/<metric>     the validation metrics at each evaluation (accuracy or average_mAP, ...)
    cas/<video>      at each evaluation, the class activation sequences of the first
                     CAS_VIDEOS validation videos (the same ones every time): mu, the
                     video's classes' probabilities, and the ground-truth segments

Every value is at the global step. Losses are kept as device tensors and written at the end
of each epoch (or at a progress line), so the events cost no per-step synchronisation on a
GPU. A resumed run purges the events past its checkpoint's step, which a killed process
may have written, so a replayed step is not drawn twice. TensorBoard is an optional
install: pip install -e '.[tensorboard]'.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.data.base import Dataset
from avloc.scoring.predict import VideoPrediction
from avloc.util.errors import AvlocError

FOLDER = "tensorboard"
CAS_VIDEOS = 3  # validation videos drawn at each evaluation


def require_tensorboard() -> None:
    """Fail before the run starts, not at its first event."""
    if importlib.util.find_spec("tensorboard") is None:
        raise AvlocError("setting train.tensorboard=true needs TensorBoard: pip install -e "
                         "'.[tensorboard]' (in a checkout), or pip install tensorboard")


class Dashboard:
    """The event writer of one run's main process."""

    def __init__(self, out: Path, lr: float, purge_step: int | None = None) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(out / FOLDER), purge_step=purge_step)
        self.lr = lr
        self.pending: list[tuple[int, dict[str, torch.Tensor]]] = []

    def step(self, step: int, parts: dict[str, torch.Tensor]) -> None:
        """Keep step `step`'s loss terms (detached tensors; read at `flush`)."""
        self.pending.append((step, parts))

    def forget_after(self, step: int) -> None:
        """Steps past `step` are about to be replayed (train.finite.ReplayCheckedSteps)."""
        self.pending = [(s, parts) for s, parts in self.pending if s <= step]

    def flush(self) -> None:
        if self.pending:
            steps = [s for s, _ in self.pending]
            names = list(self.pending[0][1])
            values = torch.stack([torch.stack([parts[k].float() for k in names])
                                  for _, parts in self.pending]).cpu().numpy()  # (S, K)
            for row, step in zip(values, steps, strict=True):
                for name, value in zip(names, row, strict=True):
                    self.writer.add_scalar(f"loss/{name}", float(value), step)
                self.writer.add_scalar("lr", self.lr, step)
            self.pending = []
        self.writer.flush()

    def validation(self, step: int, metrics: dict[str, Any], preds: list[VideoPrediction],
                   ds: Dataset) -> None:
        """The split's numeric metrics and the CAS figures of its first CAS_VIDEOS videos."""
        for name, value in metrics.items():
            if isinstance(value, float):  # the scores, not counts (videos, snippets)
                self.writer.add_scalar(f"val/{name}", value, step)
            elif isinstance(value, dict) and name.endswith("_level"):  # parsing F-scores
                for key, x in value.items():
                    self.writer.add_scalar(f"val/{name}.{key}", x, step)
        for pred in preds[:CAS_VIDEOS]:
            image = cas_image(ds, pred)  # (H, W, 3) uint8
            self.writer.add_image(f"cas/{pred.vid}", image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def cas_image(ds: Dataset, pred: VideoPrediction) -> np.ndarray:
    """One video's CAS as an RGB image: mu (black), p of each of the video's classes (the
    top-scoring class when it has none), ground-truth segments shaded, time in seconds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    timing = ds.timing(pred.vid)
    ann = ds.annotations.get(pred.vid)
    t = timing.at(np.arange(len(pred.mu)) + 0.5)  # (T,) snippet centres
    video = next((v for split in ds.splits.values() for v in split if v.vid == pred.vid), None)
    classes = list(np.flatnonzero(video.labels > 0.5)) if video is not None else []
    classes = classes or [int(np.argmax(pred.cas.max(axis=0)))]
    fig = Figure(figsize=(6.4, 2.4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for seg in ann.segments if ann is not None else []:
        ax.axvspan(seg.start, seg.end, color="#2ca02c", alpha=0.2)
    ax.plot(t, pred.mu, color="black", label="mu")
    for c in classes[:4]:
        ax.plot(t, pred.cas[:, c], label=f"p({ds.classes[c]})")
    ax.set_ylim(0, 1)
    ax.set_xlim(timing.at(0), timing.at(len(t)))
    ax.set_xlabel("seconds")
    ax.set_title(f"{pred.vid} (green: ground truth)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
