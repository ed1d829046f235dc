"""Evaluation, one protocol per module, each as its official code computes it.

- `ave`: AVE event localization, snippet accuracy pooled over videos (and the oracle);
- `detection`: ActivityNet / THUMOS'14 detection mAP@tIoU (the official ActivityNet
  evaluator's procedure, ties included);
- `parsing`: LLP audio-visual video parsing, segment- and event-level F-scores per modality,
  Type@AV and Event@AV (the official AVVP-ECCV20 code's procedure).
"""

from avloc.scoring.anet_json import GroundTruth, Predictions, ground_truth_from_annotations
from avloc.scoring.metrics.ave import oracle_accuracy, snippet_accuracy, video_event_class
from avloc.scoring.metrics.detection import (
    PAPER_RANGES,
    TIOU,
    TIOU_KEYS,
    detection_map,
    interpolated_ap,
    range_averages,
    rank_detections,
    score_files,
    segment_iou,
    tiou_keys,
)
from avloc.scoring.metrics.parsing import parsing_scores

__all__ = [
    "PAPER_RANGES",
    "TIOU",
    "TIOU_KEYS",
    "GroundTruth",
    "Predictions",
    "detection_map",
    "ground_truth_from_annotations",
    "interpolated_ap",
    "oracle_accuracy",
    "parsing_scores",
    "range_averages",
    "rank_detections",
    "score_files",
    "segment_iou",
    "tiou_keys",
    "snippet_accuracy",
    "video_event_class",
]
