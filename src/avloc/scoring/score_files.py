"""`avloc score`: a results file against a ground-truth file, as its benchmark scores it.

Detection results (ActivityNet format): mAP at each tIoU exactly as the official
ActivityNet evaluator computes it (`metrics.detection`). Parsing results (entries with a
"modality", as `avloc localize` and `avloc eval --out` write them for an LLP-style model):
the LLP segment- and event-level F-scores (`metrics.parsing`), the events of both files laid
on the snippet grid the results file records (its "avloc" entry; LLP's one-second
segments when it records none): snippet t holds an event [s, e) when its start lies in it
(`data.base.snippets_in`), the rule of the official ground truth GT[c, onset:offset] = 1.

The subset scored: `--subset`, else the one the results file records (`avloc eval --out`
writes the split's), else ActivityNet's default, validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data.base import Segment, Timing
from avloc.scoring.anet_json import (
    GroundTruth,
    Predictions,
    load_json,
    made_by,
    parse_ground_truth,
    parse_predictions,
)
from avloc.util.errors import AvlocError, plural

DEFAULT_SUBSET = "validation"  # the official evaluator's


def event_matrices(video: str, rows: Any, classes: Sequence[str], length: int,
                   timing: Timing) -> tuple[np.ndarray, np.ndarray]:
    """(C, T) 0/1 audio and visual matrices of one video's events in a GroundTruth or
    Predictions (`rows`), on the snippet grid `timing`."""
    from avloc.scoring.segments import truth_matrices

    mine = rows.video == video  # (N,)
    segments = [Segment(float(s), float(e), str(c), str(m)) for (s, e), c, m
                in zip(rows.segment[mine], rows.label[mine], rows.modality[mine], strict=True)]
    return truth_matrices(segments, classes, length, timing)


def parsing_file_scores(gt: GroundTruth, preds: Predictions, seconds: float
                        ) -> dict[str, Any]:
    """LLP F-scores of the ground truth's videos: {segment_level, event_level, videos,
    per_video: {video: {segment_level: {...}, event_level: {...}}}}. Predictions on videos
    outside the ground truth are left out (`detections_outside_subset` counts them)."""
    from avloc.scoring.metrics.parsing import per_video_scores, summarize

    for rows in (gt, preds):
        if rows.modality is None and len(rows.label):
            raise AvlocError(f"{rows.source}: parsing data needs a modality on every entry, "
                             "but this file names none (score detection files against "
                             "detection ground truth)")
        if rows.modality is None:  # no entry at all
            rows.modality = np.zeros(0, dtype=object)
    videos = list(gt.durations)
    classes = sorted(set(gt.label.tolist()) | set(preds.label.tolist()))
    timing = Timing(seconds)
    mats = []
    for vid in videos:
        ends = [gt.durations[vid], *gt.segment[gt.video == vid, 1],
                *preds.segment[preds.video == vid, 1]]
        length = max(1, math.ceil(max(ends) / seconds - 1e-6))  # covers every event
        mats.append((*event_matrices(vid, preds, classes, length, timing),
                     *event_matrices(vid, gt, classes, length, timing)))
    pa, pv, ga, gv = ([m[i] for m in mats] for i in range(4))
    per = per_video_scores(pa, pv, ga, gv)
    out = summarize(per)
    out["per_video"] = {vid: {level: _with_type_av({k: float(v[n]) for k, v in scores.items()})
                              for level, scores in per.items()} for n, vid in enumerate(videos)}
    outside = ~np.isin(preds.video, videos)
    out["detections_outside_subset"] = int(outside.sum())
    out["subset"] = gt.subset
    out["snippet_seconds"] = seconds
    return out


def _with_type_av(f: dict[str, float]) -> dict[str, float]:
    """One video's F-scores with their Type@AV (the mean of audio, visual, audio-visual)."""
    return f | {"type_av": (f["audio"] + f["visual"] + f["audio_visual"]) / 3}


def score_results(gt_path: str | Path, pred_path: str | Path, subset: str | None = None,
                  tiou: Sequence[float] | np.ndarray | None = None, ties: str = "official"
                  ) -> tuple[dict[str, Any], str]:
    """The metrics of a results file against a ground-truth file, and what to print."""
    from avloc.scoring.metrics import TIOU, detection_map
    from avloc.scoring.reports import format_map_table, format_parsing_table, format_scope

    data = load_json(pred_path)
    subset = subset or made_by(data).get("subset") or DEFAULT_SUBSET
    gt = parse_ground_truth(load_json(gt_path), str(gt_path), subset)
    preds = parse_predictions(data, str(pred_path))
    parsing = made_by(data).get("task") == "parsing"
    if gt.modality is None and preds.modality is None and not parsing:
        metrics = detection_map(gt, preds, TIOU if tiou is None else tiou, ties)
        return metrics, f"{format_scope(metrics)}\n{format_map_table(metrics)}"
    seconds = float(made_by(data).get("snippet_seconds") or 1.0)
    metrics = parsing_file_scores(gt, preds, seconds)
    head = (f"scored subset {subset!r}: {plural(metrics['videos'], 'video')}, audio-visual "
            f"video parsing on {seconds:g} s segments; F-scores (%) of the events in "
            f"{pred_path}")
    outside = metrics["detections_outside_subset"]
    note = (f"\n{outside} events on videos outside the subset are left out" if outside else "")
    return metrics, f"{head}\n{format_parsing_table(metrics)}{note}"
