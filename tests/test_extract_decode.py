"""Decoding and batch extraction on videos written by the test itself (PyAV): solid colours
switching at known times and a tone in a known interval, through the exact diagnostic
back-ends `meanrgb` (mean colour per snippet) and `rms` (audio energy per snippet)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("av", reason="needs the video extra: pip install avloc[video]")

from testvideo import make_test_video  # noqa: E402

from avloc.cli import main  # noqa: E402
from avloc.extract import extract_folder, extract_video, read_features  # noqa: E402
from avloc.extract.decode import decode_video  # noqa: E402
from avloc.extract.melspec import SAMPLE_RATE  # noqa: E402
from avloc.util.errors import AvlocError  # noqa: E402

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
CHANGES = [(0.0, RED), (1.0, GREEN), (2.0, BLUE), (3.0, WHITE)]


@pytest.fixture(scope="module")
def colours_video(tmp_path_factory):
    """4 s: red, green, blue, white for one second each; 440 Hz at 0.5 amplitude in [1, 2)."""
    path = tmp_path_factory.mktemp("media") / "colours.mp4"
    return make_test_video(path, 4.0, CHANGES, tone=(1.0, 2.0, 440.0, 0.5))


def test_each_snippet_gets_its_colour_and_its_audio(colours_video):
    audio, visual, meta = extract_video(colours_video, "rms", "meanrgb", 1.0)
    assert audio.shape == (4, 1) and visual.shape == (4, 3)
    assert audio.dtype == visual.dtype == np.float32
    np.testing.assert_allclose(visual, np.array([RED, GREEN, BLUE, WHITE]) / 255, atol=0.02)
    # the tone sits exactly in snippet 1: RMS of a 0.5 sine is 0.354, silence is ~0
    assert abs(audio[1, 0] - 0.5 / np.sqrt(2)) < 0.01
    assert audio[[0, 2, 3], 0].max() < 0.005
    assert meta["num_snippets"] == 4 and meta["duration"] == pytest.approx(4.0)
    assert meta["fps"] == pytest.approx(25.0) and meta["has_audio"] is True
    assert (meta["audio_backend"], meta["visual_backend"]) == ("rms", "meanrgb")


def test_half_second_grid_with_two_frames_per_snippet(colours_video):
    audio, visual, _ = extract_video(colours_video, "rms", "meanrgb", 0.5, frames_per_snippet=2)
    assert visual.shape == (8, 3)
    want = np.repeat(np.array([RED, GREEN, BLUE, WHITE]) / 255, 2, axis=0)
    np.testing.assert_allclose(visual, want, atol=0.02)
    assert (audio[2:4, 0] > 0.34).all() and audio[[0, 1, 4, 5, 6, 7], 0].max() < 0.005


def test_the_frame_on_screen_at_each_sample_instant_is_taken(tmp_path):
    """Every frame has its own grey level (5 * index), so the chosen frame can be read back:
    it must be frame floor(instant * fps) for instants (t + (j + 0.5) / k) * s."""
    fps, seconds = 25, 2.0
    changes = [(i / fps, (5 * i,) * 3) for i in range(int(fps * seconds))]
    path = make_test_video(tmp_path / "greys.mp4", seconds, changes, fps=fps, audio=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        video = decode_video(path, snippet_seconds=0.64, frames_per_snippet=3)
    assert video.frames.shape == (3, 3, 224, 224, 3)  # T = floor(2 / 0.64 + 0.05) = 3
    index = np.rint(video.frames.mean(axis=(2, 3, 4)) / 5).astype(int)  # (T, k)
    instants = (np.arange(3)[:, None] + (np.arange(3) + 0.5) / 3) * 0.64
    np.testing.assert_array_equal(index, np.floor(instants * fps + 1e-9).astype(int))


def test_sixteen_frame_snippets_at_25_fps(tmp_path):
    """ActivityNet-style grid: 0.64 s = 16 frames; colour switches every 16 frames."""
    changes = [(0.0, RED), (0.64, GREEN), (1.28, BLUE)]
    path = make_test_video(tmp_path / "anet.mp4", 1.92, changes, tone=(0.64, 1.28, 300.0, 0.4))
    audio, visual, meta = extract_video(path, "rms", "meanrgb", 0.64)
    assert meta["num_snippets"] == 3
    np.testing.assert_allclose(visual, np.array([RED, GREEN, BLUE]) / 255, atol=0.02)
    assert audio[1, 0] > 0.27 and audio[[0, 2], 0].max() < 0.01


def test_audio_starting_late_is_placed_by_its_timestamp(tmp_path):
    """The audio stream starts 0.5 s after the video: its tone at [1, 2) of audio time
    must land at [1.5, 2.5) of video time, i.e. in half-second snippets 3 and 4."""
    path = make_test_video(tmp_path / "late.mp4", 4.0, tone=(1.0, 2.0, 440.0, 0.5),
                           audio_delay=0.5)  # fmt: skip
    audio, _, _ = extract_video(path, "rms", "meanrgb", 0.5)
    assert (audio[3:5, 0] > 0.34).all()
    assert audio[[0, 1, 5, 6, 7], 0].max() < 0.005 and audio[2, 0] < 0.05


def test_video_without_audio_gets_silence_and_one_note(tmp_path, capsys, recwarn):
    path = make_test_video(tmp_path / "mute.mp4", 2.0, CHANGES[:2], audio=False)
    audio, visual, meta = extract_video(path, "rms", "meanrgb", 1.0)
    assert audio.shape == (2, 1) and not audio.any() and meta["has_audio"] is False
    video = decode_video(path)  # the waveform is zeros of the grid's length
    assert video.audio.shape == (2 * SAMPLE_RATE,) and not video.audio.any()
    extract_folder(path, tmp_path / "out", "rms", "meanrgb", progress=False)
    err = capsys.readouterr().err
    assert err == f"avloc: note: {path}: no audio track: its audio features are those of " \
                  "silence\n"
    assert len(recwarn) == 0  # no Python warning with a source line


def test_a_clip_shorter_than_a_snippet_is_said(tmp_path, capsys):
    path = make_test_video(tmp_path / "short.mp4", 0.4, CHANGES[:1])
    summary = extract_folder(path, tmp_path / "out", "rms", "meanrgb", progress=False)
    assert summary.written == ["short"]
    assert "shorter than one 1 s snippet: one snippet" in capsys.readouterr().err


def test_unreadable_files_are_one_line_errors(tmp_path, colours_video):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(colours_video.read_bytes()[:3000])
    for path in (garbage, truncated, tmp_path / "absent.mp4"):
        with pytest.raises(AvlocError) as err:
            decode_video(path)
        message = str(err.value)
        assert message.startswith(str(path)) and "\n" not in message


def test_folder_batch_skips_done_reports_bad_and_shards(tmp_path, colours_video, capsys):
    inputs = tmp_path / "videos"
    inputs.mkdir()
    for name in ("a", "c", "d"):
        (inputs / f"{name}.mp4").write_bytes(colours_video.read_bytes())
    (inputs / "b.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "features"
    args = dict(audio_backend="rms", visual_backend="meanrgb", progress=False)

    first = extract_folder(inputs, out, shard="1/2", **args)  # sorted ids a b c d -> a, c
    assert (first.selected, sorted(first.written), first.failed) == (2, ["a", "c"], [])
    assert first.line().startswith("2 videos (shard 1/2):")
    capsys.readouterr()
    summary = extract_folder(inputs, out, **args)
    assert summary.skipped == ["a", "c"] and summary.written == ["d"]
    err = capsys.readouterr().err  # every skipped or failed video says why
    assert f"skipped 2 videos already extracted with these settings into {out} (a, c;" in err
    assert f"failed: {inputs / 'b.mp4'}: cannot decode video" in err
    assert [path for path, _ in summary.failed] == [str(inputs / "b.mp4")]
    assert "cannot decode video" in summary.failed[0][1]
    assert summary.line() == f"4 videos: 1 extracted, 2 already done, 1 failed -> {out}"
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "c.npz", "d.npz"]
    audio, visual, meta = read_features(out / "d.npz")
    assert audio.shape == (4, 1) and visual.shape == (4, 3) and meta["video"] == "d.mp4"

    assert main(["extract", str(inputs / "a.mp4"), "--out", str(out), "--audio-backend", "rms",
                 "--visual-backend", "meanrgb", "--snippet-seconds", "0.5"]) == 1
    out_err = capsys.readouterr()
    assert "1 video: 0 extracted, 0 already done, 1 failed (nothing written)" in out_err.out
    assert (f"failed: {inputs / 'a.mp4'}: {out / 'a.npz'} was extracted with other settings: "
            "snippet_seconds 1.0 (now 0.5); --overwrite re-extracts it") in out_err.err
    capsys.readouterr()
    redone = extract_folder(inputs / "a.mp4", out, snippet_seconds=0.5, overwrite=True,
                            **{**args, "progress": True})
    assert "\r" not in capsys.readouterr().err  # not a terminal: no bar
    assert redone.written == ["a"] and read_features(out / "a.npz")[0].shape == (8, 1)
