"""Where the I3D releases' features sit in time: which frames a video is resampled to, which
16-frame windows become features, and the time each feature stands for. Pure numpy.

References:
- Finspire13/pytorch-i3d-feature-extraction, extract_features.py (run(): chunk_size 16,
  --frequency the stride; asserts frame_cnt > 16; the last window starts at
  (frame_cnt - 16) // frequency * frequency; a commented-out older line kept
  frame_cnt // 16 * 16 frames) and README.md ("Format the videos to 25 FPS").
- happyharrycn/actionformer_release, README.md (THUMOS14 I3D features: 16-frame clips at the
  video frame rate, ~30 fps, stride 4) and libs/datasets/thumos14.py (a time t in seconds
  is grid position (t * fps - 0.5 * num_frames) / feat_stride: feature i centred on frame
  4 i + 8).
- S. Paul et al., "W-TALC", ECCV 2018: I3D on non-overlapping 16-frame chunks at 25 fps (as
  the paper is cited; not in the files read here: sujoyp/wtalc-pytorch's README only links
  the features).
- yjxiong/dense_flow, src/dense_flow_gpu.cpp: the img_/x_/y_ JPEGs the feature script reads
  start at decoded frame 1 (frame 0 is only the first flow's source), so window s covers
  decoded frames s + 1 .. s + 16 and flows s .. s + 15 (flow k: frame k -> k + 1).
- FFmpeg: the fps filter (-vf fps=25; its behaviour checked here through PyAV's
  libavfilter 11.14) and fftools' -vsync cfr rule behind an output `-r 25` (do_video_out,
  video_sync_process from 6.1), read as re-implemented in ffpie's CFRSampler
  ("FFmpeg-n6.1.1"); there is no ffmpeg binary here to check that one against.
"""

from __future__ import annotations

import math

import numpy as np

WINDOW = 16  # frames per I3D input in both releases


def chunk_starts(num_frames: int, window: int = WINDOW, stride: int = WINDOW) -> np.ndarray:
    """Start frames of the full windows, (n,) int64: 0, stride, ... while start + window
    <= num_frames. A tail shorter than a window gets no feature.

    - W-TALC (stride 16, non-overlapping): floor(num_frames / 16) features; the tail is
      dropped. Inferred: the paper states only the chunking; this is what Finspire13's
      script gives with --frequency 16, and what its older commented-out line did.
    - Finspire13's script (ActionFormer's THUMOS features, stride 4): documented there;
      starts 0, 4, ..., (num_frames - 16) // 4 * 4, the 1-15 frames after the last window
      dropped. The script refuses num_frames <= 16 (assert); here 16 frames give one window
      and fewer give none.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    return np.arange(0, max(num_frames - window + 1, 0), stride, dtype=np.int64)


def chunk_centres(starts: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Centre of each window in frames, (n,) float64: start + window / 2, ActionFormer's
    convention (feature i at frame stride * i + 8). Seconds: divide by the fps.

    With dense_flow's frames (window s = decoded frames s + 1 .. s + 16) the centre of the
    frames shown is s + 8.5 decoded frames; ActionFormer's grid ignores that half frame.
    """
    return np.asarray(starts, dtype=np.float64) + window / 2.0


def resample_frame_indices(
    duration: float, native_fps: float, target_fps: float, rule: str = "screen"
) -> np.ndarray:
    """Which decoded frame (index at native_fps, frame j shown from j / native_fps) is
    output frame k of a constant-rate target_fps copy, (K,) int64.

    rule "screen": the frame on screen at k / target_fps, floor(k * native / target), for
    every k / target_fps < duration. The ideal resampler; avloc's default.

    rule "fps_filter": `ffmpeg -vf fps=25` (round=near): the frame whose start is nearest
    k / target_fps, a tie going to the earlier frame, i.e. the last j with
    j / native < (k + 0.5) / target. Checked against libavfilter 11.14's fps filter
    through PyAV (30 -> 25, 24 -> 25, 50 -> 25). Its frame count at the end of the video
    depends on the last frame's duration; here it is that of "screen".

    rule "ffmpeg_cfr": a model of an output option `ffmpeg -i in -r 25 out` (-vsync cfr)
    on a constant-rate input starting at pts 0: frames are taken in order, one dropped
    when its end falls more than 1.1 output frames behind the output clock and repeated
    when more than 1.1 ahead, so the content lags "screen" by up to about one output frame
    (30 -> 25: output 5 is frame 5, "screen" says 6) and a few more frames come out.
    Inferred from the source, not run (no ffmpeg binary here); before 6.1 the frame
    duration was rounded to whole output frames when no -vf was given, which moves the
    drops. Real files add a start offset and timestamp jitter; for exactness decode the
    resampled file itself.

    Which command each release used to reach 25 fps is not in the files read (Finspire13's
    README says only "Format the videos to 25 FPS").
    """
    if duration <= 0 or native_fps <= 0 or target_fps <= 0:
        raise ValueError(f"duration and fps must be positive: {duration}, {native_fps}, "
                         f"{target_fps}")
    eps = 1e-9
    num_native = max(math.ceil(duration * native_fps - eps), 1)
    if rule == "ffmpeg_cfr":
        return _ffmpeg_cfr(num_native, target_fps / native_fps)
    num_out = max(math.ceil(duration * target_fps - eps), 1)
    k = np.arange(num_out, dtype=np.float64)
    if rule == "screen":
        index = np.floor(k * native_fps / target_fps + eps)
    elif rule == "fps_filter":
        index = np.ceil((k + 0.5) * native_fps / target_fps - eps) - 1
    else:
        raise ValueError(f"rule must be 'screen', 'fps_filter' or 'ffmpeg_cfr', not {rule!r}")
    return np.clip(index.astype(np.int64), 0, num_native - 1)


def _ffmpeg_cfr(num_native: int, ratio: float) -> np.ndarray:
    """ffmpeg's cfr video sync over num_native frames of `ratio` output frames each."""
    out: list[int] = []
    for j in range(num_native):
        delta0 = j * ratio - len(out)  # input pts minus the next output slot, in slots
        delta = delta0 + ratio  # where this frame ends
        copies, previous = 1, 0
        if delta < -1.1:
            copies = 0
        elif delta > 1.1:
            copies = round(delta)  # lrintf: round half to even, as Python's round
            if delta0 > 1.1 and j > 0:
                previous = round(delta0 - 0.6)  # the gap is filled with the last frame
        out += [j - 1] * previous + [j] * (copies - previous)
    return np.asarray(out, dtype=np.int64)
