"""The release protocols' sampling arithmetic (avloc.extract.release_grid), held against
plain re-implementations of the releases' loops and, for LLP, against the release's own
82 JPEGs of the real clip (their nearest decoded frames, tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avloc.extract.release_grid import (
    ave_frame_picks,
    cfr_output,
    linspace_picks,
    vggish_examples,
    vggish_frames,
)

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "BjCEufrlXm4.mp4"
JPEGS = Path(__file__).parent / "data" / "llp_release_frames_BjCEufrlXm4.json"


def test_ave_picks_are_the_release_loop():
    for frames in (300, 250, 239, 31):
        interval = int(frames / 10)
        plain = [int(sec * interval + (i * 1.0 / 16) * interval)
                 for sec in range(10) for i in range(16)]  # video_frame_sample, as written
        assert ave_frame_picks(frames, 10).ravel().tolist() == plain


def test_linspace_picks_of_82_jpegs():
    picks = linspace_picks(82, 80)
    assert len(picks) == 80 and picks[0] == 0 and picks[-1] == 81
    assert picks.tolist() == [int(round(x)) for x in np.linspace(0, 81, 80)]


def test_vggish_framing_gives_ten_examples_for_a_ten_second_clip():
    assert vggish_examples(vggish_frames(160446)) == 10  # LLP: the whole 10.03 s wav
    assert vggish_examples(vggish_frames(16000)) == 1  # AVE: one second alone (98 frames)
    assert vggish_examples(vggish_frames(15000)) == 0


def test_cfr_output_keeps_every_frame_of_a_constant_rate_video():
    times = np.arange(300) / 30.0
    assert cfr_output(times, 30.0, 1 / 30.0).tolist() == list(range(300))


def test_cfr_output_at_8_fps_picks_the_release_jpegs_of_the_real_clip():
    if not CLIP.is_file():
        pytest.skip(f"{CLIP} absent: the real clip lives in ../shared/data")
    pytest.importorskip("av")
    from avloc.extract.release_decode import frame_clock

    clock = frame_clock(CLIP)
    expected = json.loads(JPEGS.read_text())["jpeg_frames"]
    assert len(clock.output(8)) == len(expected) == 82
    assert clock.output(8).tolist() == expected


def test_moviepy_nearest_sample_and_quantisation():
    from avloc.extract.release_grid import moviepy_int16, nearest_resample

    wave = np.arange(44100 * 2, dtype=np.float64).reshape(-1, 2)  # (44100, 2): 1 s
    out = nearest_resample(wave, 44100, 16000, 1.0)
    plain = [wave[min(int(np.round(44100 * (k * (1 / 16000)))), 44099)] for k in range(16000)]
    assert out.shape == (16000, 2) and np.array_equal(out, np.array(plain))
    assert moviepy_int16(np.array([1.0, -1.0, 0.5, -0.00001])).tolist() == [32440, -32440,
                                                                            16384, 0]


def test_ten_second_windows_cover_every_snippet_once():
    from avloc.extract.release_grid import ten_second_windows

    for snippets in (1, 9, 10, 11, 25, 60):
        windows = ten_second_windows(snippets)
        assert sum(count for _, count in windows) == snippets
        assert [start for start, _ in windows] == [16000 * 10 * i for i in range(len(windows))]
