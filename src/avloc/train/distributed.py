"""Several processes (torchrun, DistributedDataParallel): set-up, dropout, shared numbers.

Every rank builds the same global batch and takes its own slice (data.batching); DDP
averages the gradients; rank 0 alone validates and writes. One process is the case
world = 1, where every function here does nothing special.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from avloc.util.errors import AvlocError


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


def wrap_model(model: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    """The module the training step calls: DDP around the model when there are processes."""
    if d.world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


@contextmanager
def rank_dropout(d: Dist, seed: int, step: int, device: torch.device) -> Iterator[None]:
    """Distributed: every process starts from the same seed, so without this all would
    draw the same dropout masks (for different videos). Here the masks come from a
    generator seeded by (seed, step, rank): independent across processes, and a resumed
    run draws the same ones. One process: torch's global generator, as always."""
    if d.world == 1:
        yield
        return
    rank_seed = int(np.random.default_rng([seed, step, d.rank]).integers(2**62))
    devices = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(rank_seed)
        yield


def mean_over_ranks(
    sums: dict[str, torch.Tensor], d: Dist, device: torch.device
) -> dict[str, torch.Tensor]:
    """The epoch's loss sums averaged over processes, so that a distributed run logs
    the losses of the whole global batch (equal to one process's with the same data)."""
    if d.world == 1 or not sums:
        return sums
    keys = sorted(sums)
    t = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(device)
                     for k in keys])  # (K,)
    dist.all_reduce(t)
    return dict(zip(keys, t / d.world, strict=True))


def any_rank(flag: torch.Tensor) -> torch.Tensor:
    """The largest of every process's `flag` (0-d int): 1 when any process set it."""
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag


def barrier(d: Dist) -> None:
    """Wait for every process (the others wait while rank 0 validates and writes)."""
    if d.world > 1:
        dist.barrier()
