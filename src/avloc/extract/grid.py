"""The snippet grid: how many snippets a video has, which instants represent each one,
and how audio patches with their own framing are pooled onto it.

Everything here is pure numpy so that the alignment rules can be tested without
decoding a video. docs/extraction.md states the same rules in words.

Snippet t (0-based) covers [t * s, (t + 1) * s) seconds of the video, s = snippet_seconds.
"""

from __future__ import annotations

import math

import numpy as np

# A last, partial snippet still counts when it is at least 95 % covered: containers often
# report 9.98 s for a 10 s clip (AAC priming, rounded time bases), which must still give
# 10 one-second snippets rather than 9.
COVERAGE_TOLERANCE = 0.05


def num_snippets(duration: float, snippet_seconds: float) -> int:
    """T = max(1, floor(duration / s + 0.05)): whole snippets, at least one."""
    if snippet_seconds <= 0:
        raise ValueError(f"snippet_seconds must be positive, got {snippet_seconds}")
    if not math.isfinite(duration) or duration <= 0:
        return 1
    return max(1, math.floor(duration / snippet_seconds + COVERAGE_TOLERANCE))


def sample_times(num: int, snippet_seconds: float, frames_per_snippet: int = 1) -> np.ndarray:
    """(T, k) instants whose frames represent each snippet.

    The snippet is cut into k equal parts and the centre of each part is taken, so k = 1
    is the snippet centre (t + 0.5) * s and k frames are spread evenly over the snippet.
    """
    if frames_per_snippet < 1:
        raise ValueError(f"frames_per_snippet must be >= 1, got {frames_per_snippet}")
    offsets = (np.arange(frames_per_snippet) + 0.5) / frames_per_snippet  # (k,)
    return (np.arange(num)[:, None] + offsets[None, :]) * snippet_seconds  # (T, k)


def overlap_weights(
    starts: np.ndarray, length: float, num: int, snippet_seconds: float
) -> np.ndarray:
    """(T, P) weights pooling P patches [start, start + length) onto T snippets.

    Weight = seconds of overlap between the patch and the snippet, rows normalised to
    sum to 1. A snippet that no patch overlaps (only possible when audio is shorter than
    the grid) takes the nearest patch, so no row is all zero.
    """
    starts = np.asarray(starts, dtype=np.float64)  # (P,)
    lo = np.arange(num)[:, None] * snippet_seconds  # (T, 1)
    hi = lo + snippet_seconds
    overlap = np.minimum(hi, starts[None, :] + length) - np.maximum(lo, starts[None, :])
    weights = np.clip(overlap, 0.0, None)  # (T, P)
    empty = weights.sum(axis=1) == 0
    if empty.any() and starts.size:
        centres = starts + length / 2  # (P,)
        nearest = np.abs((lo[empty] + hi[empty]) / 2 - centres[None, :]).argmin(axis=1)
        weights[np.flatnonzero(empty), nearest] = 1.0
    total = weights.sum(axis=1, keepdims=True)
    return weights / np.where(total > 0, total, 1.0)


def pool_patches(
    values: np.ndarray, starts: np.ndarray, length: float, num: int, snippet_seconds: float
) -> np.ndarray:
    """(P, D) patch values -> (T, D) snippet values, overlap-weighted mean."""
    weights = overlap_weights(starts, length, num, snippet_seconds)  # (T, P)
    return (weights @ values.astype(np.float64)).astype(np.float32)
