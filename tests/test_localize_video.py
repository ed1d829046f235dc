"""`avloc localize`: the real clip through the bundled networks and a checkpoint trained
here on generated features of the same back-ends (YAMNet 1024-d, EfficientNet-Lite0 1280-d)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avloc.cli import main
from avloc.config import load_config
from avloc.train import train
from avloc.util.errors import AvlocError

pytest.importorskip("av", reason="the video extra is not installed (pip install -e '.[video]')")
pytest.importorskip("onnxruntime", reason="the video extra is not installed")

EXTRACTORS = {"audio_backend": "yamnet", "visual_backend": "efficientnet_lite0",
              "snippet_seconds": 1.0, "frames_per_snippet": 1}


def write_generic(root, extractors, n=24, dims=(1024, 1280)):
    """A small generic-layout dataset whose .npz files record `avloc extract` settings."""
    from avloc.extract.store import write_features

    rng = np.random.default_rng(0)
    (root / "features").mkdir(parents=True)
    database = {}
    for i in range(n):
        vid = f"v{i:02d}"
        label = ["dog", "speech"][i % 2]
        audio = rng.standard_normal((10, dims[0])).astype(np.float32)
        visual = rng.standard_normal((10, dims[1])).astype(np.float32)
        start = int(rng.integers(0, 5))
        audio[start:start + 4, i % 2] += 4.0  # the class shows in one feature dimension
        write_features(root / "features" / f"{vid}.npz", audio, visual, dict(extractors))
        subset = "training" if i < n - 6 else ("validation" if i < n - 3 else "testing")
        database[vid] = {"subset": subset, "duration": 10.0,
                         "annotations": [{"segment": [start, start + 4], "label": label}]}
    doc = {"task": "event", "snippet_seconds": 1.0, "database": database}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = write_generic(tmp_path_factory.mktemp("gen") / "data", EXTRACTORS)
    cfg = load_config("demo", ["data.format=generic", "model.d_x=32", "train.epochs=2",
                               "train.progress=false", "train.batch_size=8"])
    out = tmp_path_factory.mktemp("run") / "r"
    train(cfg, root, out)
    return out


def test_localize_real_clip_writes_segments_table_and_figure(run_dir, real_video, tmp_path,
                                                             capsys):
    assert main(["localize", str(real_video), "--checkpoint", str(run_dir),
                 "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "BjCEufrlXm4_segments.json").read_text())
    assert set(result) >= {"version", "results", "external_data"}
    segments = result["results"]["BjCEufrlXm4"]
    for s in segments:
        assert s["label"] in ("dog", "speech")
        assert 0 <= s["segment"][0] < s["segment"][1] <= 10.0
    assert (tmp_path / "BjCEufrlXm4_cas.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "10 snippets of 1 s" in printed
    assert (f"{len(segments)} segment" + ("s" if len(segments) != 1 else "")) in printed
    # what every batch writes: the same segments in results.json, the raw outputs, the cache
    batch = json.loads((tmp_path / "results.json").read_text())["results"]
    assert batch == result["results"]
    from avloc.scoring.results import read_cas

    rec = read_cas(tmp_path / "cas" / "BjCEufrlXm4.npz")
    assert rec.cas.shape == (10, 2) and rec.meta["source"] == str(real_video)
    assert (tmp_path / "features" / "BjCEufrlXm4.npz").is_file()


def test_segments_agree_with_the_snippet_argmax(run_dir, real_video):
    from avloc.infer import localize_video
    from avloc.scoring.segments import argmax_labels

    loc = localize_video(real_video, run_dir)
    labels = argmax_labels(loc.prediction.p)  # (T,)
    covered = np.zeros(len(labels), dtype=int)
    for s in loc.segments:
        a, b = (int(round(t)) for t in s["segment"])
        covered[a:b] = loc.classes.index(s["label"]) + 1
    np.testing.assert_array_equal(covered, labels)


def test_backend_mismatch_and_unrecorded_extractors_are_clear_errors(run_dir, real_video,
                                                                     tmp_path, capsys):
    assert main(["localize", str(real_video), "--checkpoint", str(run_dir),
                 "--visual-backend", "resnet152", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "efficientnet_lite0" in err and "resnet152" in err
    assert not list(tmp_path.iterdir())  # nothing written

    cfg = load_config("demo", ["model.d_x=16", "train.epochs=1", "data.synth_videos=20",
                               "train.progress=false"])
    train(cfg, None, tmp_path / "synth")
    from avloc.infer import localize_video

    with pytest.raises(AvlocError, match="records no feature extractors"):
        localize_video(real_video, tmp_path / "synth")


# ---- a parsing model (LLP): audio and visual event tracks ---------------------------------------
def write_llp_extract(root, audio, visual, extractors, n=24):
    """An LLP folder (AVVP CSVs + features/<clip>.npz, as `avloc extract` writes them):
    noisy copies of the real clip labelled, as in LLP, Speech and Dog (heard; the dog also
    seen), and noise clips labelled Car."""
    from avloc.extract.store import write_features

    rng = np.random.default_rng(0)
    (root / "features").mkdir(parents=True)
    lists = {"train": [], "val": [], "test": []}
    events = {"audio": [], "visual": []}
    for i in range(n):
        clip = f"clip{i:07d}_0_10"
        copy = i % 2 == 0
        a = audio + 0.3 * rng.standard_normal(audio.shape) if copy else rng.standard_normal(
            audio.shape)
        v = visual + 0.3 * rng.standard_normal(visual.shape) if copy else rng.standard_normal(
            visual.shape)
        write_features(root / "features" / f"{clip}.npz", a, v, dict(extractors))
        split = "train" if i < n - 8 else ("val" if i < n - 4 else "test")
        lists[split].append(f"{clip}\t{'Speech,Dog' if copy else 'Car'}")
        if split != "train":
            if copy:
                events["audio"] += [f"{clip}\t0\t10\tSpeech", f"{clip}\t2\t8\tDog"]
                events["visual"].append(f"{clip}\t2\t8\tDog")
            else:
                events["visual"].append(f"{clip}\t0\t10\tCar")
    for split, name in (("train", "AVVP_train.csv"), ("val", "AVVP_val_pd.csv"),
                        ("test", "AVVP_test_pd.csv")):
        (root / name).write_text("\n".join(["filename\tevent_labels", *lists[split]]) + "\n")
    for m, rows in events.items():
        (root / f"AVVP_eval_{m}.csv").write_text(
            "\n".join(["filename\tonset\toffset\tevent_labels", *rows]) + "\n")
    return root


@pytest.fixture(scope="module")
def parsing_run(tmp_path_factory, real_video):
    from avloc.extract import extract_video, make_audio_backend, make_visual_backend

    audio, visual, _ = extract_video(real_video, make_audio_backend("yamnet"),
                                     make_visual_backend("efficientnet_lite0"), 1.0, 1)
    root = write_llp_extract(tmp_path_factory.mktemp("llp") / "data", audio[:10], visual[:10],
                             EXTRACTORS)
    cfg = load_config("llp", ["model.d_x=32", "train.epochs=30", "train.batch_size=8",
                              "train.lr=3e-3", "train.progress=false"])
    out = tmp_path_factory.mktemp("run") / "parsing"
    train(cfg, root, out)
    return out


def test_localize_with_a_parsing_model_gives_audio_and_visual_tracks(parsing_run, real_video,
                                                                      tmp_path, capsys):
    assert main(["localize", str(real_video), "--checkpoint", str(parsing_run),
                 "--out", str(tmp_path)]) == 0
    events = json.loads((tmp_path / "BjCEufrlXm4_segments.json").read_text())["results"][
        "BjCEufrlXm4"]
    assert {e["modality"] for e in events} == {"audio", "visual"}
    heard = {e["label"] for e in events if e["modality"] == "audio"}
    assert {"Speech", "Dog"} <= heard and "Car" not in heard
    for e in events:
        assert 0 <= e["segment"][0] < e["segment"][1] <= 10
    assert (tmp_path / "BjCEufrlXm4_cas.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert printed.count("parsing events decided at thresholds") == 1  # said once
    assert "(tuned on the validation split, " in printed
    assert "modality" in printed and "visual    Dog" in printed
    # --untuned: the checkpoint's own thresholds, the protocol's 0.5
    assert main(["localize", str(real_video), "--checkpoint", str(parsing_run), "--untuned",
                 "--out", str(tmp_path / "untuned")]) == 0
    assert "video 0.50, audio 0.50, visual 0.50 (the LLP protocol)" in capsys.readouterr().out
