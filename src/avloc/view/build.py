"""`avloc view`: a localization output folder -> a static HTML report in OUT/view/.

    OUT/view/index.html     the page (opens from disk: no server, no network)
    OUT/view/index.js       the index: one row per video, per-class AP, what was scored
    OUT/view/data/N.js      one video's tracks, loaded when the video is opened
    OUT/view/assets/        ECharts (Apache-2.0, a build of the parts used), view.js, view.css

Only the index loads with the page, so 500 long videos open as fast as 5; a video's file
holds its segments, the activations of its top classes (scaled to their range in the
video) and mu as base64 bytes (1/255 steps: a picture, not the numbers; those are in
OUT/cas). Files load by <script> tags,
which browsers allow from disk where fetch() is refused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from avloc.data.base import Timing
from avloc.scoring.results import CAS_DIR, GROUND_TRUTH_FILE, RESULTS_FILE, CasRecord, read_cas
from avloc.util.errors import AvlocError
from avloc.view.tracks import (
    Detections,
    Truth,
    VideoView,
    detection_view,
    outcomes,
    parsing_view,
)

VIEW_DIR = "view"
ASSETS = ("index.html", "view.js", "view.css", "echarts.min.js", "echarts-LICENSE.txt")


def _read_results(out: Path) -> tuple[dict[str, Detections], Any, dict[str, Any]]:
    """{video: detections} in the file's order, the checked Predictions, and what made the
    file (its "avloc" entry)."""
    from avloc.scoring.anet_json import made_by, parse_predictions
    from avloc.util.io import read_json

    path = out / RESULTS_FILE
    if not path.is_file():
        raise AvlocError(f"{path}: no results file; OUT must be written by avloc localize or "
                         "avloc eval --out")
    data = read_json(path)
    preds = parse_predictions(data, str(path))
    rows: dict[str, list[int]] = {vid: [] for vid in data["results"]}
    for i, vid in enumerate(preds.video.tolist()):
        rows[vid].append(i)
    modality = preds.modality if preds.modality is not None else np.full(len(preds.label), "")
    per: dict[str, Detections] = {}
    for vid, idx in rows.items():
        score = preds.score[idx].astype(np.float64)  # (D,) file order
        order = np.asarray(idx, dtype=np.int64)[np.argsort(-score, kind="stable")]
        per[vid] = Detections(preds.segment[order].reshape(-1, 2), preds.label[order].tolist(),
                              preds.score[order].astype(np.float64), modality[order].tolist())
    if not per:
        raise AvlocError(f"{path}: lists no videos")
    return per, preds, made_by(data)


def _read_truth(gt: str | Path | None, out: Path, videos: Sequence[str]) -> Any:
    """The ground truth of the shown videos (all subsets), or None."""
    from avloc.scoring.anet_json import GroundTruth, read_ground_truth

    path = Path(gt) if gt else out / GROUND_TRUTH_FILE
    if gt is None and not path.is_file():
        return None
    full = read_ground_truth(path)
    keep = np.isin(full.video, list(videos))  # (N,)
    shown = {v: d for v, d in full.durations.items() if v in set(videos)}
    if not shown:
        raise AvlocError(f"{path}: none of the {len(videos)} videos of {out / RESULTS_FILE} "
                         f"is in this ground truth (ids like {', '.join(list(videos)[:2])})")
    modality = full.modality[keep] if full.modality is not None else None
    return GroundTruth(shown, full.video[keep], full.segment[keep], full.label[keep], str(path),
                       modality=modality)


def _find_videos(folder: str | Path | None, records: dict[str, CasRecord | None]
                 ) -> dict[str, Path]:
    """{video id: file}: from --videos, else the file each CAS record came from."""
    from avloc.extract.run import VIDEO_SUFFIXES, list_videos

    if folder is not None:
        return {p.stem: p for p in list_videos([folder])}
    found = {}
    for vid, rec in records.items():
        src = Path(str(rec.meta.get("source", ""))) if rec else None
        if src and src.suffix.lower() in VIDEO_SUFFIXES and src.is_file():
            found[vid] = src
    return found


def _row(vid: str, n: int, det: Detections, truth: Truth | None, v: VideoView,
         rec: CasRecord | None, duration: float, video: str | None) -> dict[str, Any]:
    """The index's line for one video."""
    return {
        "id": vid, "file": f"data/{n:06d}.js", "duration": round(duration, 3),
        "snippets": len(rec.cas) if rec is not None else None,
        "top": det.label[0] if det.label else None,
        "score": round(float(det.score[0]), 4) if len(det.score) else None,
        "segments": len(det.label), "pred_classes": sorted(set(det.label)),
        "gt_classes": sorted(set(truth.label)) if truth else [],
        "instances": len(truth.label) if truth else 0,
        "errors": v.errors, "by_modality": v.by_modality, "scores": v.scores, "video": video,
    }


def _per_class(gt: Any, preds: Any, tiou: np.ndarray) -> dict[str, Any]:
    """Per-class AP over the shown videos (the official evaluator's procedure)."""
    from avloc.scoring.metrics import detection_map, tiou_keys

    m = detection_map(gt, preds, tiou, unknown_labels="drop")
    counts = dict(zip(*np.unique(gt.label.astype(str), return_counts=True), strict=True))
    rows = [{"label": c, "ap": ap, "instances": int(counts.get(c, 0))}
            for c, ap in m["per_class_AP"].items()]
    return {"tiou": tiou_keys(tiou), "mAP": m["mAP"], "average_mAP": m["average_mAP"],
            "classes": rows, "videos": m["videos"], "instances": m["instances"],
            "detections": m["detections"]}


def _video_url(path: Path | None, view_dir: Path) -> str | None:
    """A link from OUT/view/index.html to the video file (relative where it can be)."""
    if path is None:
        return None
    try:
        return quote(Path(os.path.relpath(path.resolve(), view_dir.resolve())).as_posix())
    except ValueError:  # another drive (Windows): an absolute file URL
        return path.resolve().as_uri()


def build_view(out: str | Path, gt: str | Path | None = None,
               videos: str | Path | None = None, tiou: str = "0.5:0.95:0.05",
               diagnose_tiou: float = 0.5) -> tuple[Path, int]:
    """Write OUT/view/ (replacing an older one only once the new one is complete); return
    the index.html path and the number of videos."""
    from avloc.config import parse_tiou

    out = Path(out)
    if not out.is_dir():
        raise AvlocError(f"{out}: no such output folder (avloc localize / avloc eval --out)")
    thresholds = parse_tiou(tiou, "--tiou")
    dets, preds, made_by = _read_results(out)
    truth = _read_truth(gt, out, list(dets))
    records = {vid: _maybe_cas(out, vid) for vid in dets}
    files = _find_videos(videos, records)
    task = _task(records, made_by, preds)
    view = out / VIEW_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{VIEW_DIR}.partial-", dir=out))
    try:
        index = _write_videos(tmp, view, dets, truth, records, files, task, made_by,
                              preds, diagnose_tiou)
        index |= {"title": str(out.resolve().name), "diagnose_tiou": diagnose_tiou,
                  "has_truth": truth is not None, "task": task,
                  "outcomes": outcomes(task, diagnose_tiou),
                  "thresholds": made_by.get("thresholds"),
                  "ap": _per_class(truth, preds, thresholds)
                  if _instances(truth) and task != "parsing" else None}
        _write_js(tmp / "index.js", "avlocIndex", index)  # view.js defines avlocIndex
        _copy_assets(tmp)
        _swap_in(tmp, view)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return view / "index.html", len(dets)


def _instances(truth: Any) -> int:
    return 0 if truth is None else len(truth.label)


def _maybe_cas(out: Path, vid: str) -> CasRecord | None:
    path = out / CAS_DIR / f"{vid}.npz"
    return read_cas(path) if path.is_file() else None


def _task(records: dict[str, CasRecord | None], made_by: dict[str, Any], preds: Any) -> str:
    """The model's task: as the results file or the CAS files record it; results with a
    modality are a parsing model's; else action."""
    recorded = made_by.get("task") or next(
        (r.meta.get("task") for r in records.values() if r is not None), None)
    if recorded in ("action", "event", "parsing"):
        return str(recorded)
    return "parsing" if preds.modality is not None else "action"


def _truth_of(truth: Any, vid: str) -> Truth | None:
    if truth is None or vid not in truth.durations:
        return None
    mine = truth.video == vid  # (N,)
    modality = (truth.modality[mine].tolist() if truth.modality is not None
                else [""] * int(mine.sum()))
    return Truth(truth.segment[mine].reshape(-1, 2), truth.label[mine].tolist(), modality)


def _write_videos(tmp: Path, view: Path, dets: dict[str, Detections], truth: Any,
                  records: dict[str, CasRecord | None], files: dict[str, Path], task: str,
                  made_by: dict[str, Any], preds: Any, tiou: float) -> dict[str, Any]:
    """Every video's data file; returns the index rows and the summary of the numbers."""
    (tmp / "data").mkdir()
    seconds = float(made_by.get("snippet_seconds") or 1.0)
    parsing = (_parsing_scores(truth, preds, seconds)
               if task == "parsing" and truth is not None else None)
    rows = []
    for n, (vid, det) in enumerate(dets.items()):
        rec, mine = records[vid], _truth_of(truth, vid)
        duration = _duration(vid, det, rec, truth)
        if task == "parsing":
            timing = rec.timing if rec is not None else Timing(seconds)
            length = len(rec.cas) if rec is not None else max(1, math.ceil(
                duration / timing.seconds - 1e-6))
            scores = _video_scores(parsing["per_video"].get(vid)) if parsing else {}
            v = parsing_view(det, mine, rec, timing, length, scores)
        else:
            v = detection_view(det, mine, rec, task, tiou)
        doc: dict[str, Any] = {"id": vid, "duration": duration, "tracks": v.tracks,
                               "scores": v.scores, "by_modality": v.by_modality}
        if rec is not None:
            doc |= {"snippets": len(rec.cas), "seconds": rec.timing.seconds,
                    "offset": rec.timing.offset}
        _write_js(tmp / "data" / f"{n:06d}.js", "avlocVideo", n, doc)
        rows.append(_row(vid, n, det, mine, v, rec, duration, _video_url(files.get(vid), view)))
    return {"videos": rows, "summary": _summary(task, rows, parsing)}


def _parsing_scores(truth: Any, preds: Any, seconds: float) -> dict[str, Any] | None:
    """The LLP F-scores of the shown videos (avloc.scoring.score_files); None when the ground truth
    names no modality."""
    from avloc.scoring.score_files import parsing_file_scores

    if truth.modality is None or preds.modality is None:
        return None
    return parsing_file_scores(truth, preds, seconds)


def _video_scores(per_video: dict[str, Any] | None) -> dict[str, float]:
    if not per_video:
        return {}
    return {f"{level}.{k}": v for level, scores in per_video.items() for k, v in scores.items()}


def _summary(task: str, rows: list[dict[str, Any]], parsing: dict[str, Any] | None
             ) -> dict[str, Any] | None:
    """The numbers over the shown videos: the LLP F-scores (parsing), the pooled snippet
    accuracy (event: the AVE protocol); detection's mAP is `ap`."""
    if parsing is not None:
        from avloc.scoring.metrics.parsing import LEVELS, SUMMARIES

        return {level: {k: parsing[level][k] for k in SUMMARIES} for level in LEVELS}
    scored = [r["scores"] for r in rows if "accuracy" in r["scores"]]
    if task == "event" and scored:
        snippets = sum(s["snippets"] for s in scored)
        correct = sum(s["accuracy"] * s["snippets"] for s in scored)
        return {"accuracy": correct / max(snippets, 1), "snippets": snippets}
    return None


def _duration(vid: str, det: Detections, rec: CasRecord | None, truth: Any) -> float:
    if rec is not None:
        return rec.duration
    if truth is not None and vid in truth.durations:
        return truth.durations[vid]
    return float(det.segment[:, 1].max()) if len(det.segment) else 1.0


def _write_js(path: Path, call: str, *args: Any) -> None:
    """A script that calls `call(args...)` in the page (JSON is JavaScript)."""
    text = ",".join(json.dumps(a, separators=(",", ":"), allow_nan=False) for a in args)
    path.write_text(f"{call}({text});\n", encoding="utf-8")


def _copy_assets(tmp: Path) -> None:
    src = resources.files("avloc.view") / "assets"
    (tmp / "assets").mkdir()
    for name in ASSETS:
        dest = tmp / name if name == "index.html" else tmp / "assets" / name
        dest.write_bytes((src / name).read_bytes())


def _swap_in(tmp: Path, view: Path) -> None:
    """Replace OUT/view by the complete new folder: readers see the old or the new one."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it 0700
    old = None
    if view.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{VIEW_DIR}.old-", dir=view.parent))
        os.replace(view, old / VIEW_DIR)
    os.replace(tmp, view)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
