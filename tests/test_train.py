"""Training end to end on small generated data: learning, determinism, checkpoints, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avloc.checkpoint import load_model, read_checkpoint
from avloc.cli import main
from avloc.config import load_config
from avloc.data import load_dataset
from avloc.model import build_model
from avloc.scoring.evaluate import evaluate_split
from avloc.scoring.predict import predict
from avloc.train import train

SMALL = ["model.d_x=128", "data.synth_videos=400", "data.synth_background_videos=40",
         "train.epochs=10", "train.lr=3e-3", "train.progress=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small full-model run shared by the tests below (a few seconds)."""
    out = tmp_path_factory.mktemp("run") / "full"
    cfg = load_config("demo", SMALL)
    metrics = train(cfg, None, out)
    return out, cfg, metrics


def test_training_learns_beyond_chance_and_untrained(trained):
    out, cfg, metrics = trained
    ds = load_dataset(cfg.data, None)
    torch.manual_seed(0)
    untrained = build_model(cfg.model, *ds.feature_dims, ds.num_classes)
    before, _ = evaluate_split(untrained, ds, "test", cfg)
    after = metrics["test"]["accuracy"]
    chance = 1 / (ds.num_classes + 1)
    background_share = np.mean(np.concatenate(
        [ds.annotations[v.vid].snippet_labels == 0 for v in ds.splits["test"]]))
    assert after > before["accuracy"] + 0.2
    assert after > max(chance, background_share) + 0.2  # beats "everything is background"


def test_mu_separates_events_from_background(trained):
    """Video-level labels only, yet mu is high inside events and low outside (docs/paper-notes)."""
    out, cfg, metrics = trained
    model, _, _ = load_model(out)
    ds = load_dataset(cfg.data, None)
    inside, outside = [], []
    for p in predict(model, ds.splits["test"]):
        truth = ds.annotations[p.vid].snippet_labels
        inside.append(p.mu[truth > 0])
        outside.append(p.mu[truth == 0])
    gap = np.concatenate(inside).mean() - np.concatenate(outside).mean()
    assert gap > 0.2
    test = metrics["test"]
    assert test["mu_inside_events"] - test["mu_outside_events"] == pytest.approx(gap, abs=1e-5)


def test_background_recall_counts_background_snippets_labelled_background(trained):
    """The share of ground-truth background snippets whose argmax is background."""
    out, cfg, metrics = trained
    model, _, _ = load_model(out)
    ds = load_dataset(cfg.data, None)
    called, total = 0, 0
    for p in predict(model, ds.splits["test"]):
        background = ds.annotations[p.vid].snippet_labels == 0
        called += int((p.p.argmax(1)[background] == 0).sum())
        total += int(background.sum())
    assert total > 0
    recall = metrics["test"]["background_recall"]
    assert recall == pytest.approx(called / total, abs=1e-3)
    assert 0.3 < recall < 1.0  # found, yet not every snippet called background


def test_paper_notes_numbers_are_what_the_command_prints(trained):
    """docs/paper-notes.md shows `avloc train ...; avloc eval ...` and what it prints: the
    command must be this module's run and the numbers what `avloc eval` prints for it
    (tests/docnumbers.py has the margins), so they cannot drift."""
    from docnumbers import measured, paper_notes_mu, within

    from avloc.scoring.reports import format_event_table

    claim = paper_notes_mu()
    train_argv, eval_argv = claim.commands
    assert train_argv[:2] == ["train", "--config"] and train_argv[2] == "demo"
    assert sorted(train_argv[5:]) == sorted(o for o in SMALL if o != "train.progress=false")
    assert eval_argv == ["eval", train_argv[4], "--split", "test"]
    ours = measured(format_event_table(trained[2]["test"], "test"), claim)
    assert within(claim, ours), f"doc {claim.numbers}, this run {ours}"


def test_run_folder_contents_and_metrics(trained):
    out, _, metrics = trained
    for name in ("config.yaml", "last.pt", "best.pt", "log.jsonl", "metrics.json"):
        assert (out / name).exists(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert 1 <= saved["best_epoch"] <= 10
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 11))
    best = max(r["val_accuracy"] for r in log)
    assert saved["val"]["accuracy"] == pytest.approx(best)  # selected on validation


def test_checkpoint_round_trip_gives_identical_predictions(trained):
    out, cfg, _ = trained
    ckpt = read_checkpoint(out / "best.pt")
    assert ckpt["classes"] == [f"event{c:02d}" for c in range(8)]
    assert ckpt["feature_dims"] == [128, 256]
    model, cfg2, _ = load_model(out)
    assert cfg2 == cfg
    ds = load_dataset(cfg.data, None)
    a = predict(model, ds.splits["test"][:5])
    b = predict(load_model(out / "best.pt")[0], ds.splits["test"][:5])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.p, y.p)


def test_same_seed_same_weights(tmp_path):
    cfg = load_config("demo", ["model.d_x=16", "data.synth_videos=60", "train.epochs=2",
                               "train.progress=false"])
    train(cfg, None, tmp_path / "a")
    train(cfg, None, tmp_path / "b")
    wa = read_checkpoint(tmp_path / "a" / "last.pt")["model"]
    wb = read_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cli_eval_writes_accuracy_json(trained, tmp_path, capsys):
    out, _, metrics = trained
    target = tmp_path / "m.json"
    assert main(["eval", str(out), "--split", "test", "--json", str(target)]) == 0
    result = json.loads(target.read_text())
    assert result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    printed = capsys.readouterr().out
    assert "snippet accuracy" in printed and "oracle" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--config", "demo", "--out", "{tmp}/r", "model.stages=x"], "model.stages"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "model.nope=1"], "unknown setting"),
        (["train", "--config", "nope", "--out", "{tmp}/r"], "no such file or preset"),
        (["train", "--config", "ave", "--data", "{tmp}/missing", "--out", "{tmp}/r"],
         "does not exist"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "model.classifier=softmax"],
         "loss.beta"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "train.epochs=0"], "train.epochs"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "loss.pseudo_renormalize=true",
          "loss.pseudo_video_classes=false"], "loss.pseudo_renormalize"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "localize.nms_iou=1"],
         "localize.nms_iou"),  # at load, not at the first validation
        (["train", "--config", "demo", "--out", "{tmp}/r", "train.device=gpu"], "train.device"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "loss.pseudo_relative=0.7"],
         "loss.pseudo_relative"),
        (["train", "--config", "llp_demo", "--out", "{tmp}/r", "loss.pseudo_relative=0.5"],
         "parsing head"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "train.select_metric=average_mAP"],
         "train.select_metric"),
        (["train", "--config", "demo", "--out", "{tmp}/r", "data.synth_static_share=2"],
         "data.synth_static_share"),
        (["eval", "{tmp}/nothing"], "checkpoint not found"),
    ],
)
def test_bad_input_is_one_line_error_without_output(args, message, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("avloc: error:") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_resume_finds_the_runs_dataset_folder_without_data(tmp_path, capsys):
    """`--resume RUN` alone trains on the folder the run started on; a moved folder is a
    one-line error that says so; --data still overrides."""
    from avloc.data.convert import convert_to_generic

    cfg = load_config("demo", ["data.synth_videos=40", "data.synth_background_videos=4"])
    convert_to_generic(load_dataset(cfg.data, None), tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", "--config", "demo", "--data", "data", "--out", str(out),
            "data.format=generic", "model.d_x=16", "train.epochs=1", "train.progress=false"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # a relative --data is remembered as an absolute path
        assert main(args) == 0
    assert (out / "data.txt").read_text().strip() == str(tmp_path / "data")
    (out / "metrics.json").unlink()
    assert main(["train", "--resume", str(out)]) == 0
    assert (out / "metrics.json").exists()
    (tmp_path / "data").rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no longer exists" in err[0] and "--data" in err[0]
    assert main(["train", "--resume", str(out), "--data", str(tmp_path / "moved")]) == 0


def test_training_into_an_existing_run_is_refused(trained, capsys):
    out, _, _ = trained
    assert main(["train", "--config", "demo", "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err


def test_eval_rejects_wrong_feature_dims(trained, tmp_path, capsys):
    """A checkpoint only runs on data with its feature sizes."""
    out, _, _ = trained
    assert main(["eval", str(out), "--data-format", "synthetic"]) == 0
    capsys.readouterr()
    from avloc.data.convert import convert_to_generic

    cfg = load_config("demo", ["data.synth_audio_dim=64", "data.synth_videos=8"])
    convert_to_generic(load_dataset(cfg.data, None), tmp_path / "g")
    assert main(["eval", str(out), "--data", str(tmp_path / "g"), "--data-format", "generic"]) == 1
    assert "dims" in capsys.readouterr().err


def test_accuracy_separated_ranks_separated_epochs_by_accuracy_and_the_rest_below():
    from avloc.scoring.evaluate import selection_value

    def epoch(acc, inside, outside):
        return {"accuracy": acc, "mu_inside_events": inside, "mu_outside_events": outside}

    flat_best = epoch(0.92, 0.98, 0.90)  # the accuracy peak before mu separates
    separated = epoch(0.90, 0.95, 0.55)
    rank = lambda m: selection_value(m, "accuracy_separated", 0.3)  # noqa: E731
    assert rank(separated) == 1.90 and rank(separated) > rank(flat_best)
    assert rank(epoch(0.99, 0.9, 0.8)) < rank(epoch(0.10, 0.9, 0.55))  # separated first
    # while no epoch separates, the accuracy ranks them
    assert rank(flat_best) == 0.92 and rank(epoch(0.5, 0.9, 0.7)) < rank(flat_best)
    assert rank(epoch(0.8, 0.9, None)) == 0.8  # no background on validation: accuracy
    assert selection_value(flat_best, "accuracy", 0.3) == 0.92


def test_accuracy_separated_keeps_a_separated_epoch(tmp_path):
    cfg = load_config("demo", [*SMALL, "train.epochs=4", "train.select_metric=accuracy_separated"])
    metrics = train(cfg, None, tmp_path / "run")
    history = metrics["history"]
    best = next(r for r in history if r["epoch"] == metrics["best_epoch"])
    assert metrics["select_metric"] == "accuracy_separated"
    separated = [r for r in history if r["val_mu_separated"]]
    assert best["val_mu_separated"] == bool(separated)
    pool = separated or history  # the most accurate separated epoch, else of all
    assert best["val_accuracy_separated"] == max(r["val_accuracy_separated"] for r in pool)
