"""AVE event localization: snippet accuracy (Tian et al., ECCV 2018) and the oracle."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avloc.util.errors import AvlocError


def _pooled(truth: Sequence[np.ndarray]) -> np.ndarray:
    if not len(truth):
        raise AvlocError("snippet accuracy: no videos to score")
    return np.concatenate([np.asarray(t).reshape(-1) for t in truth])  # (sum T,)


def snippet_accuracy(pred: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """Fraction of correctly labelled snippets, pooled over all videos (AVE protocol).

    Background snippets (label 0) count like any other class, as in Tian et al. (2018).
    """
    if len(pred) != len(truth):
        raise AvlocError(f"snippet accuracy: {len(pred)} predictions for {len(truth)} videos")
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        if np.shape(p) != np.shape(t):
            raise AvlocError(
                f"snippet accuracy: video {i} has {np.shape(p)} predicted labels "
                f"for {np.shape(t)} true ones"
            )
    t = _pooled(truth)
    if t.size == 0:
        raise AvlocError("snippet accuracy: no snippets to score")
    return float(np.mean(_pooled(pred) == t))


def video_event_class(labels: np.ndarray) -> int:
    """The video's event class: its most frequent non-zero snippet label (0 if none)."""
    fg = np.asarray(labels)[np.asarray(labels) > 0]  # (T_fg,)
    return int(np.bincount(fg).argmax()) if fg.size else 0


def oracle_accuracy(truth: Sequence[np.ndarray]) -> float:
    """Accuracy of labelling every snippet with the video's true event class.

    The oracle knows the class but does no temporal localization, so `accuracy - oracle`
    is what a model gains (or loses) by separating the event from background.
    """
    oracle = [np.full(np.shape(t), video_event_class(t)) for t in truth]
    return snippet_accuracy(oracle, truth)
