"""Several processes with torchrun (DistributedDataParallel, gloo on CPU) equal one.

Two processes with a per-process batch b see, between them, exactly the global batches
of one process with batch 2b (same order, same crops), and DDP averages their
gradients: with dropout off and no CASL term (its pairs are drawn per process) the
weights after a few steps match to float tolerance. Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from avloc.config import load_config
from avloc.data import load_dataset
from avloc.data.base import Video
from avloc.data.batching import PairBatchSampler
from avloc.train import Dist, Trainer, setup_distributed, train
from avloc.util.errors import AvlocError

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.synth_videos=48", "data.synth_background_videos=0", "data.synth_classes=4",
        "model.d_x=32", "model.dropout=0.0", "train.similar_pairs=0", "loss.alpha=0",
        "train.epochs=2", "train.eval_every=100", "train.progress=false"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread


def videos(n: int, classes: int = 3) -> list[Video]:
    out = []
    for i in range(n):
        labels = np.zeros(classes, np.float32)
        labels[i % classes] = 1
        out.append(Video(f"v{i}", np.zeros((2, 1), np.float32), np.zeros((2, 1), np.float32),
                         labels))
    return out


@pytest.mark.parametrize("n", [5, 7, 12, 13])
def test_process_groups_together_are_the_one_process_batches(n):
    """Without pairs, the groups of 2 processes with batch b concatenate to the batches
    of 1 process with batch 2b."""
    two = PairBatchSampler(videos(n), 3, 0, seed=1, groups=2)
    one = PairBatchSampler(videos(n), 6, 0, seed=1, groups=1)
    a, b = two.epoch(4), one.epoch(4)
    assert len(a) == len(b)
    for groups, (single,) in zip(a[:-1], b[:-1], strict=True):
        np.testing.assert_array_equal(np.concatenate(groups), single)
    np.testing.assert_array_equal(np.concatenate(a[-1])[:len(b[-1][0])], b[-1][0])


@pytest.mark.parametrize("n,pairs", [(1, 0), (5, 0), (7, 0), (7, 1), (13, 2), (3, 1)])
def test_every_process_gets_videos_in_every_batch(n, pairs):
    """A process past the end of a short last batch gets wrapped-around videos, never an
    empty batch (which would crash it while the others wait in the gradient all-reduce)."""
    for world in (2, 3, 4):
        sampler = PairBatchSampler(videos(n), 3, pairs, seed=0, groups=world)
        batches = sampler.epoch(0)
        assert all(len(g) > 0 for batch in batches for g in batch)
        assert set(np.concatenate([g for batch in batches for g in batch])) == set(range(n))


def read_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_torchrun_two_processes_match_one_process_with_twice_the_batch(tmp_path):
    """The real user path: `python -m torch.distributed.run --nproc_per_node 2 -m avloc
    train ...` (gloo on CPU) against an in-process run with batch 2b."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "avloc", "train", "--config", "demo", "--out", str(tmp_path / "two"),
           *TINY, "train.batch_size=4"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = load_config("demo", [*TINY, "train.batch_size=8"])
    train(cfg, None, tmp_path / "one")

    two, one = read_weights(tmp_path / "two"), read_weights(tmp_path / "one")
    for name, w in one.items():
        torch.testing.assert_close(two[name], w, rtol=1e-4, atol=1e-5, msg=name)
    first = read_log(tmp_path / "one")
    assert [r["step"] for r in read_log(tmp_path / "two")] == [r["step"] for r in first] == [6, 12]
    for a, b in zip(read_log(tmp_path / "two"), first, strict=True):  # global-batch losses
        for key in (k for k in b if k.startswith("loss_")):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key
    # rank 0 alone prints and writes: one log line per epoch, one metrics file
    assert done.stdout.count("epoch   1 |") == 1 and done.stdout.count("epoch   2 |") == 1
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["best_epoch"] == 2


def test_weights_moved_in_the_comparison_run(tmp_path):
    """Guard for the test above: a few steps change the weights far beyond its tolerance,
    and batch b alone (one process) gives different weights than 2 x b."""
    cfg = load_config("demo", [*TINY, "train.batch_size=8", "train.epochs=1"])
    ds = load_dataset(cfg.data, None)
    runs = {}
    for b in (8, 4):
        cfg.train.batch_size = b
        trainer = Trainer(cfg, ds, tmp_path / str(b), torch.device("cpu"), Dist())
        init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        (tmp_path / str(b)).mkdir()
        trainer.fit()
        runs[b] = trainer.model.state_dict()
    name = "fusion.ws.0"
    assert (runs[8][name] - init[name]).abs().max() > 1e-3
    assert (runs[8][name] - runs[4][name]).abs().max() > 1e-3


@pytest.fixture
def one_member_group(tmp_path):
    """A real gloo process group of one process, so a Trainer can play rank 1 of 2."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_rank_one_writes_nothing(tmp_path, one_member_group):
    """A whole fit as rank 1: no checkpoint, log, best model or validation output."""
    cfg = load_config("demo", [*TINY, "train.batch_size=4", "train.eval_every=1",
                               "train.checkpoint_every=2"])
    ds = load_dataset(cfg.data, None)
    out = tmp_path / "run"
    out.mkdir()
    trainer = Trainer(cfg, ds, out, torch.device("cpu"), Dist(rank=1, world=2))
    trainer.fit()
    assert trainer.progress.step == 12  # it did train: 48 videos / (2 x 4) per step x 2
    assert list(out.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_one_is_a_one_line_error():
    with pytest.raises(AvlocError, match="train.device=cuda"):
        setup_distributed("cuda")


def test_processes_draw_their_own_dropout_masks(tmp_path, one_member_group):
    """Each process seeds dropout by (seed, step, rank): different masks on different
    ranks, the same ones again for the same step (a resumed run), and torch's global
    generator untouched."""
    cfg = load_config("demo", [*TINY, "train.batch_size=4"])
    ds = load_dataset(cfg.data, None)
    draws = {}
    for rank in (0, 1, 1):
        trainer = Trainer(cfg, ds, tmp_path, torch.device("cpu"), Dist(rank=rank, world=2))
        trainer.progress.step = 7
        state = torch.get_rng_state()
        with trainer.rank_dropout():
            mask = torch.nn.functional.dropout(torch.ones(1000), 0.5)
        assert torch.equal(torch.get_rng_state(), state)
        if rank in draws:
            assert torch.equal(draws[rank], mask)
        draws[rank] = mask
    assert not torch.equal(draws[0], draws[1])
