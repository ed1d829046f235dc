"""CPU tensors on transparent huge pages or not: element-wise passes and a training step.

    .venv/bin/python benchmarks/bench_huge_pages.py [--rounds 2] [--threads 1] [--steps 2]

torch reads THP_MEM_ALLOC_ENABLE once per process (avloc sets it to 1 unless told
otherwise), so each measurement runs in a child process with the variable set to 0 or
1, alternating, `--rounds` times. A child times, on a (30, 374, 1024) float32 tensor x
(one ActivityNet batch of activations) with fresh outputs: `x + x`, `tanh`,
l2-normalisation forward and backward, dropout forward and backward; a 2048 x 2048
matmul; and one training step of the paper's 2-stage model at the ActivityNet shape
(bench_train_step.py's). Printed: the best time of each over the rounds, per setting,
and the ratio off / on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_seconds(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def child(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F
    from bench_train_step import bench_shape  # imports avloc, which keeps the value set here

    torch.set_num_threads(args.threads)
    x = torch.randn(30, 374, 1024, requires_grad=True)
    g = torch.randn(30, 374, 1024)
    y = x.detach()
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = {
        "x + x": best_seconds(lambda: y + y),
        "tanh": best_seconds(lambda: torch.tanh(y)),
        "normalize fwd+bwd": best_seconds(
            lambda: torch.autograd.grad(F.normalize(x, dim=-1), x, g)),
        "dropout fwd+bwd": best_seconds(
            lambda: torch.autograd.grad(F.dropout(x, 0.5, True), x, g)),
        "matmul 2048": best_seconds(lambda: a @ b),
    }
    step = argparse.Namespace(steps=args.steps, amp=False, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        steps = bench_shape("anet", "efficient", step, torch.device("cpu"), Path(tmp))
    times["train step (anet)"] = float(steps["wall"].min())
    print(json.dumps(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs of child processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each child")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps per child")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    best: dict[str, dict[str, float]] = {"0": {}, "1": {}}
    for _ in range(args.rounds):
        for setting in ("0", "1"):
            env = {**os.environ, "THP_MEM_ALLOC_ENABLE": setting}
            cmd = [sys.executable, __file__, "--child", "--threads", str(args.threads),
                   "--steps", str(args.steps)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            for name, seconds in json.loads(out.stdout.splitlines()[-1]).items():
                best[setting][name] = min(best[setting].get(name, float("inf")), seconds)
    print(f"THP_MEM_ALLOC_ENABLE 0 vs 1, {args.threads} thread(s), best of {args.rounds} "
          f"rounds (alternating child processes)")
    print(f"  {'':24s} {'off':>9s} {'on':>9s}  off / on")
    for name in best["1"]:
        off, on = best["0"][name], best["1"][name]
        print(f"  {name:24s} {off:8.3f}s {on:8.3f}s  {off / on:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
