"""The CPU threads torch uses: train.threads, or the CPUs this process may use (affinity,
cgroup quota, torch's own count)."""

from __future__ import annotations

import torch

from avloc.util.cpus import cgroup_quota, usable_cpus, use_threads


def test_cgroup_quota_v2_and_v1(tmp_path):
    assert cgroup_quota(tmp_path) is None  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    assert cgroup_quota(v1) == 2.0


def test_the_smallest_limit_wins_and_the_setting_overrides(monkeypatch):
    import avloc.util.cpus

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(avloc.util.cpus, "cgroup_quota", lambda: 1.5)
        torch.set_num_threads(2)
        assert usable_cpus() == (1, "cgroup CPU quota")
        assert use_threads(0).startswith("1 CPU thread (the CPUs this process may use, by its "
                                         "cgroup CPU quota")
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(avloc.util.cpus, "cgroup_quota", lambda: None)
        torch.set_num_threads(1)  # a caller's choice (a worker's share) is kept
        assert usable_cpus()[0] == 1
        assert use_threads(3) == "3 CPU threads (train.threads=3)"
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_the_affinity_mask_limits_the_threads(monkeypatch):
    """A CPU mask of 3 CPUs (taskset, Slurm) on a process torch would give more threads:
    3 threads, and the log line names the mask."""
    import avloc.util.cpus

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(avloc.util.cpus.os, "sched_getaffinity", lambda pid: {0, 2, 5},
                            raising=False)
        monkeypatch.setattr(avloc.util.cpus, "cgroup_quota", lambda: 4.0)
        torch.set_num_threads(8)
        assert usable_cpus() == (3, "affinity mask")
        assert use_threads(0).startswith("3 CPU threads (the CPUs this process may use, by "
                                         "its affinity mask")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
