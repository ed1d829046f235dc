"""What went wrong in one video: each detection and each ground-truth instance gets a kind.

The classes of error follow Alwassel et al., "Diagnosing Error in Temporal Action
Detectors" (ECCV 2018, DETAD), simplified to the four a reader looks for. In one video
with G ground-truth instances, its G best detections (at least one) are judged, best
first, at tIoU threshold `tiou` (0.5 by default, the ActivityNet threshold papers quote):

- `tp`: tIoU >= tiou with an instance of its class that no better detection took (takes it);
- `boundaries` (poor boundaries): overlaps an instance of its class, low <= tIoU < tiou;
- `wrong_class`: overlaps (tIoU >= low) only instances of other classes;
- `false_positive`: overlaps no instance (tIoU < low, DETAD's background error), or repeats
  an instance a better detection already found (a duplicate);
- an instance no judged detection took is `missed`.

Detections below the G best are shown but not judged (kind ""): AP looks at every
detection, but a person reading one video asks whether the model's best guesses are
right, and DETAD's convention keeps the counts comparable across videos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avloc.scoring.metrics import segment_iou

KINDS = ("tp", "boundaries", "wrong_class", "false_positive")
LOW_TIOU = 0.1  # DETAD: below this a detection overlaps nothing


def diagnose(
    det_segments: np.ndarray, det_labels: Sequence[str], det_scores: np.ndarray,
    gt_segments: np.ndarray, gt_labels: Sequence[str], tiou: float = 0.5,
) -> tuple[list[str], list[bool]]:
    """(kind of each detection, whether each instance was missed).

    det_segments (D, 2), det_scores (D,), gt_segments (N, 2) in seconds."""
    det_segments = np.asarray(det_segments, np.float64).reshape(-1, 2)  # (D, 2)
    gt_segments = np.asarray(gt_segments, np.float64).reshape(-1, 2)  # (N, 2)
    gt_labels = np.asarray(gt_labels, dtype=object)  # (N,)
    kinds = [""] * len(det_segments)
    taken = np.zeros(len(gt_segments), dtype=bool)  # (N,)
    judged = np.argsort(-np.asarray(det_scores, np.float64), kind="stable")
    for i in judged[: max(len(gt_segments), 1)]:
        iou = np.nan_to_num(segment_iou(gt_segments, det_segments[i]))  # (N,)
        same = gt_labels == det_labels[i]  # (N,)
        free = same & ~taken & (iou >= tiou)
        if free.any():
            taken[np.flatnonzero(free)[np.argmax(iou[free])]] = True
            kinds[i] = "tp"
        elif (same & (iou >= LOW_TIOU) & (iou < tiou)).any():
            kinds[i] = "boundaries"
        elif (~same & (iou >= LOW_TIOU)).any() and not (same & (iou >= tiou)).any():
            kinds[i] = "wrong_class"
        else:  # background, or a duplicate of an instance already found
            kinds[i] = "false_positive"
    return kinds, (~taken).tolist()
