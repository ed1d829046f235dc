"""Training: one run in one folder, from video-level labels only.

- start.py        `train()` starts a run, `resume()` continues one; both score it at the end
- loop.py         the loop (step, epoch, end of epoch, validation, fit)
- run_folder.py   the run's files: settings, checkpoints, log, position, RNG state, the
                  lock, and how a resume reconciles them after a kill
- finite.py       the NaN/Inf checks (every step on a CPU, deferred with replay on a GPU)
- distributed.py  torchrun: process group, per-rank dropout, losses averaged over ranks

Batches and prefetching live in avloc.data.batching, the check of a whole dataset in
avloc.data.checks, checkpoint files in avloc.checkpoint.
"""

from avloc.train.distributed import Dist, setup_distributed
from avloc.train.finite import FiniteChecks
from avloc.train.loop import Trainer
from avloc.train.start import fit_modality, resume, train, train_command

__all__ = [
    "Dist", "FiniteChecks", "Trainer", "fit_modality", "resume", "setup_distributed", "train",
    "train_command",
]
