"""Training: one run in one folder, from video-level labels only.

- start.py        `train()` starts a run, `resume()` continues one; both score it at the end
                  (`train_command` is `avloc train`)
- loop.py         the loop (step, epoch, end of epoch, validation, fit)
- finite.py       the NaN/Inf checks (every step on a CPU, deferred with replay on a GPU)
- distributed.py  torchrun: process group, per-rank dropout, losses averaged over ranks
- recipes.py      teachers whose predictions on the training videos become targets:
                  modality-aware label refinement (parsing), self-training rounds

The run's folder (its files, checkpoints, RNG state, the lock, reconciling after a kill) is
avloc.runs; batches and prefetching live in avloc.data.batching, the check of a whole
dataset in avloc.data.checks, checkpoint files in avloc.checkpoint.
"""

from avloc.train.distributed import Dist, setup_distributed
from avloc.train.finite import FiniteChecks
from avloc.train.loop import Trainer
from avloc.train.start import fit_modality, resume, train, train_command

__all__ = [
    "Dist", "FiniteChecks", "Trainer", "fit_modality", "resume", "setup_distributed", "train",
    "train_command",
]
