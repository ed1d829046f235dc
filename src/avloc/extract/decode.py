"""Decode a video file once: the frames that represent each snippet, and 16 kHz mono audio.

One demux pass reads both streams. Frames are not all kept: for every sample instant
of the snippet grid (grid.sample_times) the frame on screen at that instant is kept,
scaled so its short side is frame_size * 256 / 224 and centre-cropped to
frame_size x frame_size (the usual ImageNet evaluation crop), as uint8 RGB.

Time origin: the first video frame (the video stream's start time) is t = 0; audio is
placed on that clock by its first timestamp (zero-padded or cut at the start).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avloc.extract.grid import num_snippets, sample_times
from avloc.extract.melspec import SAMPLE_RATE
from avloc.extract.weights import need
from avloc.util.errors import AvlocError, first_line


@dataclass
class DecodedVideo:
    """What the back-ends consume. `frames` and the audio cover the same T snippets."""

    path: Path
    audio: np.ndarray  # (S,) float32 mono at SAMPLE_RATE; sample 0 = video time 0
    frames: np.ndarray  # (T, k, H, W, 3) uint8 RGB, H = W = frame_size
    snippet_seconds: float
    duration: float  # seconds of video actually decoded (first frame to end of last frame)
    fps: float  # average frame rate of the video stream
    has_audio: bool

    @property
    def num_snippets(self) -> int:
        return int(self.frames.shape[0])


def decode_video(
    path: str | Path,
    snippet_seconds: float = 1.0,
    frames_per_snippet: int = 1,
    frame_size: int = 224,
) -> DecodedVideo:
    """Decode `path` on the snippet grid; any decoding failure is a one-line AvlocError."""
    path = Path(path)
    with open_container(path) as container:
        return _decode(container, path, snippet_seconds, frames_per_snippet, frame_size)


@contextmanager
def open_container(path: Path) -> Iterator[Any]:
    """PyAV's container of `path`; a missing file or any FFmpeg error is one AvlocError."""
    av = need("av")
    if not path.is_file():
        raise AvlocError(f"{path}: video file does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise AvlocError(f"{path}: has no video stream")
            yield container
    except av.FFmpegError as err:  # FFmpeg's own words, without PyAV's [Errno N] and path
        why = getattr(err, "strerror", None) or first_line(err)
        raise AvlocError(f"{path}: cannot decode video ({why})") from None


def _decode(
    container: Any, path: Path, snippet_seconds: float, frames_per_snippet: int, frame_size: int
) -> DecodedVideo:
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO"  # frame-threaded decoding: decoding dominates on long videos
    astream = container.streams.audio[0] if container.streams.audio else None
    fps = float(vstream.average_rate or vstream.guessed_rate or 0.0)
    meta_duration = stream_duration(vstream, container)
    if meta_duration is None:
        meta_duration = _probe_duration(path, vstream.index)
    grid_len = num_snippets(meta_duration, snippet_seconds)
    times = sample_times(grid_len, snippet_seconds, frames_per_snippet)  # (T, k)
    selector = _FrameSelector(times.ravel(), frame_size)
    audio = _AudioCollector() if astream is not None else None
    origin = start_seconds(vstream)
    streams = [vstream] + ([astream] if astream is not None else [])
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if packet.stream.type == "video":
                if origin is None:
                    origin = frame.time or 0.0
                selector.push(_frame_time(frame, selector.count, fps) - origin, frame)
            else:
                audio.push(frame)
    if selector.count == 0:
        raise AvlocError(f"{path}: no decodable video frame")
    frames = selector.finish().reshape(times.shape + (frame_size, frame_size, 3))
    duration = selector.last_time + (1.0 / fps if fps > 0 else 0.0)
    wave = audio.finish(origin or 0.0) if audio is not None else np.zeros(0, np.float32)
    has_audio = wave.size > 0  # without: silence (`decode_notes` says so)
    length = min(grid_len, num_snippets(duration, snippet_seconds))
    if has_audio:
        length = min(length, num_snippets(wave.size / SAMPLE_RATE, snippet_seconds))
    wave = fit_audio(wave, length * snippet_seconds)
    return DecodedVideo(path, wave, frames[:length], snippet_seconds, duration, fps, has_audio)


def decode_audio(path: Path) -> np.ndarray:
    """(S,) float32 16 kHz mono of the first audio stream on the video's clock, as
    decode_video gives the audio back-ends (sample 0 = the video stream's start); (0,)
    without audio. Demuxes the audio only."""
    with open_container(path) as container:
        if not container.streams.audio:
            return np.zeros(0, np.float32)
        astream, collector = container.streams.audio[0], _AudioCollector()
        origin = start_seconds(container.streams.video[0]) if container.streams.video else None
        for packet in container.demux(astream):
            for frame in packet.decode():
                collector.push(frame)
    return collector.finish(origin or 0.0)


def decode_notes(meta: dict[str, Any], snippet_seconds: float) -> list[str]:
    """What a user should hear about how a video was read (from `extract_video`'s meta)."""
    notes = []
    if not meta.get("has_audio", True) and meta.get("audio_dim", 1):  # (T, 0): none made
        notes.append("no audio track: its audio features are those of silence")
    duration = float(meta.get("duration", snippet_seconds))
    if duration < snippet_seconds:
        notes.append(f"{duration:.2f} s long, shorter than one {snippet_seconds:g} s snippet: "
                     "one snippet, its audio padded with silence")
    return notes


def stream_duration(vstream: Any, container: Any) -> float | None:
    """Seconds of video from the stream header, else the container header, else None."""
    if vstream.duration and vstream.time_base:
        return float(vstream.duration * vstream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _probe_duration(path: Path, index: int) -> float:
    """Packet timestamps only (no decoding): for files whose headers give no duration."""
    av = need("av")
    end = 0.0
    with av.open(str(path)) as container:
        stream = container.streams[index]
        start = start_seconds(stream) or 0.0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base:
                span = (packet.pts + (packet.duration or 0)) * packet.time_base
                end = max(end, float(span) - start)
    return end


def start_seconds(stream: Any) -> float | None:
    if stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


def _frame_time(frame: Any, index: int, fps: float) -> float:
    """Presentation time in seconds; frames without timestamps fall back to index / fps."""
    if frame.time is not None:
        return float(frame.time)
    return index / fps if fps > 0 else float(index)


def fit_audio(wave: np.ndarray, seconds: float) -> np.ndarray:
    """Cut or zero-pad the waveform to exactly the grid's length."""
    want = int(round(seconds * SAMPLE_RATE))
    if wave.size >= want:
        return wave[:want]
    return np.pad(wave, (0, want - wave.size))


class _FrameSelector:
    """Keeps, for each target instant, the frame on screen then (the last frame whose
    time is <= the instant; the first frame for instants before it). Frames stream in
    presentation order; only selected ones are converted to RGB, each once."""

    def __init__(self, targets: np.ndarray, frame_size: int) -> None:
        self.targets = targets  # (N,) seconds, ascending
        self.size = frame_size
        self.out = np.zeros((targets.size, frame_size, frame_size, 3), np.uint8)
        self.next = 0
        self.count = 0
        self.last_time = 0.0
        self._prev: Any = None
        self._prev_rgb: np.ndarray | None = None

    def push(self, time: float, frame: Any) -> None:
        if self._prev is None:
            self._prev = frame  # instants before the first frame take the first frame
        while self.next < self.targets.size and self.targets[self.next] < time:
            self._assign()
        if self.count and time < self.last_time:
            time = self.last_time  # tolerate a non-monotonic timestamp
        self._prev, self._prev_rgb = frame, None
        self.last_time = time
        self.count += 1

    def _assign(self) -> None:
        if self._prev_rgb is None:
            self._prev_rgb = to_rgb_crop(self._prev, self.size)
        self.out[self.next] = self._prev_rgb
        self.next += 1

    def finish(self) -> np.ndarray:
        while self.next < self.targets.size:
            self._assign()
        return self.out  # (N, H, W, 3)


def to_rgb_crop(frame: Any, size: int) -> np.ndarray:
    """Scale so the short side is size * 256 / 224, then take the centre size x size."""
    short = max(size, int(round(size * 256 / 224)))
    width, height = frame.width, frame.height
    scale = short / min(width, height)
    new_w = max(size, int(round(width * scale)))
    new_h = max(size, int(round(height * scale)))
    rgb = frame.reformat(width=new_w, height=new_h, format="rgb24").to_ndarray()  # (h, w, 3)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return rgb[top : top + size, left : left + size]


class _AudioCollector:
    """Resamples each decoded audio frame to 16 kHz (channels kept), then averages the
    channels: mono = mean of channels, defined here rather than by FFmpeg's downmix."""

    def __init__(self) -> None:
        av = need("av")
        self.resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
        self.chunks: list[np.ndarray] = []
        self.first_time: float | None = None

    def push(self, frame: Any) -> None:
        if self.first_time is None and frame.time is not None:
            self.first_time = float(frame.time)
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray().mean(axis=0))  # (C, n) -> (n,)

    def finish(self, origin: float) -> np.ndarray:
        for out in self.resampler.resample(None):
            self.chunks.append(out.to_ndarray().mean(axis=0))
        if not self.chunks:
            return np.zeros(0, np.float32)
        wave = np.concatenate(self.chunks).astype(np.float32)
        shift = int(round(((self.first_time or origin) - origin) * SAMPLE_RATE))
        if shift > 0:
            return np.concatenate([np.zeros(shift, np.float32), wave])
        return wave[-shift:] if shift < 0 else wave


def video_seconds(path: str | Path) -> float:
    """Header duration of a video (for benchmarks' seconds-per-minute), without decoding."""
    av = need("av")
    with av.open(str(path)) as container:
        duration = stream_duration(container.streams.video[0], container)
    return duration if duration is not None and math.isfinite(duration) else 0.0
