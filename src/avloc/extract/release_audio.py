"""The releases' VGGish inputs: log-mel examples framed as AVE's and LLP's code framed them,
one (96, 64) example per one-second snippet, in numpy (the network runs elsewhere).

- AVE (AVE-ECCV18 feature_extractor/vggish_input.py, wavfile_to_examples as the fork
  edited it): the 16-bit wav at its own rate is cut into 1 s pieces `wav[i*sr:(i+1)*sr]`;
  each piece alone is made mono (mean of channels), resampled to 16 kHz with resampy
  (kaiser_best) and framed; its one 96-frame example is the snippet's.
- LLP (AVVP-ECCV20 scripts/extract_audio.py, then VGGish's standard framing): moviepy
  writes a 16 kHz wav by taking the nearest 44.1 kHz sample (release_grid.nearest_resample)
  and quantising it to int16; the whole 10 s clip is framed, examples every 0.96 s.
"""

from __future__ import annotations

import numpy as np

from avloc.extract.melspec import VGGISH_LOG_OFFSET, log_mel
from avloc.extract.release_grid import (
    VGGISH_EXAMPLE,
    VGGISH_RATE,
    moviepy_int16,
    nearest_resample,
    ten_second_windows,
)
from avloc.extract.weights import need

MOVIEPY_RATE = 44100  # moviepy's audio reader decodes at 44.1 kHz stereo (its fps default)


def examples(wave: np.ndarray, count: int) -> np.ndarray:
    """(S,) 16 kHz mono -> (count, 96, 64): VGGish's log-mel framed into 96-frame examples
    every 96 frames (vggish_input.waveform_to_examples); too short: zero-padded first."""
    need_samples = (count * VGGISH_EXAMPLE - 1) * 160 + 400  # the last example's last window
    wave = np.pad(wave, (0, max(0, need_samples - len(wave))))
    mel = log_mel(wave, VGGISH_LOG_OFFSET)  # (F, 64)
    return mel[: count * VGGISH_EXAMPLE].reshape(count, VGGISH_EXAMPLE, -1)


def ave_examples(wave: np.ndarray, rate: int, segments: int) -> np.ndarray:
    """(S, C) samples in [-1, 1) at `rate` -> (segments, 96, 64), one piece per second."""
    resampy = need("resampy")
    out = []
    for second in range(segments):
        piece = wave[second * rate:(second + 1) * rate].mean(axis=1)  # (<= rate,) mono
        piece = np.pad(piece, (0, rate - len(piece)))  # past the audio's end: silence
        if rate != VGGISH_RATE:
            piece = resampy.resample(piece, rate, VGGISH_RATE)  # (16000,)
        out.append(examples(piece, 1)[0])  # 98 frames; the first 96 are the example
    return np.stack(out) if out else np.zeros((0, VGGISH_EXAMPLE, 64), np.float32)


def llp_wave(wave: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """(S, C) decoded at MOVIEPY_RATE -> (K,) 16 kHz mono as LLP's wav held it: nearest
    sample, int16 quantisation, /32768 as vggish_input reads a wav, mean of channels."""
    if not len(wave):  # no audio stream: silence
        return np.zeros(len(np.arange(0.0, seconds, 1.0 / VGGISH_RATE)))
    wav16 = moviepy_int16(nearest_resample(wave, rate, VGGISH_RATE, seconds))  # (K, C)
    return (wav16 / 32768.0).mean(axis=1)


def llp_examples(wave16k: np.ndarray, segments: int) -> np.ndarray:
    """(K,) 16 kHz mono -> (segments, 96, 64): each 10 s window framed as LLP framed a clip
    (release_grid.ten_second_windows), its audio zero-padded to 10 s."""
    parts = []
    for start, count in ten_second_windows(segments):
        window = wave16k[start:start + 10 * VGGISH_RATE]
        window = np.pad(window, (0, 10 * VGGISH_RATE - len(window)))
        parts.append(examples(window, 10)[:count])  # 10 s: 998 frames, 10 examples
    return np.concatenate(parts)
