"""One training step (forward + losses + backward + Adam) at AVE and ActivityNet shapes.

    .venv/bin/python benchmarks/bench_train_step.py [--shape ave anet] [--device cpu|cuda]
        [--steps 5] [--amp] [--compile] [--attention efficient [explicit]]

Runs the real `Trainer.train_step` (batch assembly from in-memory features, bf16
autocast when --amp, the non-finite check, the optimizer step) of the paper's 2-stage
model (d_x 1024, open-max, all four losses, 3 CASL pairs per batch) on random features:

    ave   B = 30, L = 10,  VGGish audio 128, ResNet-152 visual 2048, 28 classes
    anet  B = 30, L = 374, VGGish audio 128, I3D visual 2048,       100 classes

FLOP utilisation = the model's counted FLOPs per second (avloc.util.profiling.count_flops,
forward + backward matmuls) / the dense matmul FLOP/s on the same device and dtype,
measured (best of 3 square matmuls) just before each step, so that a machine whose
speed drifts (shared, throttled) compares like with like. Printed: the median and best
of these per-step ratios over --steps steps after one warm-up step (two with --compile).
Target on CPU at the ActivityNet shape: at least 50 % of matmul throughput.

Several --attention forms are measured one after the other in the same run. The first
line says whether large CPU tensors sit on transparent huge pages (THP_MEM_ALLOC_ENABLE,
which avloc sets to 1 unless the environment says otherwise; bench_huge_pages.py
measures the difference).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avloc.config import Config
from avloc.data.base import Dataset, Video
from avloc.runs.state import seed_generators
from avloc.train import Dist, Trainer
from avloc.util.profiling import count_flops

SHAPES = {  # name: (B, L, audio dim, visual dim, classes)
    "ave": (30, 10, 128, 2048, 28),
    "anet": (30, 374, 128, 2048, 100),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(
    device: torch.device, dtype: torch.dtype, n: int, repeats: int
) -> tuple[float, float]:
    """Best dense (n x n) @ (n x n) throughput, per wall second and per CPU second: the
    device's practical peak for this dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    wall = cpu = float("inf")
    for _ in range(repeats):
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        a @ b
        sync(device)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return 2 * n**3 / wall, 2 * n**3 / cpu


def random_dataset(B: int, L: int, da: int, dv: int, C: int) -> Dataset:
    """B videos of L snippets; videos 2i and 2i + 1 share a class, so CASL has pairs."""
    rng = np.random.default_rng(0)
    videos = []
    for i in range(B):
        labels = np.zeros(C, np.float32)
        labels[(i // 2) % C] = 1
        videos.append(Video(f"v{i}", rng.standard_normal((L, da), np.float32),
                            rng.standard_normal((L, dv), np.float32), labels))
    return Dataset("random", "action", [f"c{c}" for c in range(C)], 0.64,
                   {"train": videos, "val": [], "test": []}, {})


def bench_shape(
    shape: str, attention: str, args: argparse.Namespace, device: torch.device, out: Path,
    reference: Callable[[], tuple[float, float]] | None = None,
) -> dict[str, np.ndarray | float]:
    """Step times (wall, CPU) and model FLOPs per step; with `reference` (a function giving
    matmul FLOP/s per wall and per CPU second), the reference measured just before each
    step, so that each step's utilisation compares two measurements taken together."""
    B, L, da, dv, C = SHAPES[shape]
    cfg = Config()
    cfg.model.d_x, cfg.model.stages, cfg.model.attention = 1024, 2, attention
    cfg.train.batch_size, cfg.train.similar_pairs = B, 3
    cfg.train.amp, cfg.train.compile, cfg.train.progress = args.amp, args.compile, False
    cfg.data.max_seqlen = max(L, cfg.data.max_seqlen)
    seed_generators(cfg.train.seed)  # the initial weights of a real run
    trainer = Trainer(cfg, random_dataset(B, L, da, dv, C), out / f"{shape}-{attention}",
                      device, Dist())
    groups = [np.arange(B)]
    warm = 2 if args.compile else 1
    rows = []  # (wall s, CPU s, reference FLOP/s wall, reference FLOP/s CPU)
    for step in range(args.steps + warm):
        ref = reference() if reference is not None and step >= warm else (np.nan, np.nan)
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        parts = trainer.train_step(0, step, groups)
        sync(device)
        rows.append((time.perf_counter() - w0, time.process_time() - c0, *ref))
    assert all(torch.isfinite(v).all() for v in parts.values())
    wall, cpu, ref_wall, ref_cpu = np.array(rows[warm:]).T
    flops = B * count_flops(cfg.model, da, dv, C, L, backward=True)
    print(f"  {shape}, {attention}: B = {B}, L = {L}: {flops / 1e9:.1f} GFLOP per step; "
          f"step time best {wall.min():.3f} s, median {np.median(wall):.3f} s (CPU time best "
          f"{cpu.min():.3f} s); first step {rows[0][0]:.3f} s")
    return {"wall": wall, "cpu": cpu, "ref_wall": ref_wall, "ref_cpu": ref_cpu, "flops": flops}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", nargs="+", default=["ave", "anet"], choices=list(SHAPES))
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per shape")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (train.amp=true)")
    ap.add_argument("--compile", action="store_true", help="torch.compile (train.compile=true)")
    ap.add_argument("--attention", nargs="+", default=["efficient"],
                    choices=["efficient", "explicit"], help="model.attention forms to measure")
    ap.add_argument("--matmul-size", type=int, default=0,
                    help="side of the reference matmul (default 2048 on CPU, 8192 on CUDA)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    dtype = torch.bfloat16 if args.amp else torch.float32
    n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    print(f"device {device} ({name or platform.machine()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, amp = {args.amp}, compile = {args.compile}, "
          f"THP_MEM_ALLOC_ENABLE = {os.environ.get('THP_MEM_ALLOC_ENABLE')}")
    print(f"reference: dense {n} x {n} matmul in {dtype}, best of 3, measured before each step")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shape:
            for attention in args.attention:
                results[shape, attention] = bench_shape(
                    shape, attention, args, device, Path(tmp),
                    reference=lambda: matmul_flops_per_s(device, dtype, n, 3))
    verdict = {True: "met", False: "NOT met"}
    for (shape, attention), r in results.items():
        util = r["flops"] / r["wall"] / r["ref_wall"]  # per step, against its own reference
        line = (f"  {shape}, {attention}: {r['flops'] / np.median(r['wall']) / 1e9:.1f} GFLOP/s "
                f"(median step), matmul {np.median(r['ref_wall']) / 1e9:.1f} GFLOP/s; "
                f"utilisation median {100 * np.median(util):.1f} %, best {100 * util.max():.1f} % "
                f"(wall time)")
        if device.type == "cpu":  # CPU time: what a machine shared with others inflates less
            util_cpu = r["flops"] / r["cpu"] / r["ref_cpu"]
            line += f"; median {100 * np.median(util_cpu):.1f} % (CPU time)"
        print(line)
        if shape == "anet" and device.type == "cpu":
            print(f"  target (CPU, ActivityNet shape, median >= 50 % of matmul throughput): "
                  f"{verdict[bool(np.median(util) >= 0.5)]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
