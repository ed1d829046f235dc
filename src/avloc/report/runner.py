"""Run a grid's runs one after another or in worker processes; stop and continue any time.

State lives in the run folders only (what avloc.train writes), so the runner keeps no
bookkeeping of its own that could disagree with them:
  metrics.json present      finished: never trained again
  other run files present   interrupted: resumed from its last checkpoint
  nothing                   not started
A run is trained by one process at a time (avloc.train locks the folder), so shards
or two commands pointed at the same output folder skip each other's runs.

Parallel runs use `spawn`ed worker processes (fork and a threaded torch do not mix):
each loads the data once, takes runs from a queue, and uses cores / jobs threads; with
several GPUs each worker sees one of them (CUDA_VISIBLE_DEVICES).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avloc.report.grid import RunSpec, data_key, runtime_overrides
from avloc.runs.layout import TRAIN_LOG, read_metrics, run_state
from avloc.util.cpus import usable_cpus
from avloc.util.errors import AvlocError
from avloc.util.signals import terminate_as_interrupt


@dataclass
class RunResult:
    key: str
    status: str  # started | trained | finished (found done) | failed | busy | stopped
    metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    message: str = ""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the runs in progress saved a checkpoint and stopped."""


def train_run(spec: RunSpec, data_root: str | Path | None, dataset: Any = None) -> dict[str, Any]:
    """Train, resume or just read one run; its console output goes to train.log."""
    from avloc.train import resume, train

    state = run_state(spec.dir)
    if state == "done":
        return read_metrics(spec.dir) or {}
    spec.dir.mkdir(parents=True, exist_ok=True)
    with open(spec.dir / TRAIN_LOG, "a") as log, redirect_stdout(log), redirect_stderr(log):
        verb = "resumed" if state == "partial" else "started"
        print(f"# avloc reproduce: {spec.key} {verb} {time.strftime('%Y-%m-%d %H:%M:%S')}",
              flush=True)
        if state == "partial":
            return resume(spec.dir, data_root, dataset=dataset,
                          overrides=runtime_overrides(spec.cfg))
        return train(spec.cfg, data_root, spec.dir, dataset=dataset)


def _classify(error: AvlocError) -> str:
    text = str(error)
    if text.startswith("stopped by signal"):
        return "stopped"
    if "in use by another avloc process" in text:
        return "busy"
    return "failed"


def _attempt(spec: RunSpec, data_root: str | Path | None, dataset: Any) -> RunResult:
    was_done = run_state(spec.dir) == "done"
    start = time.perf_counter()
    try:
        metrics = train_run(spec, data_root, dataset)
    except AvlocError as e:
        return RunResult(spec.key, _classify(e), None, time.perf_counter() - start, str(e))
    except Exception as e:  # a bug must not take the other runs down; the log has details
        return RunResult(spec.key, "failed", None, time.perf_counter() - start,
                         f"{type(e).__name__}: {e}")
    status = "finished" if was_done else "trained"
    return RunResult(spec.key, status, metrics, time.perf_counter() - start)


# ---- one process -------------------------------------------------------------------------
def run_serial(
    specs: list[RunSpec], data_root: str | Path | None, datasets: dict[str, Any],
    report: Callable[[RunResult], None],
) -> list[RunResult]:
    results = []
    with terminate_as_interrupt():
        for spec in specs:
            report(RunResult(spec.key, "started"))
            try:
                result = _attempt(spec, data_root, datasets.get(data_key(spec.cfg)))
            except KeyboardInterrupt:
                raise Interrupted from None
            if result.status == "stopped":
                raise Interrupted
            results.append(result)
            report(result)
    return results


# ---- worker processes --------------------------------------------------------------------
def gpu_slots(specs: list[RunSpec], jobs: int) -> list[int | None]:
    """The GPU each worker sees: one per worker round-robin when there are several."""
    if any(s.cfg.train.device not in ("auto", "cuda") for s in specs):
        return [None] * jobs
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [w % count if count > 1 else None for w in range(jobs)]


def _worker(tasks: Any, results: Any, data_root: str | None, threads: int, gpu: int | None):
    """A worker process: load each dataset once, train runs until the queue says stop."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; training catches both
    import torch

    torch.set_num_threads(threads)  # train.threads=0 keeps this process's share
    datasets: dict[str, Any] = {}
    while (item := tasks.get()) is not None:
        index, spec = item
        results.put(("start", index, os.getpid()))
        try:
            key = data_key(spec.cfg)
            if key not in datasets and run_state(spec.dir) != "done":
                from avloc.data import load_dataset

                datasets[key] = load_dataset(spec.cfg.data, data_root)
            result = _attempt(spec, data_root, datasets.get(key))
        except AvlocError as e:
            result = RunResult(spec.key, "failed", None, 0.0, str(e))
        results.put(("result", index, result))
        if result.status == "stopped":
            return


def run_parallel(
    specs: list[RunSpec], data_root: str | Path | None, jobs: int,
    report: Callable[[RunResult], None],
) -> list[RunResult]:
    ctx = mp.get_context("spawn")
    tasks, messages = ctx.Queue(), ctx.Queue()
    for item in enumerate(specs):
        tasks.put(item)
    workers = min(jobs, len(specs))
    for _ in range(workers):
        tasks.put(None)
    threads = max(1, usable_cpus()[0] // workers)
    root = str(data_root) if data_root is not None else None
    procs = [ctx.Process(target=_worker, args=(tasks, messages, root, threads, gpu))
             for gpu in gpu_slots(specs, workers)]
    for p in procs:
        p.start()
    results: dict[int, RunResult] = {}
    running: dict[int, int] = {}  # worker pid -> index of the run it trains
    with terminate_as_interrupt():
        try:
            _collect(specs, procs, messages, results, running, report)
        except (KeyboardInterrupt, Interrupted):
            _stop(procs)
            raise Interrupted from None
    for p in procs:
        p.join()
    return [results[i] for i in sorted(results)]


def _collect(specs, procs, messages, results, running, report) -> None:
    idle_checks = 0
    while len(results) < len(specs):
        try:
            msg = messages.get(timeout=1.0)
        except queue.Empty:
            idle_checks += 1
            if idle_checks >= 2:  # a dead worker's last messages had time to arrive
                _reap(specs, procs, results, running, report)
            continue
        idle_checks = 0
        if msg[0] == "start":
            running[msg[2]] = msg[1]
            report(RunResult(specs[msg[1]].key, "started"))
        else:
            _, index, result = msg
            if result.status == "stopped":  # a signal reached the workers: stop them all
                raise Interrupted
            results[index] = result
            for pid in [pid for pid, i in running.items() if i == index]:
                del running[pid]
            report(result)


def _reap(specs, procs, results, running, report) -> None:
    """Runs whose worker died (killed, out of memory) fail; so do runs no worker is left for."""
    for p in procs:
        index = running.get(p.pid)
        if not p.is_alive() and index is not None and index not in results:
            result = RunResult(specs[index].key, "failed", None, 0.0,
                               f"its worker process died (exit code {p.exitcode})")
            results[index] = result
            report(result)
    if not any(p.is_alive() for p in procs):
        for index, spec in enumerate(specs):
            if index not in results:
                results[index] = RunResult(spec.key, "failed", None, 0.0, "no worker left")
                report(results[index])


def _stop(procs: list) -> None:
    """Ask every worker to save and stop (SIGTERM), then wait; kill after two minutes."""
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def run_grid(
    specs: list[RunSpec], data_root: str | Path | None, datasets: dict[str, Any], jobs: int = 1,
    report: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Train every run not finished yet; `report` is called as each run starts
    (status "started") and as it ends."""
    report = report or (lambda result: None)
    if jobs < 1:
        raise AvlocError(f"--jobs {jobs}: must be at least 1")
    if jobs == 1 or len(specs) <= 1:
        return run_serial(specs, data_root, datasets, report)
    return run_parallel(specs, data_root, jobs, report)
