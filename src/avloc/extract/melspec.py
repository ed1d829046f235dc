"""The log-mel frontend shared by YAMNet and VGGish (Hershey et al., 2017), in numpy.

Both networks read patches of 96 frames x 64 mel bands of a 16 kHz waveform:
25 ms periodic-Hann windows every 10 ms, 512-point FFT magnitude, 64 HTK-mel bands
between 125 and 7500 Hz with triangles built on the mel axis (the TensorFlow / VGGish
reference construction, DC bin zeroed), then log(mel + offset): offset 0.001 for
YAMNet, 0.01 for VGGish. A patch spans 0.96 s (+15 ms of the last window); patches
start every `hop` seconds (0.48 s here, YAMNet's hop, for both networks).
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000  # Hz: YAMNet and VGGish both read 16 kHz mono; decode resamples to it
WINDOW = 400  # samples: 25 ms
HOP = 160  # samples: 10 ms
FFT = 512  # next power of two above WINDOW
MEL_BANDS = 64
PATCH_FRAMES = 96  # 0.96 s of 10 ms frames
PATCH_SECONDS = PATCH_FRAMES * HOP / SAMPLE_RATE  # 0.96
PATCH_HOP_SECONDS = 0.48
YAMNET_LOG_OFFSET = 0.001
VGGISH_LOG_OFFSET = 0.01


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(
    bands: int = MEL_BANDS, low: float = 125.0, high: float = 7500.0
) -> np.ndarray:
    """(FFT // 2 + 1, bands) triangular weights, triangles linear on the mel axis."""
    bins = FFT // 2 + 1
    bin_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))[:, None]  # (bins, 1)
    edges = np.linspace(_hz_to_mel(low), _hz_to_mel(high), bands + 2)  # (bands + 2,)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (centre - lower)
    falling = (upper - bin_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (bins, bands)
    weights[0, :] = 0.0  # the DC bin carries no band
    return weights


_MEL = mel_matrix()
_HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann


def log_mel(wave: np.ndarray, offset: float) -> np.ndarray:
    """(S,) 16 kHz waveform -> (F, 64) log-mel frames, F = 1 + (S - 400) // 160."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size < WINDOW:
        wave = np.pad(wave, (0, WINDOW - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, WINDOW)[::HOP]  # (F, 400)
    magnitude = np.abs(np.fft.rfft(frames * _HANN, n=FFT))  # (F, 257)
    return np.log(magnitude @ _MEL + offset).astype(np.float32)  # (F, 64)


def num_patches(samples: int, hop_seconds: float = PATCH_HOP_SECONDS) -> int:
    """P = 1 + ceil(max(0, S - one patch) / hop): every sample falls in some patch."""
    first = PATCH_FRAMES * HOP + WINDOW - HOP  # samples under one patch: 15600
    hop = int(round(hop_seconds * SAMPLE_RATE))
    return 1 + math.ceil(max(0, samples - first) / hop)


def patches(
    wave: np.ndarray, offset: float, hop_seconds: float = PATCH_HOP_SECONDS
) -> tuple[np.ndarray, np.ndarray]:
    """(S,) waveform -> ((P, 96, 64) log-mel patches, (P,) patch start times in seconds).

    The waveform is zero-padded at the end so that the last patch is complete (as
    YAMNet does); patch i covers [i * hop, i * hop + 0.96) seconds.
    """
    hop_frames = int(round(hop_seconds * SAMPLE_RATE / HOP))
    count = num_patches(int(np.asarray(wave).size), hop_seconds)
    need = PATCH_FRAMES * HOP + WINDOW - HOP + (count - 1) * hop_frames * HOP
    wave = np.pad(np.asarray(wave, dtype=np.float32), (0, max(0, need - np.size(wave))))
    mel = log_mel(wave[:need], offset)  # (F, 64), F = 96 + (P - 1) * hop_frames
    index = np.arange(count)[:, None] * hop_frames + np.arange(PATCH_FRAMES)[None, :]
    starts = np.arange(count) * hop_frames * HOP / SAMPLE_RATE
    return mel[index], starts  # (P, 96, 64), (P,)
