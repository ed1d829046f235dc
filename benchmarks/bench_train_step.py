"""One training step (forward + losses + backward + Adam) at AVE and ActivityNet shapes.

    .venv/bin/python benchmarks/bench_train_step.py [--shape ave anet] [--device cpu|cuda]
        [--steps 3] [--amp] [--compile] [--attention efficient|explicit]

Runs the real `Trainer.train_step` (batch assembly from in-memory features, bf16
autocast when --amp, the non-finite check, the optimizer step) of the paper's 2-stage
model (d_x 1024, open-max, all four losses, 3 CASL pairs per batch) on random features:

    ave   B = 30, L = 10,  VGGish audio 128, ResNet-152 visual 2048, 28 classes
    anet  B = 30, L = 374, VGGish audio 128, I3D visual 2048,       100 classes

FLOP utilisation = the model's counted FLOPs per second (avloc.model.count_flops,
forward + backward matmuls) / the dense matmul FLOP/s measured in the same run on the
same device and dtype (the best of square matmuls run before and after the steps).
Time per step is the best of --steps after one warm-up step (two with --compile).
Target on CPU at the ActivityNet shape: at least 50 % of matmul throughput.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avloc.config import Config
from avloc.data.base import Dataset, Video
from avloc.model import count_flops
from avloc.train import Dist, Trainer

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
    shape: str, args: argparse.Namespace, device: torch.device, out: Path
) -> tuple[float, float, float]:
    """(wall seconds per step, CPU seconds per step, model FLOPs per step)."""
    B, L, da, dv, C = SHAPES[shape]
    cfg = Config()
    cfg.model.d_x, cfg.model.stages, cfg.model.attention = 1024, 2, args.attention
    cfg.train.batch_size, cfg.train.similar_pairs = B, 3
    cfg.train.amp, cfg.train.compile, cfg.train.progress = args.amp, args.compile, False
    cfg.data.max_seqlen = max(L, cfg.data.max_seqlen)
    trainer = Trainer(cfg, random_dataset(B, L, da, dv, C), out / shape, device, Dist())
    groups = [np.arange(B)]
    times, cpu = [], []
    for step in range(args.steps + (2 if args.compile else 1)):
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        parts = trainer.train_step(0, step, groups)
        sync(device)
        times.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    warm = 2 if args.compile else 1
    assert all(torch.isfinite(v).all() for v in parts.values())
    flops = B * count_flops(cfg.model, da, dv, C, L, backward=True)
    print(f"  {shape}: B = {B}, L = {L}: {flops / 1e9:.1f} GFLOP per step; step time best "
          f"{min(times[warm:]):.3f} s, mean {np.mean(times[warm:]):.3f} s "
          f"(CPU time best {min(cpu[warm:]):.3f} s); first step {times[0]:.3f} s")
    return min(times[warm:]), min(cpu[warm:]), flops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", nargs="+", default=["ave", "anet"], choices=list(SHAPES))
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per shape")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (train.amp=true)")
    ap.add_argument("--compile", action="store_true", help="torch.compile (train.compile=true)")
    ap.add_argument("--attention", default="efficient", choices=["efficient", "explicit"])
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
          f"attention = {args.attention}")
    before = matmul_flops_per_s(device, dtype, n, 5)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shape:
            results[shape] = bench_shape(shape, args, device, Path(tmp))
    after = matmul_flops_per_s(device, dtype, n, 5)
    peak, peak_cpu = max(before[0], after[0]), max(before[1], after[1])
    print(f"  dense {n} x {n} matmul, {dtype}: {peak / 1e9:.1f} GFLOP/s per wall second, "
          f"{peak_cpu / 1e9:.1f} per CPU second (best, same run)")
    for shape, (wall, cpu, flops) in results.items():
        line = (f"  {shape}: {flops / wall / 1e9:.1f} GFLOP/s = "
                f"{100 * flops / wall / peak:.1f} % of matmul throughput (wall time)")
        if device.type == "cpu":  # CPU time: what a machine shared with others inflates less
            line += f"; {100 * flops / cpu / peak_cpu:.1f} % (CPU time)"
        print(line)
    if "anet" in results and device.type == "cpu":
        wall, cpu, flops = results["anet"]
        verdict = {True: "met", False: "NOT met"}
        print(f"target (CPU, ActivityNet shape, >= 50 % of matmul throughput): "
              f"{verdict[flops / wall >= 0.5 * peak]} (wall time), "
              f"{verdict[flops / cpu >= 0.5 * peak_cpu]} (CPU time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
