"""How many CPU threads torch uses: the setting train.threads, or by default the CPUs this
process may use.

torch's own default is the machine's physical cores, whatever the process may use: in a
container limited to one CPU, or under a job scheduler's CPU mask, its threads then contend
for the same CPUs. Measured on a loaded 2-core machine, the `ave` preset trained at 145 s an
epoch with torch's two threads and 21 s with one (same losses; docs/benchmarks.md). The
default here is the smallest of: the affinity mask (taskset, Slurm, cgroup cpusets), the
cgroup CPU quota (docker --cpus, Kubernetes limits) and torch's current thread count (its
default, OMP_NUM_THREADS, which torchrun sets to 1, or what the caller set: a worker of
`avloc reproduce --jobs N` takes its share of the CPUs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from avloc.util.errors import plural


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs the cgroup CPU quota allows (cgroup v2 cpu.max, v1 cfs_quota / cfs_period),
    None without a quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else float(quota) / float(period)
    except (OSError, ValueError):
        pass
    try:
        quota = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = float((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cpus() -> tuple[int, str]:
    """How many CPUs this process may use, and what limits it (for the log line)."""
    import torch

    try:
        limits = {"affinity mask": len(os.sched_getaffinity(0))}
    except AttributeError:  # not Linux
        limits = {"CPU count": os.cpu_count() or 1}
    quota = cgroup_quota()
    if quota is not None:
        limits["cgroup CPU quota"] = max(1, math.floor(quota))
    limits["torch thread count"] = torch.get_num_threads()
    name = min(limits, key=limits.get)
    return limits[name], name


def use_threads(setting: int) -> str:
    """Set torch's CPU threads from train.threads (0: `usable_cpus`); the line that says so."""
    import torch

    if setting > 0:
        torch.set_num_threads(setting)
        return f"{setting} CPU threads (train.threads={setting})"
    n, limit = usable_cpus()
    torch.set_num_threads(n)
    return (f"{plural(n, 'CPU thread')} (the CPUs this process may use, by its {limit}; on a "
            "machine other jobs share, train.threads=1 can be much faster)")
