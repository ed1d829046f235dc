"""Wall time of `avloc reproduce` for a whole grid on the embedded demo data.

    .venv/bin/python benchmarks/bench_reproduce.py [--grid table1] [--seeds 3] [--jobs 2]
                                                  [--out DIR] [KEY=VALUE ...]

Trains the grid from scratch into a fresh folder (a temporary one unless --out is given)
and writes the report with its figures, exactly as the command does. Printed: wall time,
CPU time of this process and its workers, the load average sampled every 5 s (the
machine may be shared: a load above the core count means the timing is inflated), the
summed per-epoch training time of the runs, and the report's table. CPU seconds / cores
is what the grid would take with the cores to itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average while the grid runs."""

    def __init__(self, every: float = 5.0):
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(os.getloadavg()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="table1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", help="output folder (default: a temporary one, removed)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()

    import json

    from avloc.report.reproduce import reproduce
    from avloc.util.cpus import usable_cpus

    with tempfile.TemporaryDirectory(prefix="bench_reproduce_") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / args.grid
        if out.exists() and any(out.iterdir()):
            print(f"{out} is not empty: the benchmark trains from scratch", file=sys.stderr)
            return 1
        load_before = os.getloadavg()[0]
        sampler = LoadSampler()
        sampler.start()
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        reproduce(args.grid, out, seeds=args.seeds, jobs=args.jobs, overrides=args.overrides)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        sampler.done.set()
        report = json.loads((out / "report.json").read_text())

    loads = sampler.samples or [load_before]
    runs = [r for v in report["variants"] for r in v["runs"]]
    cores = usable_cpus()[0]
    print(f"\ngrid {args.grid}: {len(runs)} runs ({len(report['variants'])} variants x "
          f"{args.seeds} seeds), --jobs {args.jobs}, {cores} cores"
          + (f", overrides {' '.join(args.overrides)}" if args.overrides else ""))
    print(f"wall time       {wall:8.1f} s  ({wall / 60:.1f} min), report and figures included")
    print(f"CPU time        {cpu:8.1f} s  (all processes); / {cores} cores = "
          f"{cpu / cores / 60:.1f} min with the machine to itself")
    print(f"training time   {sum(r['train_seconds'] for r in runs):8.1f} s  "
          "(sum over runs of the logged epoch times)")
    print(f"load average    {load_before:.1f} before, {sum(loads) / len(loads):.1f} mean, "
          f"{max(loads):.1f} max during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
