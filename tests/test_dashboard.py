"""Training dashboards: TensorBoard events read back, and progress output that suits a
terminal (bars) or a log file (plain lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avloc.cli import main
from avloc.util.errors import AvlocError
from avloc.util.progress import Heartbeat

TINY = ["model.d_x=16", "data.synth_videos=60", "data.synth_background_videos=6",
        "data.synth_audio_dim=12", "data.synth_visual_dim=12", "train.device=cpu"]
STEPS = 3  # per epoch: (60 + 6) videos in batches of 30 - 2 x 3 paired, rounded up


def events(folder: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def train(out: Path, *extra: str, resume: bool = False) -> int:
    if resume:
        return main(["train", "--resume", str(out), *extra])
    return main(["train", "--config", "demo", "--out", str(out), *TINY, *extra])


def test_tensorboard_events_read_back(tmp_path: Path, one_torch_thread) -> None:
    """Every loss term and the learning rate per step, the validation metrics per epoch and
    the CAS figures of the same three validation videos at each evaluation; a resumed run
    continues the steps without drawing any twice."""
    out = tmp_path / "run"
    assert train(out, "train.epochs=1", "train.tensorboard=true", "train.progress=false") == 0
    assert train(out, "train.epochs=2", resume=True) == 0  # the setting stays on
    acc = events(out / "tensorboard")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    for term in ("loss", "mil", "cas", "cont", "pseu"):
        points = acc.Scalars(f"loss/{term}")
        assert [e.step for e in points] == list(range(1, 2 * STEPS + 1)), term
        for epoch in (1, 2):  # the epoch's steps average to its log.jsonl value
            mean = sum(e.value for e in points[(epoch - 1) * STEPS:epoch * STEPS]) / STEPS
            assert mean == pytest.approx(log[epoch - 1][f"loss_{term}"], rel=1e-5)
    lr = acc.Scalars("lr")
    assert len(lr) == 2 * STEPS and all(e.value == pytest.approx(1e-3) for e in lr)  # demo's
    val = acc.Scalars("val/accuracy")
    assert [(e.step, pytest.approx(e.value)) for e in val] == [
        (STEPS, log[0]["val_accuracy"]), (2 * STEPS, log[1]["val_accuracy"])]
    assert "val/mu_inside_events" in acc.Tags()["scalars"]
    assert "val/videos" not in acc.Tags()["scalars"]  # counts are not drawn
    images = sorted(acc.Tags()["images"])
    assert images == ["cas/val_00000", "cas/val_00001", "cas/val_00002"]
    shots = acc.Images(images[0])
    assert [e.step for e in shots] == [STEPS, 2 * STEPS]
    assert shots[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and shots[0].width > 300


def test_without_tensorboard_installed_nothing_starts(tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    assert train(tmp_path / "run", "train.epochs=1", "train.tensorboard=true") == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "avloc: error: setting train.tensorboard=true needs TensorBoard: pip install -e "
        "'.[tensorboard]' (in a checkout), or pip install tensorboard"]
    assert not (tmp_path / "run").exists()


def test_a_log_file_gets_lines_not_bars(tmp_path: Path, capsys, monkeypatch,
                                        one_torch_thread) -> None:
    """Not a terminal (pytest captures both streams, as a log file would): no carriage
    returns, one line per epoch and progress lines inside it; on a terminal, the bar."""
    assert train(tmp_path / "a", "train.epochs=1", "train.progress_minutes=1e-9") == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    lines = [line for line in out.splitlines() if line.startswith("epoch 1: batch")]
    assert [line.split(",")[0] for line in lines] == [
        f"epoch 1: batch {k}/{STEPS} ({100 * k / STEPS:.0f} %)" for k in range(1, STEPS + 1)]
    assert "min left" in lines[0]
    assert sum(line.startswith("epoch   1 |") for line in out.splitlines()) == 1

    assert train(tmp_path / "b", "train.epochs=1") == 0  # default: every 5 minutes
    assert "epoch 1: batch" not in capsys.readouterr().out

    import avloc.train.loop as loop

    monkeypatch.setattr(loop, "interactive", lambda: True)
    assert train(tmp_path / "c", "train.epochs=1", "train.progress_minutes=1e-9") == 0
    out, err = capsys.readouterr()
    assert "\r" in err and "epoch 1: batch" not in out  # the bar instead of the lines


def test_heartbeat_is_due_once_per_interval() -> None:
    now = [0.0]
    beat = Heartbeat(2.0, clock=lambda: now[0])
    seen = []
    for minute in range(7):
        now[0] = minute * 60.0
        seen.append(beat.due())
    assert seen == [False, False, True, False, True, False, True]
    assert not any(Heartbeat(0, clock=lambda: 1e9).due() for _ in range(3))


def test_reproduce_passes_runtime_settings_on(tmp_path: Path) -> None:
    """train.tensorboard=true given to `avloc reproduce` reaches every run, also a partial
    one it resumes, and does not make finished runs a different experiment."""
    from avloc.config import RESUMABLE
    from avloc.report.grid import check_run_folders, load_grid, plan_runs, runtime_overrides

    grid = load_grid("table1")
    specs = plan_runs(grid, tmp_path, overrides=["train.tensorboard=true"])
    assert all(s.cfg.train.tensorboard for s in specs)
    assert "train.tensorboard=true" in runtime_overrides(specs[0].cfg)
    assert {o.split("=")[0] for o in runtime_overrides(specs[0].cfg)} <= set(RESUMABLE)
    before = plan_runs(grid, tmp_path)[0]
    before.dir.mkdir(parents=True)
    (before.dir / "config.yaml").write_text(json.dumps(before.cfg.to_dict()))
    check_run_folders(specs)  # made without events: still the same experiment
    with pytest.raises(AvlocError, match=r"was made with setting train.lr"):
        check_run_folders(plan_runs(grid, tmp_path, overrides=["train.lr=0.5"]))
