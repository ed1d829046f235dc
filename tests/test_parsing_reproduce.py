"""Audio-visual video parsing through `avloc reproduce` (the `parsing` grid), `avloc demo
--task parsing` and `avloc plot`: report columns, figures, checks before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avloc.cli import main
from avloc.report.grid import load_grid, plan_runs
from avloc.report.reproduce import reproduce
from avloc.util.errors import AvlocError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ["data.synth_videos=40", "model.d_x=16", "train.epochs=2", "train.batch_size=16"]


def test_parsing_grid_variants(tmp_path: Path):
    runs = {s.variant: s.cfg for s in plan_runs(load_grid("parsing"), tmp_path, seeds=1)}
    assert list(runs) == ["audio-only", "visual-only", "0-stage", "1-stage", "2-stage",
                          "0-stage_pseu", "2-stage_pseu", "2-stage_all", "2-stage_ma",
                          "2-stage_ma_ratio1"]
    assert all(c.model.head == "parsing" and c.data.format == "llp_synthetic"
               for c in runs.values())
    assert (runs["audio-only"].model.modality, runs["audio-only"].model.stages) == ("audio", 0)
    assert [runs[f"{n}-stage"].model.stages for n in range(3)] == [0, 1, 2]
    assert (runs["2-stage"].loss.alpha, runs["2-stage"].loss.beta,
            runs["2-stage"].loss.gamma) == (0, 0, 0)
    assert (runs["2-stage_all"].loss.alpha, runs["2-stage_all"].loss.beta,
            runs["2-stage_all"].loss.gamma) == (0.8, 0.8, 1.0)
    assert runs["2-stage"].train.label_refinement == "none"
    assert (runs["2-stage_ma"].train.label_refinement, runs["2-stage_ma"].train.ma_ratio,
            runs["2-stage_ma_ratio1"].train.ma_ratio) == ("ma", 0.5, 1.0)


def test_parsing_grid_end_to_end_report_and_figures(tmp_path: Path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(json.dumps({
        "title": "tiny parsing", "base": "llp_demo", "seeds": 1, "reference": "av",
        "compare": "audio", "task": "parsing",
        "variants": [{"name": "av", "settings": {"model.stages": 1}},
                     {"name": "audio", "settings": {"model.modality": "audio",
                                                    "model.stages": 0}}]}))
    md = reproduce(str(grid), tmp_path / "out", overrides=TINY)
    text = md.read_text()
    assert "Seg. Type@AV" in text
    assert "Event Event@AV" in text and "segment-level Type@AV" in text
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["metric"]["headline"] == "segment_level.type_av"
    summary = report["variants"][0]["summary"]
    assert {"segment_level.type_av", "event_level.event_av"} <= set(summary)
    figures = {f["path"] for f in report["figures"]}
    assert figures == {"figures/curves.png", "figures/events.png", "figures/attention.png"}
    assert (tmp_path / "out" / "figures" / "events.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "test segment-level Type@AV" in printed


def test_a_parsing_grid_on_event_data_fails_before_training(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text(json.dumps({"base": "demo", "seeds": 1, "task": "parsing",
                                "variants": [{"name": "x"}]}))
    with pytest.raises(AvlocError, match="task=parsing: .* is event data \\(snippet accuracy\\)"):
        reproduce(str(grid), tmp_path / "o", overrides=["data.synth_videos=20"])
    variant = {"name": "x", "settings": {"model.head": "parsing"}}
    grid.write_text(json.dumps({"base": "demo", "seeds": 1, "variants": [variant]}))
    with pytest.raises(AvlocError, match="variant 'x': setting model.head=parsing: dataset "
                       "synthetic is event data"):
        reproduce(str(grid), tmp_path / "o", overrides=["data.synth_videos=20"])
    assert not (tmp_path / "o").exists()


def test_demo_task_parsing(tmp_path: Path, capsys):
    from avloc.demo import run_demo

    results = run_demo(tmp_path / "demo", TINY, task="parsing")
    assert list(results) == ["full (2-stage, parsing head)", "audio-only", "visual-only",
                             "0-stage (no cross attention)"]
    table = capsys.readouterr().out
    assert "Synthetic LLP-like data" in table and "Type@AV" in table and "heard-only" in table
    assert json.loads((tmp_path / "demo" / "demo.json").read_text()) == results


def test_plot_cas_of_a_parsing_run_draws_event_tracks(tmp_path: Path, capsys):
    from avloc.config import load_config
    from avloc.train import train

    train(load_config("llp_demo", [*TINY, "train.progress=false"]), None, tmp_path / "run")
    assert main(["plot", "cas", str(tmp_path / "run"), "--out", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "e.png").stat().st_size > 10_000
    assert main(["plot", "attention", str(tmp_path / "run"),
                 "--out", str(tmp_path / "a.png")]) == 0


def test_the_benchmarks_ma_grid_is_rows_of_the_parsing_grid(tmp_path: Path):
    grid = Path(__file__).parents[1] / "benchmarks" / "grids" / "parsing_ma.yaml"
    part = {s.variant: s.cfg for s in plan_runs(load_grid(str(grid)), tmp_path, seeds=1)}
    full = {s.variant: s.cfg for s in plan_runs(load_grid("parsing"), tmp_path, seeds=1)}
    assert list(part) == ["2-stage", "2-stage_ma", "2-stage_ma_ratio1"]
    assert all(cfg == full[name] for name, cfg in part.items())
