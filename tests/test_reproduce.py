"""`avloc reproduce`: grids checked up front, resumable runs, sharding, report tables."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

import avloc.train
from avloc.cli import main
from avloc.report.grid import load_grid, plan_runs
from avloc.report.paper import PAPER_TABLES
from avloc.report.reproduce import reproduce
from avloc.report.tables import build_report, main_table, render_markdown, summarize
from avloc.util.errors import AvlocError
from avloc.util.sharding import parse_shard, select_shard

TINY_BASE = {
    "data": {"format": "synthetic", "synth_videos": 24, "synth_background_videos": 4,
             "synth_classes": 3, "synth_audio_dim": 12, "synth_visual_dim": 12},
    "model": {"d_x": 16},
    "train": {"epochs": 2, "batch_size": 8, "similar_pairs": 1, "device": "cpu"},
}


def write_grid(path: Path, variants: list[dict], **extra) -> Path:
    doc = {"title": "tiny", "base": TINY_BASE, "seeds": 2, "variants": variants, **extra}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def tiny_grid(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "tiny.yaml", [
        {"name": "full", "settings": {"model.stages": 1}},
        {"name": "visual", "settings": {"model.modality": "visual", "model.stages": 0}},
    ], reference="full", compare="visual")


def test_presets_match_the_papers_variants(tmp_path: Path):
    t1 = {s.variant: s.cfg for s in plan_runs(load_grid("table1"), tmp_path, seeds=1)}
    assert list(t1) == ["audio-only", "visual-only", "0-stage", "1-stage", "2-stage", "3-stage"]
    assert (t1["audio-only"].model.modality, t1["audio-only"].model.stages) == ("audio", 0)
    assert (t1["visual-only"].model.modality, t1["visual-only"].model.stages) == ("visual", 0)
    assert [t1[f"{n}-stage"].model.stages for n in range(4)] == [0, 1, 2, 3]
    assert all(c.model.classifier == "openmax" and c.loss.beta > 0 and c.loss.gamma > 0
               for c in t1.values())
    t5 = {s.variant: s.cfg for s in plan_runs(load_grid("table5"), tmp_path, seeds=1)}
    got = {n: (c.model.classifier, c.loss.beta, c.loss.gamma, c.model.stages, c.loss.alpha)
           for n, c in t5.items()}
    assert got == {
        "S-0": ("softmax", 0, 0, 2, 0.8), "S-I": ("softmax", 0, 1, 2, 0.8),
        "O-0": ("openmax", 0, 0, 2, 0.8), "O-I": ("openmax", 0.8, 0, 2, 0.8),
        "O-II": ("openmax", 0, 1, 2, 0.8), "O-III": ("openmax", 0.8, 1, 2, 0.8),
    }
    t2 = [s.variant for s in plan_runs(load_grid("table2"), tmp_path, seeds=1)]
    assert t2 == ["S-I", "O-I", "O-II", "O-III"]
    # every preset row has the paper's numbers for both datasets
    for name in ("table1", "table2", "table5"):
        rows = PAPER_TABLES[name]["rows"]
        assert all(v.paper in rows for v in load_grid(name).variants)


def test_seeds_and_run_folders(tiny_grid: Path, tmp_path: Path):
    specs = plan_runs(load_grid(str(tiny_grid)), tmp_path / "out", seeds=3)
    assert [s.key for s in specs][:3] == ["full/seed0", "full/seed1", "full/seed2"]
    assert [s.cfg.train.seed for s in specs] == [0, 1, 2, 0, 1, 2]
    assert specs[4].dir == tmp_path / "out" / "runs" / "visual" / "seed1"
    # the seed is the only difference between two runs of a variant
    a, b = specs[0].cfg.to_dict(), specs[1].cfg.to_dict()
    a["train"].pop("seed"), b["train"].pop("seed")
    assert a == b


@pytest.mark.parametrize("variant, message", [
    ({"name": "bad", "settings": {"model.stage": 2}},
     "variant 'bad': unknown setting 'model.stage'"),
    ({"name": "bad", "settings": {"model.classifier": "softmax"}},
     "variant 'bad': setting loss.beta"),
    ({"name": "bad", "settings": {"model.stages": "two"}}, "variant 'bad': setting model.stages="),
    ({"name": "bad", "settings": {"stages": 2}}, "variant 'bad': setting 'stages'"),
    ({"name": "bad", "settings": {"train.seed": 4}}, "variant 'bad': setting train.seed"),
    ({"name": "bad", "settings": {"train.select_metric": "average_mAP"}},
     "variant 'bad': setting train.select_metric=average_mAP"),
    ({"name": "bad", "extra": 1}, "variant 'bad': unknown key 'extra'"),
    ({"name": "a b"}, "variant 'a b': the name is also a folder name"),
])
def test_bad_variant_fails_before_training(tmp_path: Path, variant: dict, message: str):
    grid = write_grid(tmp_path / "g.yaml", [{"name": "ok"}, variant])
    out = tmp_path / "out"
    with pytest.raises(AvlocError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        reproduce(str(grid), out)
    assert not out.exists()


def test_grid_level_mistakes(tmp_path: Path):
    with pytest.raises(AvlocError, match="unknown key 'varaints'"):
        reproduce(str(write_grid(tmp_path / "a.yaml", [{"name": "x"}], varaints=[])),
                  tmp_path / "o")
    with pytest.raises(AvlocError, match="reference: no variant named 'nope'"):
        reproduce(str(write_grid(tmp_path / "b.yaml", [{"name": "x"}], reference="nope")),
                  tmp_path / "o")
    with pytest.raises(AvlocError, match="variant 'x' is listed twice"):
        reproduce(str(write_grid(tmp_path / "c.yaml", [{"name": "x"}, {"name": "x"}])),
                  tmp_path / "o")
    with pytest.raises(AvlocError, match="seeds=0"):
        reproduce(str(write_grid(tmp_path / "d.yaml", [{"name": "x"}], seeds=0)), tmp_path / "o")
    with pytest.raises(AvlocError, match="grid 'table9': no such file or preset"):
        reproduce("table9", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_override_of_a_varied_setting_is_refused(tiny_grid: Path, tmp_path: Path):
    with pytest.raises(AvlocError, match="override model.stages: variant 'full'"):
        reproduce(str(tiny_grid), tmp_path / "o", overrides=["model.stages=3"])
    with pytest.raises(AvlocError, match="override train.seed"):
        reproduce(str(tiny_grid), tmp_path / "o", overrides=["train.seed=3"])
    with pytest.raises(AvlocError, match="override: unknown setting 'model.nope'"):
        reproduce(str(tiny_grid), tmp_path / "o", overrides=["model.nope=3"])


def test_data_the_grid_cannot_run_on(tmp_path: Path):
    from avloc.config import DataConfig
    from avloc.data.convert import convert_to_generic
    from avloc.data.synthetic import make_synthetic

    ds = make_synthetic(DataConfig(**TINY_BASE["data"]))
    for videos in ds.splits.values():
        for v in videos:
            v.audio[:] = 0.0  # a dataset without sound
    convert_to_generic(ds, tmp_path / "silent")
    base = {**TINY_BASE, "data": {"format": "generic"}}
    variants = [{"name": "visual", "settings": {"model.modality": "visual"}},
                {"name": "audio", "settings": {"model.modality": "audio", "model.stages": 0}}]
    grid = write_grid(tmp_path / "g.yaml", variants)
    doc = yaml.safe_load(grid.read_text())
    doc["base"] = base
    doc["variants"][0]["settings"]["model.stages"] = 0
    grid.write_text(yaml.safe_dump(doc))
    with pytest.raises(AvlocError, match="variant 'audio': setting model.modality=audio: .* no "
                       "audio"):
        reproduce(str(grid), tmp_path / "o", data=str(tmp_path / "silent"))
    # an action-localization grid on event data
    grid = write_grid(tmp_path / "h.yaml", [{"name": "x"}], task="action")
    with pytest.raises(AvlocError, match="task=action: .* is event data"):
        reproduce(str(grid), tmp_path / "o")
    # no validation split to select the model on
    grid = write_grid(tmp_path / "i.yaml", [{"name": "x"}])
    with pytest.raises(AvlocError, match="variant 'x': .* empty val split"):
        reproduce(str(grid), tmp_path / "o", overrides=["data.synth_videos=3"])
    assert not (tmp_path / "o").exists()


def test_shards_partition_the_runs(tiny_grid: Path, tmp_path: Path):
    specs = plan_runs(load_grid(str(tiny_grid)), tmp_path, seeds=3)
    parts = [select_shard(specs, parse_shard(f"{i}/4")) for i in range(1, 5)]
    keys = [s.key for part in parts for s in part]
    assert sorted(keys) == sorted(s.key for s in specs) and len(set(keys)) == len(specs)
    assert [s.key for s in parts[0]] == ["full/seed0", "visual/seed1"]  # round-robin mix
    for bad in ("0/4", "5/4", "1-4", ""):
        with pytest.raises(AvlocError, match="--shard"):
            parse_shard(bad)


def _metrics_mtimes(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns
            for p in out.glob("runs/*/seed*/metrics.json")}


def test_grid_end_to_end_interrupted_and_resumed(tiny_grid: Path, tmp_path: Path, monkeypatch):
    """2 variants x 2 seeds; Ctrl-C in the third run; the rerun trains only what is left."""
    out = tmp_path / "out"
    victim = out / "runs" / "visual" / "seed0"
    end_epoch = avloc.train.Trainer.end_epoch

    def interrupting_end_epoch(self, epoch, *args, **kwargs):
        end_epoch(self, epoch, *args, **kwargs)
        if self.out == victim and epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; training saves and stops

    monkeypatch.setattr(avloc.train.Trainer, "end_epoch", interrupting_end_epoch)
    with pytest.raises(AvlocError, match="interrupted: 2 of 4 runs finished; run the same"):
        reproduce(str(tiny_grid), out)
    assert set(_metrics_mtimes(out)) == {"runs/full/seed0/metrics.json",
                                         "runs/full/seed1/metrics.json"}
    assert (victim / "last.pt").is_file() and not (victim / "metrics.json").exists()
    assert not (out / "runs" / "visual" / "seed1").exists()
    assert not (out / "report.md").exists()
    before = _metrics_mtimes(out)

    monkeypatch.setattr(avloc.train.Trainer, "end_epoch", end_epoch)
    calls = []
    real_train, real_resume = avloc.train.train, avloc.train.resume

    def spy_train(cfg, data_root, run_dir, dataset=None):
        calls.append((Path(run_dir).relative_to(out).as_posix(), False))
        return real_train(cfg, data_root, run_dir, dataset=dataset)

    def spy_resume(run_dir, data_root=None, dataset=None, overrides=None):
        calls.append((Path(run_dir).relative_to(out).as_posix(), True))
        assert "train.tensorboard=false" in overrides  # this call's runtime settings
        return real_resume(run_dir, data_root, dataset=dataset, overrides=overrides)

    monkeypatch.setattr(avloc.train, "train", spy_train)
    monkeypatch.setattr(avloc.train, "resume", spy_resume)
    reproduce(str(tiny_grid), out)
    assert calls == [("runs/visual/seed0", True), ("runs/visual/seed1", False)]
    after = _metrics_mtimes(out)
    assert all(after[k] == v for k, v in before.items())  # finished runs untouched
    epochs = [json.loads(line)["epoch"] for line in (victim / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]

    # the report: every run, mean ± std of the per-seed test numbers
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    for name in ("full", "visual"):
        accs = [json.loads((out / "runs" / name / f"seed{k}" / "metrics.json").read_text())
                ["test"]["accuracy"] for k in (0, 1)]
        s = by_name[name]["summary"]["accuracy"]
        assert s["n"] == 2
        assert s["mean"] == pytest.approx(100 * np.mean(accs))
        assert s["std"] == pytest.approx(100 * np.std(accs, ddof=1))
    assert by_name["visual"]["delta"] == pytest.approx(
        by_name["visual"]["summary"]["accuracy"]["mean"]
        - by_name["full"]["summary"]["accuracy"]["mean"])
    assert report["missing"] == []
    md = (out / "report.md").read_text()
    assert "| full |" in md and "±" in md and "4 of 4 finished" in md
    for fig in ("curves", "cas", "attention"):
        png = out / "figures" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{fig}.png" in md

    # a third call trains nothing and keeps every result
    calls.clear()
    reproduce(str(tiny_grid), out, figures=False)
    assert calls == [] and _metrics_mtimes(out) == after

    # the grid changed under a finished run: refused, not silently mixed
    with pytest.raises(AvlocError, match="runs/full/seed0: was made with setting "
                       "train.epochs=2, the grid now gives 3"):
        reproduce(str(tiny_grid), out, overrides=["train.epochs=3"])


def _fake_run(spec, test: dict, epochs: int = 3) -> None:
    spec.dir.mkdir(parents=True)
    history = [{"epoch": e + 1, "seconds": 1.5, "val_accuracy": 0.5 + e / 10}
               for e in range(epochs)]
    (spec.dir / "metrics.json").write_text(json.dumps(
        {"best_epoch": epochs, "select_metric": "accuracy", "history": history, "test": test}))


def test_report_tables_with_the_papers_numbers(tmp_path: Path):
    """AVE data: paper rows beside ours, marked; columns layout like the paper's Table 1."""
    grid = load_grid("table1")
    specs = plan_runs(grid, tmp_path, seeds=2)
    accs = {"audio-only": (0.30, 0.34), "visual-only": (0.40, 0.50), "0-stage": (0.6, 0.6),
            "1-stage": (0.7, 0.72), "2-stage": (0.76, 0.78)}  # 3-stage not finished
    for s in specs:
        if s.variant in accs:
            _fake_run(s, {"accuracy": accs[s.variant][s.seed]})
    info = {"name": "ave", "label": "AVE", "format": "ave", "task": "event", "data": None,
            "classes": 28, "videos": {"train": 3339, "val": 402, "test": 402}}
    report = build_report(grid, specs, info, [])
    v = {x["name"]: x for x in report["variants"]}
    assert v["audio-only"]["summary"]["accuracy"]["mean"] == pytest.approx(32.0)
    assert v["audio-only"]["summary"]["accuracy"]["std"] == pytest.approx(2.828, abs=1e-3)
    assert v["audio-only"]["delta"] == pytest.approx(32.0 - 77.0)
    assert v["2-stage"]["paper"] == {"accuracy": 77.1}
    assert report["missing"] == ["3-stage/seed0", "3-stage/seed1"]
    lines = main_table(report).splitlines()  # like the paper's Table 1: a column per variant
    assert lines[0] == ("| Variant | audio-only | visual-only | 0-stage | 1-stage | 2-stage "
                        "| 3-stage |")
    ours = next(line for line in lines if line.startswith("| Accuracy (%)"))
    assert ours.split(" | ")[1] == "32.0 ± 2.8" and "**77.0 ± 1.4**" in ours
    paper = next(line for line in lines if line.startswith("| ↳ *paper* Accuracy (%)"))
    assert paper.split(" | ")[1:] == ["*32.1*", "*45.2*", "*65.0*", "*75.0*", "*77.1*", "*75.6* |"]
    md = render_markdown(report)
    assert "copied for comparison; they were not produced by these runs" in md
    assert "`3-stage/seed0`" in md

    info["format"] = "synthetic"
    assert "paper" not in main_table(build_report(grid, specs, info, []))


def test_report_action_data_columns(tmp_path: Path):
    grid = load_grid("table5")
    specs = [s for s in plan_runs(grid, tmp_path, seeds=1) if s.variant in ("O-0", "O-III")]
    for s, base in zip(specs, (0.2, 0.3), strict=True):
        maps = {f"{0.5 + 0.05 * i:.2f}": base - 0.02 * i for i in range(10)}
        _fake_run(s, {"mAP": maps, "average_mAP": float(np.mean(list(maps.values())))})
    info = {"name": "anet", "label": "ActivityNet 1.2", "format": "anet12", "task": "action",
            "data": None, "classes": 100, "videos": {"train": 4337, "val": 482, "test": 2383}}
    report = build_report(grid, specs, info, [])
    o3 = next(v for v in report["variants"] if v["name"] == "O-III")
    assert o3["summary"]["0.70"]["mean"] == pytest.approx(30 - 8)
    assert o3["summary"]["average_mAP"]["std"] is None  # one seed: no spread
    assert o3["paper_table4"]["0.95"] == 1.0
    md = render_markdown(report)
    assert "mAP@0.5 | mAP@0.6 | mAP@0.7 | mAP@0.8 | Avg. 0.5:0.95" in md
    assert "## mAP at every tIoU threshold" in md and "*44.8*" in md


def test_summarize():
    s = summarize([0.5, 0.7, 0.9])
    assert (s.mean, s.std, s.n) == (pytest.approx(70.0), pytest.approx(20.0), 3)
    assert summarize([]) is None


def test_cli_bad_grid_is_one_line(tmp_path: Path, capsys):
    grid = write_grid(tmp_path / "g.yaml", [{"name": "x", "settings": {"model.stagez": 1}}])
    code = main(["reproduce", "--grid", str(grid), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "variant 'x'" in err and "model.stagez" in err and "Traceback" not in err


def test_shard_in_worker_processes_then_report_only(tiny_grid: Path, tmp_path: Path, capsys):
    """--shard 2/2 --jobs 2 trains its half in two spawned workers and writes no report;
    --report-only then gathers what has finished and lists the rest as missing."""
    out = tmp_path / "out"
    assert reproduce(str(tiny_grid), out, shard="2/2", jobs=2, overrides=["train.epochs=1"]) is None
    assert set(_metrics_mtimes(out)) == {"runs/full/seed1/metrics.json",
                                         "runs/visual/seed1/metrics.json"}
    assert "in 2 worker processes" in capsys.readouterr().out
    assert not (out / "report.md").exists()
    for name in ("full", "visual"):
        saved = yaml.safe_load((out / "runs" / name / "seed1" / "config.yaml").read_text())
        assert saved["train"]["seed"] == 1 and saved["train"]["epochs"] == 1

    reproduce(str(tiny_grid), out, report_only=True, figures=False,
              overrides=["train.epochs=1"])
    report = json.loads((out / "report.json").read_text())
    assert report["missing"] == ["full/seed0", "visual/seed0"]
    assert [len(v["runs"]) for v in report["variants"]] == [1, 1]
    assert set(_metrics_mtimes(out)) == {"runs/full/seed1/metrics.json",
                                         "runs/visual/seed1/metrics.json"}  # trained nothing


def test_demo_runs_through_the_grid_runner(tmp_path: Path, monkeypatch, capsys):
    from avloc.demo import run_demo

    tiny = ["data.synth_videos=24", "data.synth_background_videos=4", "data.synth_classes=3",
            "model.d_x=16", "train.epochs=1", "train.batch_size=8", "train.similar_pairs=1"]
    results = run_demo(tmp_path, tiny)
    assert list(results) == ["full (2-stage, open-max)", "audio-only", "visual-only",
                             "naive fusion (0-stage)"]
    table = capsys.readouterr().out
    assert "full (2-stage, open-max)" in table and "oracle" in table
    assert json.loads((tmp_path / "demo.json").read_text()) == results
    calls = []
    monkeypatch.setattr(avloc.train, "train", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(avloc.train, "resume", lambda *a, **k: calls.append(a))
    assert run_demo(tmp_path, tiny) == results and calls == []  # finished runs are kept


def test_report_columns_follow_the_runs_thresholds():
    from avloc.report.tables import ANET_COLUMNS, metric_columns, metric_value
    from avloc.scoring.metrics import TIOU_KEYS

    ALL_TIOU = list(TIOU_KEYS)

    assert metric_columns("action", ALL_TIOU) == ANET_COLUMNS
    thumos = [f"{t / 10:.2f}" for t in range(1, 8)]
    cols = metric_columns("action", thumos)
    assert [k for k, _ in cols] == ["0.30", "0.50", "0.70", "avg 0.10:0.50", "avg 0.30:0.70",
                                    "average_mAP"]
    assert cols[-1][1] == "Avg. 0.10:0.70"
    test = {"mAP": {"0.30": 0.4}, "average_mAP": 0.3, "average_mAP_ranges": {"0.10:0.50": 0.5}}
    assert metric_value(test, "avg 0.10:0.50") == 0.5 and metric_value(test, "0.30") == 0.4
    assert metric_value(test, "avg 0.30:0.70") is None
