"""Decoding as the benchmark releases' tools did it: every frame on FFmpeg's constant-rate
output (what `ffmpeg -r R` and imageio's ffmpeg reader emit), and audio at the file's own
rate as 16-bit samples (what a .wav written by FFmpeg holds).

Frames are found in two passes so that only the frames a protocol picks are converted and
kept: the first reads packet timestamps only (no decoding) and fixes the output frames
(release_grid.cfr_output); the second decodes and keeps the picked ones. Time origin: the
container's start time, as FFmpeg's default timestamp offset makes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.extract.decode import open_container, stream_duration
from avloc.extract.release_grid import cfr_output
from avloc.extract.weights import need
from avloc.util.errors import AvlocError


@dataclass
class FrameClock:
    """A video's frames in presentation order, by time, and its header facts."""

    times: np.ndarray  # (N,) seconds from the container's start, ascending
    fps: float  # the stream's frame rate as FFmpeg guesses it (r_frame_rate)
    duration: float  # seconds, from the headers (the container's, as moviepy reads it)

    def output(self, out_fps: float | None = None) -> np.ndarray:
        """(M,) decoded-frame indices of FFmpeg's constant-rate output at out_fps (default:
        the input's own rate, which is what a reader without -r gets)."""
        return cfr_output(self.times, out_fps or self.fps, 1.0 / self.fps)


def frame_clock(path: Path) -> FrameClock:
    """Packet timestamps of the first video stream, sorted: one per frame, no decoding."""
    with open_container(path) as container:
        stream = container.streams.video[0]
        origin = (container.start_time or 0) / 1_000_000  # AV_TIME_BASE
        pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
        if not pts or not stream.time_base:
            raise AvlocError(f"{path}: no timed video frame")
        times = np.sort(np.asarray(pts, np.float64)) * float(stream.time_base) - origin
        fps = float(stream.guessed_rate or stream.average_rate or 0.0)
        if fps <= 0:
            raise AvlocError(f"{path}: the video stream has no frame rate")
        duration = (container.duration / 1_000_000 if container.duration
                    else stream_duration(stream, container) or len(times) / fps)
    return FrameClock(np.maximum(times, 0.0), fps, float(duration))


def picked_frames(
    path: Path, picked: np.ndarray, convert: Callable[[Any], np.ndarray]
) -> Iterator[np.ndarray]:
    """convert(frame) for each entry of `picked`, in order, decoding the file once.

    picked: (P,) decoded-frame indices, non-decreasing (every release's picks are), counted
    in presentation order (the order FFmpeg's decoder returns frames); a frame picked twice
    is converted once. A file that decodes fewer frames than its packets promise gives its
    last frame to the missing picks. Streaming keeps one converted frame in memory, so a
    long video costs no more memory than a short one."""
    picked = np.asarray(picked, dtype=np.int64).ravel()
    if np.any(np.diff(picked) < 0):
        raise ValueError("picked frame indices must be non-decreasing")
    position, last, current = 0, None, None
    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            last = frame
            if position < len(picked) and index == picked[position]:
                current = convert(frame)
                while position < len(picked) and picked[position] == index:
                    yield current
                    position += 1
            if position == len(picked):
                return
    if last is None:
        raise AvlocError(f"{path}: no decodable video frame")
    current = convert(last)
    for _ in range(position, len(picked)):
        yield current


def decode_audio_s16(path: Path, rate: int | None = None, channels: int | None = None
                     ) -> tuple[np.ndarray, int]:
    """((S, C) float64 samples in [-1, 1), rate): the first audio stream as 16-bit PCM
    divided by 32768, as a .wav written by FFmpeg and read by scipy holds it. rate and
    channels: FFmpeg's -ar / -ac (None keeps the file's). No audio: (0, 1) and the rate."""
    av = need("av")
    with open_container(path) as container:
        if not container.streams.audio:
            return np.zeros((0, 1)), int(rate or 16000)
        stream = container.streams.audio[0]
        rate = int(rate or stream.rate)
        layout = {1: "mono", 2: "stereo"}.get(channels or 0, stream.layout.name)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        chunks = []
        for frame in container.decode(stream):
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks:
        return np.zeros((0, 1)), rate
    packed = np.concatenate(chunks, axis=1)  # (1, S * C) interleaved s16
    width = len(av.AudioLayout(layout).channels)
    return packed.reshape(-1, width).astype(np.float64) / 32768.0, rate  # (S, C)
