"""Kill at any moment, resume exactly: SIGKILL a training process, resume, compare.

An uninterrupted run with the same seed is the reference; a run killed with SIGKILL (at
random steps from outside, or inside each dangerous window: a half-written temporary
file, between the two renames of a checkpoint rotation, between best.pt and last.pt,
after a log line but before its checkpoint, before metrics.json) and then resumed with
`--resume` must end with bit-identical weights, optimizer state, generator states,
best.pt, log.jsonl and metrics.json (timings aside). docs/reliability.md lists them.

Each run is a separate process running `avloc.cli.main(["train", ...])`, exactly what
`python -m avloc train` runs, forked from a server that imported torch once (a fresh
interpreter spends seconds importing torch; SIGKILL, signals and exit codes are those of
a real process). The processes use one CPU thread: on a shared machine more threads make
tiny steps tens of times slower, and a resumed run must anyway use the thread count of
the run it continues (docs/reliability.md, "Determinism").
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from avloc.checkpoint import read_checkpoint
from avloc.cli import main

# tiny, yet validation improves twice (epochs 1 and 2), so best.pt is rewritten mid-run
SETTINGS = ["model.d_x=32", "data.synth_videos=60", "data.synth_background_videos=6",
            "train.lr=0.003", "train.epochs=4", "train.progress=false"]
STEPS_PER_EPOCH = 3  # (60 + 6) videos / (30 - 2 x 3 paired) per batch, rounded up
TOTAL_STEPS = 4 * STEPS_PER_EPOCH
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")
# everything a run imports (torch._dynamo: Adam imports it lazily, seconds), so that each
# forked run starts at once
PRELOAD = ["torch._dynamo", "avloc.cli", "avloc.train", "avloc.data.synthetic",
           "avloc.scoring.evaluate", "avloc.scoring.metrics", "avloc.scoring.segments",
           "avloc.scoring.predict"]
SERVER = multiprocessing.get_context("forkserver") if sys.platform != "win32" else None
if SERVER is not None:
    SERVER.set_forkserver_preload(PRELOAD)


# ---- running avloc in a process with one injected fault ----------------------------------
def install_fault(fault: str) -> None:
    """`point:N`: SIGKILL this process the N-th time `point` is reached; `announce:S`:
    print each finished step and pause S seconds, so that the test can signal the process
    from outside (S = 0: the signal lands wherever the process has got to)."""
    import avloc.checkpoint as ck
    import avloc.train.loop as tr
    import avloc.train.start as start

    point, _, n_text = fault.partition(":")
    n, seen = float(n_text or 0), [0]

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def hit() -> None:
        seen[0] += 1
        if seen[0] == n:
            die()

    def after(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapped(*a: Any, **k: Any) -> Any:
            result = original(*a, **k)
            hit()
            return result

        setattr(owner, name, wrapped)

    if point == "announce":
        step = tr.Trainer.train_step

        def announced(self: Any, *a: Any) -> Any:
            out = step(self, *a)
            print(f"avloc-test step {self.progress.step + 1}", flush=True)
            time.sleep(n)
            return out

        tr.Trainer.train_step = announced
    elif point == "step":  # between an optimizer step and its bookkeeping
        after(tr.Trainer, "train_step")
    elif point == "best":  # best.pt written, last.pt of that epoch not yet
        after(tr.Trainer, "save_best")
    elif point == "log":  # log.jsonl line appended, last.pt of that epoch not yet
        after(tr, "format_log_line")
    elif point == "metrics":  # training done, metrics.json not yet written
        start.write_json_atomic = lambda *a, **k: die()
    elif point == "rotate":  # last.pt moved to last.pt.prev, the new one not renamed in
        replace = os.replace

        def rotating(src: Any, dst: Any) -> None:
            replace(src, dst)
            if str(dst).endswith("last.pt.prev"):
                hit()

        os.replace = rotating  # the os module itself: avloc.util.io renames with it
    elif point == "tmpwrite":  # half of a checkpoint's temporary file on disk
        save = torch.save

        def half_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
            seen[0] += 1
            if seen[0] != n:
                return save(obj, f, *a, **k)
            buf = io.BytesIO()
            save(obj, buf)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            die()

        ck.torch.save = half_save
    elif point:
        raise ValueError(f"unknown fault {fault}")


def child(argv: list[str], fault: str, stdout: str, stderr: str) -> None:
    """The body of one run's process: `avloc ARGV` with `fault` installed."""
    sys.stdout = open(stdout, "w", buffering=1)  # noqa: SIM115 (lives as long as the process)
    sys.stderr = open(stderr, "w", buffering=1)  # noqa: SIM115
    torch.set_num_threads(1)
    install_fault(fault)
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class Run:
    """One avloc process; its stdout and stderr go to files next to the run folder."""

    count = 0

    def __init__(self, argv: list[str], fault: str, logs: Path):
        Run.count += 1
        self.stdout = logs / f"stdout{Run.count}.txt"
        self.stderr = logs / f"stderr{Run.count}.txt"
        self.proc = SERVER.Process(target=child,
                                   args=(argv, fault, str(self.stdout), str(self.stderr)))
        self.proc.start()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 300) -> int:
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.signal(signal.SIGKILL)
            self.proc.join()
            raise AssertionError(f"avloc did not finish in {timeout} s")
        return self.proc.exitcode

    def out(self) -> str:
        return self.stdout.read_text() if self.stdout.exists() else ""

    def err(self) -> str:
        return self.stderr.read_text() if self.stderr.exists() else ""

    def signal_at_step(self, step: int, sig: int) -> None:
        """Send `sig` as soon as the (announcing) run reports `step` or a later one."""
        deadline = time.monotonic() + 300
        while self.proc.is_alive() and time.monotonic() < deadline:
            done = [int(line.split()[-1]) for line in self.out().splitlines()
                    if line.startswith("avloc-test step")]
            if done and done[-1] >= step:
                self.signal(sig)
                return
            time.sleep(0.002)
        raise AssertionError(f"the run ended or stalled before step {step}: {self.err()}")


def avloc(argv: list[str], fault: str = "", logs: Path | None = None) -> Run:
    """Run `avloc ARGV` to its end (or to its injected death)."""
    run = Run(argv, fault, logs or Path(argv[argv.index("--out" if "--out" in argv
                                                      else "--resume") + 1]).parent)
    run.wait()
    return run


def train_args(out: Path, *extra: str) -> list[str]:
    return ["train", "--config", "demo", "--out", str(out), *SETTINGS, *extra]


def resume(out: Path) -> Run:
    done = avloc(["train", "--resume", str(out)])
    assert done.proc.exitcode == 0, done.err()
    return done


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = avloc(train_args(out, "train.checkpoint_every=1"))
    assert done.proc.exitcode == 0, done.err()
    return out


# ---- comparing two run folders ----------------------------------------------------------
def without_seconds(obj: Any) -> Any:
    """Timings differ between any two runs; everything else must not."""
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k not in ("seconds", "checksum")}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def assert_same(a: Any, b: Any, where: str) -> None:
    """Recursive equality; tensors bit for bit (torch.equal, dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def load_run(out: Path) -> dict[str, Any]:
    last = read_checkpoint(out / "last.pt")
    best = read_checkpoint(out / "best.pt")
    return {
        "last": without_seconds({k: last[k] for k in ("model", "optimizer", "progress", "rng")}),
        "best": {"model": best["model"], "epoch": best["epoch"]},
        "metrics": without_seconds(json.loads((out / "metrics.json").read_text())),
        "log": [without_seconds(json.loads(line))
                for line in (out / "log.jsonl").read_text().splitlines()],
    }


def assert_same_run(out: Path, reference: Path) -> None:
    got, want = load_run(out), load_run(reference)
    assert len(got["log"]) == len(want["log"]) == 4, "log.jsonl lines lost or duplicated"
    assert_same(got, want, "run")
    leftovers = [p.name for p in out.glob(".*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


# ---- the tests ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("seed, every", [(0, 0), (1, 1)])
def test_sigkill_at_random_steps_then_resume_is_bit_identical(seed, every, reference, tmp_path):
    """Two SIGKILLs from outside after random numbers of steps, each landing wherever the
    process happens to be (mid-step, mid-save, mid-validation), then a resume to the end.
    checkpoint_every=0 keeps epoch-end checkpoints only, so partial epochs are replayed."""
    out = tmp_path / "run"
    # steps 1..9 of 12: the last steps leave too little time to be sure the kill lands
    first, second = sorted(random.Random(seed).sample(range(1, TOTAL_STEPS - 2), 2))
    argvs = [train_args(out, f"train.checkpoint_every={every}"), ["train", "--resume", str(out)]]
    for argv, step in zip(argvs, (first, second), strict=True):
        run = Run(argv, "announce:0", tmp_path)
        run.signal_at_step(step, signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    resume(out)
    assert_same_run(out, reference)


@pytest.mark.slow
def test_sigkill_inside_each_dangerous_window_then_resume_is_bit_identical(reference, tmp_path):
    """One run killed five times, each time inside a window where a naive writer breaks,
    then last.pt truncated on disk; every resume continues from what the kill left (two
    more kills right after a resume show what it restored: bit-identical replays would
    hide a stale best.pt, nondeterministic ones on a GPU would not).
    3 steps per epoch, a checkpoint after every step, validation improves at epochs 1, 2."""
    out = tmp_path / "run"

    def kill_at(fault: str, argv: list[str] | None = None) -> None:
        done = avloc(argv or ["train", "--resume", str(out)], fault)
        assert done.proc.exitcode == -signal.SIGKILL, f"{fault} not reached: {done.err()}"

    # the 3rd checkpoint write (best.pt of epoch 1) cut off half way
    kill_at("tmpwrite:3", train_args(out, "train.checkpoint_every=1"))
    assert list(out.glob(".best.pt.*.tmp")) and not (out / "best.pt").exists()
    # best.pt of epoch 1 written, the epoch's last.pt not: the resume drops that best.pt
    kill_at("best:1")
    assert read_checkpoint(out / "best.pt")["epoch"] == 1
    assert read_checkpoint(out / "last.pt")["progress"]["best_epoch"] == -1
    kill_at("step:1")  # what the resume found, before it saved anything
    assert not (out / "best.pt").exists()
    # epoch 2 improves: best.pt (epoch 2) rotates best.pt (epoch 1) to best.pt.prev, then
    # its log line; its last.pt never comes, so the resume must bring best.pt.prev back
    # and must not log epoch 2 twice
    kill_at("log:2")
    assert read_checkpoint(out / "best.pt")["epoch"] == 2
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    assert read_checkpoint(out / "last.pt")["progress"]["epoch"] == 1
    kill_at("step:1")
    assert read_checkpoint(out / "best.pt")["epoch"] == 1
    assert not (out / "best.pt.prev").exists()
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").open()] == [1]
    # the 2nd rotation: last.pt renamed to last.pt.prev, the new one not yet in place
    kill_at("rotate:2")
    assert not (out / "last.pt").exists() and (out / "last.pt.prev").exists()
    # training done, metrics.json not written
    kill_at("metrics")
    assert read_checkpoint(out / "last.pt")["progress"]["epoch"] == 4
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 3])  # then damaged on disk
    done = resume(out)
    assert "warning" in done.out() and "last.pt" in done.out()  # reported, .prev used
    assert (out / "last.pt.bad").exists()  # kept for inspection, out of the rotation
    assert_same_run(out, reference)


def test_sigterm_stops_cleanly_after_saving_and_resumes(reference, tmp_path):
    out = tmp_path / "run"
    run = Run(train_args(out, "train.checkpoint_every=0"), "announce:0.5", tmp_path)
    run.signal_at_step(5, signal.SIGTERM)  # during the pause after step 5, mid-epoch 2
    assert run.wait() == 1
    assert run.err().strip().splitlines() == [
        f"avloc: error: stopped by signal; resume with: avloc train --resume {out}"
    ]
    progress = read_checkpoint(out / "last.pt")["progress"]
    # saved where it stopped (2 of epoch 2's 3 batches done), not at the last epoch end
    assert (progress["step"], progress["epoch"], progress["batch"]) == (5, 1, 2)
    resume(out)
    assert_same_run(out, reference)


def test_resume_before_any_checkpoint_starts_over(reference, tmp_path, capsys):
    """Killed in its first epoch with epoch-end checkpoints only: config.yaml exists, no
    checkpoint does. Training into it afresh is refused; --resume starts from step 0."""
    out = tmp_path / "run"
    killed = avloc(train_args(out, "train.checkpoint_every=0"), "step:2")
    assert killed.proc.exitcode == -signal.SIGKILL
    assert (out / "config.yaml").exists() and not (out / "last.pt").exists()
    assert main(train_args(out)) == 1
    assert "already holds a run" in capsys.readouterr().err
    done = resume(out)
    assert "starting from the beginning" in done.out()
    assert_same_run(out, reference)


def test_a_second_process_on_the_same_run_is_refused(tmp_path, capsys):
    """A requeued job resuming a run whose first process still lives must not interleave
    checkpoints with it."""
    out = tmp_path / "run"
    run = Run(train_args(out, "train.checkpoint_every=1"), "announce:0", tmp_path)
    try:
        run.signal_at_step(2, signal.SIGSTOP)  # alive, holding the lock, not finishing
        before = (out / "last.pt").read_bytes()
        assert main(["train", "--resume", str(out)]) == 1
        assert "in use by another avloc process" in capsys.readouterr().err
        assert (out / "last.pt").read_bytes() == before
    finally:
        run.signal(signal.SIGKILL)
        run.wait()


def test_resume_of_a_missing_or_broken_run_folder_is_a_one_line_error(tmp_path, capsys):
    for folder in (tmp_path / "nothing", tmp_path):
        assert main(["train", "--resume", str(folder)]) == 1
        assert capsys.readouterr().err.strip().splitlines() == [
            f"avloc: error: {folder}: not a run folder (no config.yaml) to resume"
        ]
    (tmp_path / "config.yaml").write_text("model: {d_x: [unclosed\n")
    assert main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.yaml: not valid YAML" in err[0]
    (tmp_path / "config.yaml").write_text("model: {d_x: 32}\ntrain: {epochs: many}\n")
    assert main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.epochs" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # nothing written


def test_resume_with_more_epochs_extends_a_finished_run_exactly(reference, tmp_path):
    """`--resume RUN train.epochs=4` on a finished 2-epoch run trains epochs 3 and 4 and
    ends bit-identical to the uninterrupted 4-epoch run (batch order is a function of seed,
    epoch and batch); before, the setting was silently dropped and nothing trained."""
    out = tmp_path / "run"
    first = avloc(train_args(out, "train.checkpoint_every=1", "train.epochs=2"))
    assert first.proc.exitcode == 0, first.err()
    again = avloc(["train", "--resume", str(out)])
    assert again.proc.exitcode == 0 and "has trained all its 2 epochs; nothing to train " \
        f"(to train longer: avloc train --resume {out} train.epochs=N)" in again.out()
    done = avloc(["train", "--resume", str(out), "train.epochs=4"])
    assert done.proc.exitcode == 0, done.err()
    assert_same_run(out, reference)
    assert (out / "config.yaml").read_text() == (reference / "config.yaml").read_text()


def test_resume_refuses_settings_that_would_change_the_experiment(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "demo", "--out", str(out), "model.d_x=8",
                 "data.synth_videos=30", "data.synth_background_videos=0", "train.epochs=2",
                 "train.progress=false"]) == 0
    saved = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    for argv, message in (
        (["model.d_x=16"], f"--resume {out}: setting model.d_x cannot change in a run (it is "
                           "8); start a new run with --out, or change only train.epochs,"),
        (["train.epochs=1"], f"setting train.epochs=1: {out} has already trained epoch 2"),
        (["--config", "ave"], "--config with --resume: the run keeps its folder and settings"),
        (["--out", str(tmp_path / "x")], "--out with --resume: the run keeps its folder"),
    ):
        assert main(["train", "--resume", str(out), *argv]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"avloc: error: {message}"), lines
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == saved
