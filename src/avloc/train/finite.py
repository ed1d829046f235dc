"""Stop before a NaN/Inf reaches the weights: the non-finite checks of the training loop.

After `backward` the loss and every gradient are checked (a finite loss can still have an
infinite gradient); the optimizer has not stepped, so the loop saves the last good state
and stops with one line naming the step, the batch and its videos (`nonfinite_error`).

Each check makes the host wait for the device. On a CPU that costs nothing, so every step
is checked at once (`every=1`). On a GPU the results stay on the device and are read every
`every` steps (`verify_and_snapshot`); when one of those steps was non-finite, model,
optimizer, position and generators go back to the copy taken at the previous read, and
the loop replays the steps checking each one (batches, crops and dropout are functions of
that state): the replay stops at the bad step with the same error and the same saved
state as a per-step check would.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avloc.runs.state import rng_state, set_rng_state
from avloc.train.distributed import any_rank
from avloc.util.errors import AvlocError

if TYPE_CHECKING:
    from avloc.data.base import Video
    from avloc.runs.state import Progress


class ReplayCheckedSteps(Exception):
    """A deferred check found a non-finite step; the state is back at the last verified
    step (`progress`, also restored): replay from there, checking every step."""

    def __init__(self, progress: Progress) -> None:
        super().__init__("replay from the last verified step")
        self.progress = progress


class FiniteChecks:
    """The non-finite checks of one training process.

    every: steps between reads of the deferred checks; 1 checks each step at once (the
    CPU default), more defers them (the GPU default, setting train.finite_check_every).
    world: processes of the run; a deferred verdict is shared, since a process's own loss
    may be the only non-finite one.
    """

    def __init__(self, every: int = 1, world: int = 1) -> None:
        self.every = max(1, every)
        self.world = world
        self.strict = self.every == 1  # check each step at once (also during a replay)
        self.bad: torch.Tensor | None = None  # some step since the last read was non-finite
        self.saved: dict[str, Any] | None = None  # the state at the last read

    def start_epoch(self) -> None:
        """Defer again after a replay (which checked every step up to the bad one)."""
        self.strict = self.every == 1

    def due(self, step: int) -> bool:
        """Whether the deferred checks are read after `step` steps."""
        return step % self.every == 0

    def after_backward(self, loss: torch.Tensor, model: torch.nn.Module) -> str | None:
        """'loss' or 'gradient' when this step is non-finite and checked now; None when it
        is finite, or when the check is deferred (remembered on the device, no sync)."""
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        ok = torch.isfinite(loss)
        if grads:
            ok = ok & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if not self.strict:
            self.bad = ~ok if self.bad is None else self.bad | ~ok
            return None
        if bool(ok):
            return None
        return "loss" if not bool(torch.isfinite(loss)) else "gradient"

    def verify_and_snapshot(
        self, model: torch.nn.Module, optim: torch.optim.Optimizer, progress: Progress,
        everyone: bool = True,
    ) -> None:
        """Deferred mode: read the checks of the steps since the last call (one sync), then
        keep a device copy of the state as the point the next bad window rolls back to.

        A non-finite step among them restores the copy taken at the last call and raises
        ReplayCheckedSteps; from then on every step is checked at once until the next
        epoch. `everyone`: all processes call this at the same step (not so when a signal
        stops them). Per-step mode: nothing to do.
        """
        if self.strict:
            return
        if self.bad is not None:
            bad = self.bad.to(torch.int32)
            if self.world > 1 and everyone:
                bad = any_rank(bad)
            self.bad = None
            if bool(bad) and self.saved is not None:
                s = self.saved
                model.load_state_dict(s["model"])
                optim.load_state_dict(copy.deepcopy(s["optimizer"]))
                set_rng_state(s["rng"])
                self.strict = True
                raise ReplayCheckedSteps(copy.deepcopy(s["progress"]))
        self.saved = {
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": copy.deepcopy(optim.state_dict()),
            "progress": copy.deepcopy(progress),
            "rng": rng_state(),
        }


def nonfinite_error(
    what: str, step: int, epoch: int, index: int, videos: Sequence[Video], saved: Path
) -> AvlocError:
    """The one-line error of a non-finite step: the step, epoch and batch (1-based), the
    batch's videos whose features hold NaN/Inf, or its first five when none do, and
    where the last good state was saved."""
    vids = [v.vid for v in videos]
    bad = [v.vid for v in videos if not all(np.isfinite(x).all() for x in (v.audio, v.visual))]
    shown = bad or vids
    names = ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")
    names = f"NaN/Inf features in {names}" if bad else f"videos {names}"
    return AvlocError(
        f"non-finite {what} at step {step} (epoch {epoch + 1}, batch {index + 1}; {names}); "
        f"last good state saved in {saved}"
    )
