"""Write small videos with known content (solid colours switching at known times, a sine
tone in a known interval) with PyAV. The tests use them to check snippet boundaries and
audio/visual alignment exactly; benchmarks/bench_extract.py uses them as long inputs of
any length. A test helper, not part of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avloc.extract.weights import need

Colour = tuple[int, int, int]


def colour_at(time: float, changes: Sequence[tuple[float, Colour]]) -> Colour:
    """The colour shown at `time`: that of the last change at or before it."""
    current = changes[0][1]
    for start, colour in changes:
        if start <= time + 1e-9:
            current = colour
    return current


def make_test_video(
    path: str | Path,
    duration: float,
    changes: Sequence[tuple[float, Colour]] = ((0.0, (255, 0, 0)),),
    *,
    fps: int = 25,
    size: tuple[int, int] = (96, 64),
    tone: tuple[float, float, float, float] | None = None,
    audio: bool = True,
    sample_rate: int = 44100,
    noise: float = 0.0,
    audio_delay: float = 0.0,
) -> Path:
    """Write an H.264 (+ AAC) mp4. `changes`: (start seconds, RGB) in time order; `tone`:
    (start, end, Hz, amplitude) of a sine, silence elsewhere, in audio-stream time;
    `audio_delay`: seconds by which the audio stream starts after the video (its first
    timestamp); `noise`: amplitude of uniform pixel noise (real decoding work for
    benchmarks)."""
    av = need("av")
    path = Path(path)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "10", "preset": "ultrafast"}
        sound = out.add_stream("aac", rate=sample_rate, layout="mono") if audio else None
        _write_frames(av, out, video, duration, changes, fps, size, noise)
        if sound is not None:
            _write_audio(av, out, sound, duration, tone, sample_rate, audio_delay)
    return path


def _write_frames(
    av: Any, out: Any, stream: Any, duration: float, changes: Sequence[tuple[float, Colour]],
    fps: int, size: tuple[int, int], noise: float,
) -> None:  # fmt: skip
    rng = np.random.default_rng(0)
    for index in range(int(round(duration * fps))):
        image = np.empty((size[1], size[0], 3), np.uint8)
        image[:] = colour_at(index / fps, changes)
        if noise > 0:
            jitter = rng.integers(-noise, noise + 1, image.shape)
            image = np.clip(image.astype(int) + jitter, 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _write_audio(
    av: Any, out: Any, stream: Any, duration: float,
    tone: tuple[float, float, float, float] | None, sample_rate: int, delay: float,
) -> None:  # fmt: skip
    count = int(round(duration * sample_rate))
    times = np.arange(count) / sample_rate
    wave = np.zeros(count, np.float32)
    if tone is not None:
        start, end, hertz, amplitude = tone
        inside = (times >= start) & (times < end)
        wave[inside] = amplitude * np.sin(2 * np.pi * hertz * times[inside])
    step = 1024  # AAC frame size
    for first in range(0, count, step):
        chunk = wave[first : first + step][None, :]  # (1, n) planar mono
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp",
                                           layout="mono")  # fmt: skip
        frame.sample_rate = sample_rate
        frame.pts = first + int(round(delay * sample_rate))
        frame.time_base = Fraction(1, sample_rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
