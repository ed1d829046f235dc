"""`avloc tune`: the search, what it writes into the run, that eval and localize use it,
and that it never touches the test split."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import yaml

from avloc.cli import main
from avloc.config import LocalizeConfig, load_config
from avloc.runs.layout import TUNED as TUNED_FILE
from avloc.scoring.tune import SEARCH, coordinate_search, tune
from avloc.scoring.tuned_model import load_tuned_model
from avloc.util.errors import AvlocError


def test_coordinate_search_finds_the_best_of_a_separable_score_and_keeps_ties():
    space = {"act_threshold": (0.1, 0.3, 0.5, 0.7), "min_snippets": (1, 2, 3, 4),
             "class_filter": ("mean", "none")}

    def score(c: LocalizeConfig) -> float:  # best at 0.3 and 3; class_filter does nothing
        return -abs(c.act_threshold - 0.3) - abs(c.min_snippets - 3)

    best, trials = coordinate_search(score, LocalizeConfig(), space)
    assert (best.settings.act_threshold, best.settings.min_snippets) == (0.3, 3)
    assert best.settings.class_filter == "mean"  # a tie keeps the start's value
    assert trials[0].settings == LocalizeConfig()
    keys = [tuple(asdict(t.settings).values()) for t in trials]
    assert len(keys) == len(set(keys))  # each setting scored once


@pytest.fixture
def run(action_run, tmp_path):
    """A copy of the session's action run, so tuning it leaves the others alone."""
    data, trained = action_run
    shutil.copytree(trained, tmp_path / "run")
    return data, tmp_path / "run"


def test_tune_writes_better_settings_that_eval_uses(run, capsys):
    data, folder = run
    assert main(["tune", str(folder), "--data", str(data), "--rounds", "2"]) == 0
    printed = capsys.readouterr().out
    assert "<- best" in printed and "(the run's own)" in printed
    doc = yaml.safe_load((folder / TUNED_FILE).read_text())
    info = doc["tuned_on"]
    assert info["split"] == "val" and info["value"] >= info["defaults_value"]
    assert set(doc["localize"]) == set(asdict(LocalizeConfig()))
    for name, values in SEARCH.items():
        assert doc["localize"][name] in values or doc["localize"][name] == getattr(
            LocalizeConfig(), name)

    # eval on val reproduces the tuned validation number and says where it comes from
    assert main(["eval", str(folder), "--data", str(data), "--split", "val",
                 "--json", str(folder / "val.json")]) == 0
    out = capsys.readouterr().out
    assert f"tuned settings from {folder / TUNED_FILE}" in out
    val = json.loads((folder / "val.json").read_text())
    assert val["average_mAP"] == pytest.approx(info["value"], abs=1e-12)

    # --untuned: the checkpoint's own settings, the defaults' number
    assert main(["eval", str(folder), "--data", str(data), "--split", "val", "--untuned",
                 "--json", str(folder / "val0.json")]) == 0
    assert "tuned settings" not in capsys.readouterr().out
    val0 = json.loads((folder / "val0.json").read_text())
    assert val0["average_mAP"] == pytest.approx(info["defaults_value"], abs=1e-12)


def test_tune_never_predicts_nor_scores_the_test_split(run, monkeypatch, tmp_path):
    import avloc.scoring.tune

    data, folder = run
    seen: list[str] = []
    real = avloc.scoring.tune.predict

    def spy(model, videos, *args, **kwargs):
        seen.extend(v.vid for v in videos)
        return real(model, videos, *args, **kwargs)

    monkeypatch.setattr(avloc.scoring.tune, "predict", spy)  # what tune runs the model by
    first = tune(folder, data, rounds=1, write=False)
    ann = json.loads((data / "annotations.json").read_text())["database"]
    subsets = {ann[v]["subset"] for v in seen}
    assert subsets == {"validation"} and len(seen) == first.videos

    # the same data with every test video's features and segments changed: same result
    other = tmp_path / "other"
    shutil.copytree(data, other)
    doc = json.loads((other / "annotations.json").read_text())
    rng = np.random.default_rng(1)
    for vid, entry in doc["database"].items():
        if entry["subset"] == "testing":
            entry["annotations"] = [{"segment": [0.0, 3.0], "label": doc["classes"][0]}]
            with np.load(other / "features" / f"{vid}.npz") as z:
                audio, visual = z["audio"], z["visual"]
            np.savez(other / "features" / f"{vid}.npz",
                     audio=rng.standard_normal(audio.shape).astype(np.float32),
                     visual=rng.standard_normal(visual.shape).astype(np.float32))
    (other / "annotations.json").write_text(json.dumps(doc))
    second = tune(folder, other, rounds=1, write=False)
    assert [(asdict(t.settings), t.value) for t in second.trials] == \
        [(asdict(t.settings), t.value) for t in first.trials]


def test_tune_refuses_event_models_and_bad_tuned_files(run, tmp_path, capsys):
    cfg = load_config("demo", ["model.d_x=16", "train.epochs=1", "data.synth_videos=20",
                               "train.progress=false"])
    from avloc.train import train

    train(cfg, None, tmp_path / "event")
    assert main(["tune", str(tmp_path / "event")]) == 1
    err = capsys.readouterr().err
    assert "argmax accuracy" in err and "nothing to tune" in err and "Traceback" not in err
    assert not (tmp_path / "event" / TUNED_FILE).exists()

    data, folder = run
    (folder / TUNED_FILE).write_text("localize:\n  act_threshold: 1.5\n")
    assert main(["eval", str(folder), "--data", str(data), "--split", "val"]) == 1
    err = capsys.readouterr().err
    assert str(folder / TUNED_FILE) in err and "localize.act_threshold" in err
    (folder / TUNED_FILE).write_text("- a list\n")
    with pytest.raises(AvlocError, match="expected a 'localize' mapping"):
        load_tuned_model(folder)
    assert load_tuned_model(folder, untuned=True).note is None


def test_localize_and_eval_use_the_settings_in_the_run(run, tmp_path, capsys):
    from avloc.scoring.results import read_cas, segments_of

    data, folder = run
    (folder / TUNED_FILE).write_text("localize:\n  act_threshold: 0.2\n  min_snippets: 1\n")
    features = str(data / "features")
    assert main(["localize", "--features", features, "--checkpoint", str(folder), "--out",
                 str(tmp_path / "tuned"), "--no-progress"]) == 0
    assert f"tuned settings from {folder / TUNED_FILE}" in capsys.readouterr().out
    assert main(["localize", "--features", features, "--checkpoint", str(folder), "--out",
                 str(tmp_path / "own"), "--no-progress", "--untuned"]) == 0
    tuned = json.loads((tmp_path / "tuned" / "results.json").read_text())["results"]
    own = json.loads((tmp_path / "own" / "results.json").read_text())["results"]
    assert tuned != own
    cfg = load_config("demo", ["localize.act_threshold=0.2", "localize.min_snippets=1"])
    for vid in list(tuned)[:5]:
        rec = read_cas(tmp_path / "tuned" / "cas" / f"{vid}.npz")
        assert tuned[vid] == json.loads(json.dumps(segments_of(rec, "action", cfg)))


def test_without_validation_videos_tune_says_why(tmp_path):
    """A generic dataset whose training videos have tags only holds out no validation: the
    message names that cause, not data.val_fraction."""
    from test_data_generic import write_generic

    from avloc.train import train

    doc = {"task": "action", "classes": ["dog"], "database": {
        f"t{i}": {"subset": "training", "duration": 6.0, "labels": ["dog"]} for i in range(4)}}
    data = write_generic(tmp_path / "data", doc)
    cfg = load_config("demo", ["data.format=generic", "model.d_x=8", "train.epochs=1",
                               "train.progress=false"])
    train(cfg, data, tmp_path / "run")
    with pytest.raises(AvlocError, match="all 4 training videos have video-level labels only"):
        tune(tmp_path / "run", data)
