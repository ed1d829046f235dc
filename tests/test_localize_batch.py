"""`avloc localize` on many videos and `avloc eval --out`: one results JSON, CAS files per
video, the extraction cache of `avloc extract`, failures skipped, and a killed batch that a
rerun finishes without redoing anything.

The model here is trained on the diagnostic back-ends (rms audio, mean-RGB visual), so
videos of known colours extract in milliseconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avloc.cli import main
from avloc.config import load_config
from avloc.scoring.results import read_cas
from avloc.util.errors import AvlocError

EXTRACTORS = {"audio_backend": "rms", "visual_backend": "meanrgb", "snippet_seconds": 1.0,
              "frames_per_snippet": 1}
RED, GREEN, GREY = (255, 0, 0), (0, 255, 0), (128, 128, 128)


def colour_features(root: Path, n: int = 24) -> Path:
    """A generic event dataset whose .npz files say they come from rms + meanrgb: a red or
    a green event (the colour, and a louder sound) in grey, silent 10-second videos."""
    from avloc.extract.store import write_features

    rng = np.random.default_rng(0)
    (root / "features").mkdir(parents=True)
    database = {}
    for i in range(n):
        label, colour = [("red", RED), ("green", GREEN)][i % 2]
        start = int(rng.integers(0, 6))
        visual = np.tile(np.array(GREY, np.float32) / 255, (10, 1))  # (10, 3)
        visual[start:start + 4] = np.array(colour, np.float32) / 255
        audio = np.full((10, 1), 0.01, np.float32)  # (10, 1)
        audio[start:start + 4] = 0.3
        visual += rng.normal(0, 0.02, visual.shape).astype(np.float32)
        write_features(root / "features" / f"v{i:02d}.npz", audio, visual, dict(EXTRACTORS))
        subset = "training" if i < n - 6 else ("validation" if i < n - 3 else "testing")
        database[f"v{i:02d}"] = {"subset": subset, "duration": 10.0, "annotations": [
            {"segment": [start, start + 4], "label": label}]}
    (root / "annotations.json").write_text(json.dumps(
        {"task": "event", "snippet_seconds": 1.0, "database": database}))
    return root


def train_run(data: Path, out: Path, seed: int = 0) -> Path:
    from avloc.train import train

    cfg = load_config("demo", ["data.format=generic", "model.d_x=16", "train.epochs=3",
                               "train.progress=false", "train.batch_size=8",
                               f"train.seed={seed}"])
    train(cfg, data, out)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("colours")
    return train_run(colour_features(root / "data"), root / "run")


def colour_video(path: Path, colour=RED, start: float = 1.0, end: float = 3.0,
                 duration: float = 5.0) -> Path:
    from testvideo import make_test_video

    return make_test_video(path, duration, [(0.0, GREY), (start, colour), (end, GREY)],
                           tone=(start, end, 440.0, 0.5))


@pytest.fixture
def videos(tmp_path):
    pytest.importorskip("av", reason="the video extra is not installed: pip install 'avloc[video]'")
    folder = tmp_path / "videos"
    folder.mkdir()
    for k, colour in enumerate([RED, GREEN, RED]):
        colour_video(folder / f"clip{k}.mp4", colour, start=1.0 + k)
    single = colour_video(tmp_path / "extra.mp4", GREEN)
    return folder, single


def stat(path: Path) -> tuple[int, int]:
    s = path.stat()
    return s.st_ino, s.st_mtime_ns


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]


def test_a_batch_of_folders_and_files_gives_one_results_file_and_cas_per_video(
        run_dir, videos, tmp_path, capsys):
    folder, single = videos
    out = tmp_path / "out"
    assert main(["localize", str(folder), str(single), "--checkpoint", str(run_dir),
                 "--out", str(out), "--no-progress"]) == 0
    assert "4 videos: 4 localized, 0 already done, 0 failed" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["clip0", "clip1", "clip2", "extra"]
    for vid in results:
        rec = read_cas(out / "cas" / f"{vid}.npz")
        assert rec.cas.shape == (5, 2) and rec.classes == ["green", "red"]
        assert rec.mu.shape == (5,) and rec.background.shape == (5,)
        np.testing.assert_allclose(rec.times, [[t, t + 1] for t in range(5)])
        np.testing.assert_allclose(rec.p.sum(axis=1), 1, atol=1e-5)  # background + classes
        assert rec.meta["source"].endswith(f"{vid}.mp4") and rec.meta["task"] == "event"
        assert (out / "features" / f"{vid}.npz").is_file()  # the extraction cache
    assert not (out / "extra_cas.png").exists()  # a batch writes no per-video figures

    # scorable by `avloc score`: every detection of the file is counted
    gt = {"database": {vid: {"subset": "validation", "duration": 5.0, "annotations": [
        {"segment": [1.0, 3.0], "label": "red"}]} for vid in results}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert main(["score", str(tmp_path / "gt.json"), str(out / "results.json"),
                 "--json", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["detections"] == sum(len(v) for v in results.values()) > 0


def test_features_only_and_settings_that_do_not_match_the_checkpoint(run_dir, tmp_path,
                                                                      capsys):
    from avloc.extract.store import write_features

    feats = tmp_path / "feats"
    feats.mkdir()
    visual = np.tile(np.array(RED, np.float32) / 255, (8, 1))  # (8, 3)
    write_features(feats / "a.npz", np.zeros((8, 1), np.float32), visual, dict(EXTRACTORS))
    other = dict(EXTRACTORS, snippet_seconds=0.5)
    write_features(feats / "b.npz", np.zeros((8, 1), np.float32), visual, other)
    (feats / "c.npz").write_bytes(b"not a zip file")
    out = tmp_path / "out"
    assert main(["localize", "--features", str(feats), "--checkpoint", str(run_dir),
                 "--out", str(out), "--no-progress"]) == 1
    printed = capsys.readouterr()
    err = printed.err  # each failure said once, when it happens
    assert err.count("failed: ") == 2 and err.count("b.npz: video b") == 1
    assert "snippet_seconds" in err and "not a readable feature file" in err
    assert "3 videos: 1 localized, 0 already done, 2 failed" in printed.out
    assert list(json.loads((out / "results.json").read_text())["results"]) == ["a"]
    assert not (out / "features").exists()  # --features DIR is the cache: nothing copied


def test_a_broken_video_is_reported_and_the_rest_go_on(run_dir, videos, tmp_path, capsys):
    folder, _ = videos
    (folder / "broken.mp4").write_bytes(os.urandom(2000))
    out = tmp_path / "out"
    assert main(["localize", str(folder), "--checkpoint", str(run_dir), "--out", str(out),
                 "--no-progress"]) == 1
    printed = capsys.readouterr()
    assert printed.err.count(f"failed: {folder / 'broken.mp4'}: cannot decode video") == 1
    assert "1 failed" in printed.out and "broken.mp4" not in printed.out
    assert list(json.loads((out / "results.json").read_text())["results"]) == [
        "clip0", "clip1", "clip2"]
    assert not (out / "cas" / "broken.npz").exists() and not temp_files(out)


def test_a_file_that_is_no_video_leaves_nothing_and_is_said_once(run_dir, tmp_path, capsys):
    bad = tmp_path / "notavideo.mp4"
    bad.write_bytes(b"not a video at all")
    out = tmp_path / "out"
    assert main(["localize", str(bad), "--checkpoint", str(run_dir), "--out", str(out),
                 "--no-progress"]) == 1
    printed = capsys.readouterr()
    assert printed.err == f"failed: {bad}: cannot decode video (Invalid data found when " \
                          "processing input)\n"  # once, without PyAV's [Errno N]
    assert printed.out.strip() == "1 video: 0 localized, 0 already done, 1 failed (nothing " \
                                  "written)"
    assert not out.exists()  # no empty results.json, no empty features/
    assert main(["extract", str(bad), "--out", str(tmp_path / "feats"), "--audio-backend",
                 "rms", "--visual-backend", "meanrgb", "--no-progress"]) == 1
    assert not (tmp_path / "feats").exists()


def test_an_interrupted_batch_rerun_redoes_nothing_finished(run_dir, videos, tmp_path,
                                                             monkeypatch):
    import avloc.infer
    from avloc.infer import localize_batch

    folder, single = videos
    out = tmp_path / "out"
    calls = {"n": 0}
    real = avloc.infer.predict

    def dies_on_third_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(avloc.infer, "CHUNK", 1)
    monkeypatch.setattr(avloc.infer, "predict", dies_on_third_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        localize_batch([folder, single], run_dir, out, progress=False)
    done = sorted(p.stem for p in (out / "cas").iterdir())
    assert done == ["clip0", "clip1"] and not (out / "results.json").exists()
    assert not temp_files(out)
    before = {p: stat(p) for p in [*(out / "cas").iterdir(), *(out / "features").iterdir()]}

    monkeypatch.setattr(avloc.infer, "predict", real)
    summary = localize_batch([folder, single], run_dir, out, progress=False)
    assert summary.done_before == ["clip0", "clip1"]
    assert summary.localized == ["clip2", "extra"] and not summary.failed
    assert all(stat(p) == s for p, s in before.items())  # finished work untouched
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["clip0", "clip1", "clip2", "extra"]


def test_a_killed_process_leaves_no_half_file_and_a_rerun_finishes(run_dir, tmp_path):
    pytest.importorskip("av", reason="the video extra is not installed")
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(12):
        colour_video(folder / f"m{k:02d}.mp4", RED, duration=20.0)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "avloc", "localize", str(folder), "--checkpoint", str(run_dir),
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "features").glob("*.npz"))) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    extracted = sorted((out / "features").glob("*.npz"))
    assert 3 <= len(extracted) < 12, "the kill came too late to test anything"
    assert not (out / "results.json").exists()
    before = {p.name: stat(p) for p in extracted}
    for p in extracted:  # whatever is there is complete
        np.load(p)["visual"]

    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "12 videos: 12 localized" in done.stdout
    for p in extracted:
        assert stat(p) == before[p.name]  # not extracted again
    assert len(json.loads((out / "results.json").read_text())["results"]) == 12
    assert not temp_files(out)


def test_outputs_of_another_checkpoint_are_refused(run_dir, videos, tmp_path, capsys):
    folder, _ = videos
    out = tmp_path / "out"
    assert main(["localize", str(folder), "--checkpoint", str(run_dir), "--out", str(out),
                 "--no-progress"]) == 0
    other = train_run(run_dir.parent / "data", tmp_path / "other", seed=1)
    before = (out / "results.json").read_bytes()
    assert main(["localize", str(folder), "--checkpoint", str(other), "--out", str(out),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "made by another checkpoint" in err and "cas" in err
    assert (out / "results.json").read_bytes() == before


def test_eval_out_writes_what_localize_writes_and_score_agrees(action_run, tmp_path):
    data, run = action_run
    out = tmp_path / "ev"
    assert main(["eval", str(run), "--data", str(data), "--split", "test", "--out", str(out),
                 "--json", str(tmp_path / "m.json"), "--untuned"]) == 0
    assert main(["score", str(out / "ground_truth.json"), str(out / "results.json"),
                 "--subset", "test", "--json", str(tmp_path / "s.json")]) == 0
    evaluated = json.loads((tmp_path / "m.json").read_text())
    scored = json.loads((tmp_path / "s.json").read_text())
    assert scored["mAP"] == evaluated["mAP"] and scored["videos"] == evaluated["videos"] > 0
    ann = json.loads((data / "annotations.json").read_text())["database"]
    tests = sorted(v for v, e in ann.items() if e["subset"] == "testing")
    assert sorted(p.stem for p in (out / "cas").iterdir()) == tests
    rec = read_cas(out / "cas" / f"{tests[0]}.npz")
    assert rec.meta["task"] == "action" and rec.cas.shape[0] == len(rec.mu) == 10


def test_localize_needs_inputs(run_dir, capsys):
    assert main(["localize", "--checkpoint", str(run_dir)]) == 1
    assert "give video files or folders, or --features DIR" in capsys.readouterr().err
    with pytest.raises(AvlocError, match="no such video file or folder"):
        from avloc.infer import localize_batch

        localize_batch(["/nonexistent/x.mp4"], run_dir, "unused", progress=False)


def test_a_parsing_cas_file_keeps_its_tracks_and_an_incomplete_one_is_refused(tmp_path):
    """A parsing model's CAS file carries its audio, visual and video-level outputs, which
    its segments are made from; a file with only some of them is a one-line error."""
    from avloc.config import load_config
    from avloc.data.base import Timing
    from avloc.scoring.results import CasRecord, segments_of, write_cas

    rng = np.random.default_rng(0)
    T, classes = 10, ["Speech", "Dog", "Car"]
    audio, visual = rng.random((T, 3)), rng.random((T, 3))  # (T, C) each
    either = np.maximum(audio, visual)
    rec = CasRecord("clip", either, 1 - either.max(1), either.max(1), classes, Timing(1.0), 10.0,
                    {"task": "parsing"}, audio, visual, rng.random(3))
    path = tmp_path / "cas" / "clip.npz"
    write_cas(path, rec)
    back = read_cas(path)
    for k in ("audio", "visual", "video"):
        np.testing.assert_allclose(getattr(back, k), getattr(rec, k), rtol=1e-6)
    cfg = load_config("llp_demo")
    assert segments_of(back, "parsing", cfg) == segments_of(rec, "parsing", cfg)
    assert {s["modality"] for s in segments_of(back, "parsing", cfg)} <= {"audio", "visual"}
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "video"}
    np.savez(path, **arrays)
    with pytest.raises(AvlocError, match="parsing outputs"):
        read_cas(path)
