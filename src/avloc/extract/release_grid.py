"""The benchmark releases' sampling arithmetic, in plain numpy (no decoding, no network), so
that the tests can hold each rule against a re-implementation of the release's own loop.

Sources (read, not copied; docs/extraction.md, "Release protocols", cites each step):
- FFmpeg's constant-frame-rate output (fftools/ffmpeg.c, do_video_out, VSYNC_CFR): what
  `ffmpeg -i V -r 8 %06d.jpg` (LLP, AVVP-ECCV20 scripts/extract_frames.py) and imageio's
  ffmpeg reader (AVE, AVE-ECCV18 feature_extractor/visual_feature_extractor.py) emit.
- AVE's frame picks: 16 frames a second, `int(l * interval + i / 16 * interval)`.
- LLP's frame picks: `np.round(np.linspace(0, n_jpegs - 1, 80))` (extract_rgb_feat.py).
- VGGish's framing (tensorflow/models research/audioset/vggish, vggish_input.py and
  mel_features.py): 25 ms windows every 10 ms, examples of 96 frames every 96 frames.
- moviepy's resampling when LLP wrote its 16 kHz wav (scripts/extract_audio.py): the
  sample nearest each output instant, `round(t * rate_in)`.
- The I3D releases' 16-frame windows (Finspire13/pytorch-i3d-feature-extraction,
  extract_features.py, run(): chunk_size 16, --frequency the stride, the last window at
  (frame_cnt - 16) // frequency * frequency): W-TALC's at stride 16, ActionFormer's at 4.
"""

from __future__ import annotations

import numpy as np

VGGISH_RATE = 16000
VGGISH_WINDOW = 400  # samples: 25 ms
VGGISH_HOP = 160  # samples: 10 ms
VGGISH_EXAMPLE = 96  # frames per example, and frames between examples (0.96 s, no overlap)
AVE_FRAMES_PER_SECOND = 16  # AVE: sample_num
LLP_FPS = 8  # LLP: ffmpeg -r 8
LLP_FRAMES_PER_SECOND = 8  # LLP: 80 picks for a 10 s clip
I3D_WINDOW = 16  # frames per I3D input in both I3D releases (chunk_size)


def cfr_output(times: np.ndarray, out_fps: float, frame_seconds: float) -> np.ndarray:
    """Which decoded frame fills each frame of FFmpeg's constant-rate output.

    times: (N,) presentation times in seconds from the first frame, ascending;
    frame_seconds: one input frame's duration (1 / the input frame rate). For each input
    frame, FFmpeg compares where it falls on the output clock (delta0) with where the next
    output frame is due, and emits it 0, 1 or several times (VSYNC_CFR's thresholds 1.1 and
    0.6, duplicates of the previous frame first when it arrives late). Returns (M,) indices
    into `times`.
    """
    out: list[int] = []
    due = 0  # the next output frame's number
    duration = frame_seconds * out_fps  # one input frame on the output clock
    for index, time in enumerate(np.asarray(times, dtype=np.float64)):
        delta0 = time * out_fps - due
        delta = delta0 + duration
        if delta0 < 0 < delta:  # a frame that starts before its slot: placed at the slot
            delta0 = 0.0
        repeats, previous = 1, 0
        if delta < -1.1:
            repeats = 0
        elif delta > 1.1:
            repeats = int(np.rint(delta))
            if delta0 > 1.1:
                previous = int(np.rint(delta0 - 0.6))
        previous = min(previous, repeats)
        if out and previous:
            out += [out[-1]] * previous
        else:
            previous = 0
        out += [index] * (repeats - previous)
        due += repeats
    return np.asarray(out, dtype=np.int64)


def ave_frame_picks(num_frames: int, segments: int) -> np.ndarray:
    """(segments, 16) indices into the decoded frames: AVE's video_frame_sample.

    interval = int(num_frames / segments); frame i of second l is
    int(l * interval + (i / 16) * interval). The release used segments = 10 (its clips
    are 10 s); avloc uses the video's snippet count.
    """
    interval = int(num_frames / segments)
    seconds = np.arange(segments)[:, None]  # (T, 1)
    steps = np.arange(AVE_FRAMES_PER_SECOND)[None, :] / AVE_FRAMES_PER_SECOND  # (1, 16)
    picks = (seconds * interval + steps * interval).astype(np.int64)  # (T, 16), truncated
    return np.minimum(picks, max(num_frames - 1, 0))


def linspace_picks(count: int, picks: int) -> np.ndarray:
    """LLP's choice of `picks` frames among `count`: round(linspace(0, count - 1, picks))."""
    return np.round(np.linspace(0, count - 1, picks)).astype(np.int64)


def vggish_frames(samples: int) -> int:
    """Log-mel frames VGGish makes of `samples` 16 kHz samples (mel_features.frame)."""
    return 0 if samples < VGGISH_WINDOW else 1 + (samples - VGGISH_WINDOW) // VGGISH_HOP


def vggish_examples(frames: int) -> int:
    """96-frame examples VGGish makes of `frames` log-mel frames (hop 96)."""
    return 0 if frames < VGGISH_EXAMPLE else 1 + (frames - VGGISH_EXAMPLE) // VGGISH_EXAMPLE


def nearest_resample(wave: np.ndarray, rate_in: int, rate_out: int, seconds: float) -> np.ndarray:
    """moviepy's resampling: output sample k is input sample round(k / rate_out * rate_in).

    wave: (S, C) at rate_in; returns (K, C) with K = len(arange(0, seconds, 1 / rate_out)).
    Instants past the end take the last sample (moviepy's reader pads with it).
    """
    instants = np.arange(0.0, seconds, 1.0 / rate_out)  # (K,)
    index = np.round(rate_in * instants).astype(np.int64)
    return wave[np.minimum(index, len(wave) - 1)]


def moviepy_int16(wave: np.ndarray) -> np.ndarray:
    """moviepy's wav quantisation: clip to [-0.99, 0.99], times 2**15, truncated to int16."""
    return (2**15 * np.clip(wave, -0.99, 0.99)).astype(np.int16)


def ten_second_windows(segments: int) -> list[tuple[int, int]]:
    """[(first 16 kHz sample, snippets)]: LLP's clip framing carried to any length.

    LLP framed each 10 s clip's whole wav (examples every 0.96 s, ten of them). A longer
    video is cut into 10 s windows, each framed as a clip; the last window keeps only as
    many examples as it has snippets (its audio zero-padded to 10 s first).
    """
    return [(start * VGGISH_RATE, min(10, segments - start))
            for start in range(0, max(segments, 1), 10)]


def chunk_starts(num_frames: int, stride: int, window: int = I3D_WINDOW) -> np.ndarray:
    """(n,) int64 first frames of the full windows: 0, stride, ... while start + window <=
    num_frames; a tail shorter than a window gets no feature.

    Finspire13's script (ActionFormer's THUMOS features, stride 4): starts 0, 4, ...,
    (num_frames - 16) // 4 * 4. W-TALC (stride 16, non-overlapping): num_frames // 16
    windows, the tail dropped (inferred: the paper states only the chunking; it is what the
    script gives with --frequency 16). The script asserts num_frames > 16; here 16 frames
    give one window and fewer none.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    return np.arange(0, max(num_frames - window + 1, 0), stride, dtype=np.int64)
