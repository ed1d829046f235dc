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

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from avloc.errors import AvlocError
from avloc.results import CAS_DIR, GROUND_TRUTH_FILE, RESULTS_FILE, CasRecord, read_cas
from avloc.view.diagnose import KINDS, diagnose

VIEW_DIR = "view"
ASSETS = ("index.html", "view.js", "view.css", "echarts.min.js", "echarts-LICENSE.txt")
HEAT_CLASSES = 8  # rows of the activation heat map: the classes a reader cares about first
LANES = 10  # predicted-segment lanes; further classes share the last one


@dataclass
class Detections:
    """One video's detections, best first."""

    segment: np.ndarray  # (D, 2) seconds
    label: list[str]
    score: np.ndarray  # (D,)


def _read_results(out: Path) -> tuple[dict[str, Detections], Any]:
    """{video: detections} in the file's order, and the checked Predictions."""
    from avloc.anet_json import parse_predictions
    from avloc.io import read_json

    path = out / RESULTS_FILE
    if not path.is_file():
        raise AvlocError(f"{path}: no results file; OUT must be written by avloc localize or "
                         "avloc eval --out")
    data = read_json(path)
    preds = parse_predictions(data, str(path))
    rows: dict[str, list[int]] = {vid: [] for vid in data["results"]}
    for i, vid in enumerate(preds.video.tolist()):
        rows[vid].append(i)
    per: dict[str, Detections] = {}
    for vid, idx in rows.items():
        score = preds.score[idx].astype(np.float64)  # (D,) file order
        order = np.asarray(idx, dtype=np.int64)[np.argsort(-score, kind="stable")]
        per[vid] = Detections(preds.segment[order].reshape(-1, 2), preds.label[order].tolist(),
                              preds.score[order].astype(np.float64))
    if not per:
        raise AvlocError(f"{path}: lists no videos")
    return per, preds


def _read_truth(gt: str | Path | None, out: Path, videos: Sequence[str]) -> Any:
    """The ground truth of the shown videos (all subsets), or None."""
    from avloc.anet_json import GroundTruth, read_ground_truth

    path = Path(gt) if gt else out / GROUND_TRUTH_FILE
    if gt is None and not path.is_file():
        return None
    full = read_ground_truth(path)
    keep = np.isin(full.video, list(videos))  # (N,)
    shown = {v: d for v, d in full.durations.items() if v in set(videos)}
    if not shown:
        raise AvlocError(f"{path}: none of the {len(videos)} videos of {out / RESULTS_FILE} "
                         f"is in this ground truth (ids like {', '.join(list(videos)[:2])})")
    return GroundTruth(shown, full.video[keep], full.segment[keep], full.label[keep], str(path))


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


def _b64(x: np.ndarray) -> str:
    """Values in [0, 1] as base64 bytes of round(255 x)."""
    q = np.round(np.clip(np.nan_to_num(x), 0, 1) * 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _heat_classes(rec: CasRecord, det: Detections, truth: list[str]) -> list[int]:
    """The rows of the heat map: the video's true classes, those it predicts (best first),
    then its highest activations, at most HEAT_CLASSES."""
    peak = rec.cas.max(axis=0) if len(rec.cas) else np.zeros(len(rec.classes))  # (C,)
    names = [*truth, *det.label, *(rec.classes[c] for c in np.argsort(-peak, kind="stable"))]
    index = {c: i for i, c in enumerate(rec.classes)}
    return [index[n] for n in dict.fromkeys(names) if n in index][:HEAT_CLASSES]


def _tracks(vid: str, det: Detections, kinds: list[str], gt_rows: list[tuple],
            missed: list[bool], rec: CasRecord | None, duration: float) -> dict[str, Any]:
    """One video's data file: segments, lanes, heat rows and mu."""
    lanes = list(dict.fromkeys(det.label))
    doc: dict[str, Any] = {
        "id": vid, "duration": duration,
        "gt": [[s, e, label, bool(m)] for (s, e, label), m in zip(gt_rows, missed, strict=True)],
        "pred": [[float(s), float(e), label, float(sc), k] for (s, e), label, sc, k
                 in zip(det.segment, det.label, det.score, kinds, strict=True)],
        "lanes": lanes if len(lanes) <= LANES else [*lanes[: LANES - 1], "(other classes)"],
    }
    if rec is not None:
        rows = _heat_classes(rec, det, [g[2] for g in gt_rows])
        heat = rec.cas[:, rows].T  # (K, T)
        # the colour scale spans the video's own range: an unsure model still shows its leanings
        low, high = (float(heat.min()), float(heat.max())) if heat.size else (0.0, 1.0)
        span = max(high - low, 1e-6)
        doc |= {"snippets": len(rec.cas), "seconds": rec.timing.seconds,
                "offset": rec.timing.offset, "heat_classes": [rec.classes[c] for c in rows],
                "heat": _b64((heat - low) / span), "heat_range": [low, low + span],
                "mu": _b64(rec.mu)}
    return doc


def _row(vid: str, n: int, det: Detections, kinds: list[str], gt_rows: list[tuple],
         missed: list[bool], rec: CasRecord | None, duration: float,
         video: str | None) -> dict[str, Any]:
    """The index's line for one video."""
    counts = {k: kinds.count(k) for k in KINDS} | {"missed": int(sum(missed))}
    return {
        "id": vid, "file": f"data/{n:06d}.js", "duration": round(duration, 3),
        "snippets": len(rec.cas) if rec is not None else None,
        "top": det.label[0] if det.label else None,
        "score": round(float(det.score[0]), 4) if len(det.score) else None,
        "segments": len(det.label), "pred_classes": sorted(set(det.label)),
        "gt_classes": sorted({g[2] for g in gt_rows}), "instances": len(gt_rows),
        "errors": counts, "video": video,
    }


def _per_class(gt: Any, preds: Any, tiou: np.ndarray) -> dict[str, Any]:
    """Per-class AP over the shown videos (the official evaluator's procedure)."""
    from avloc.metrics import detection_map, tiou_keys

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
    from avloc.metrics import parse_tiou

    out = Path(out)
    if not out.is_dir():
        raise AvlocError(f"{out}: no such output folder (avloc localize / avloc eval --out)")
    thresholds = parse_tiou(tiou, "--tiou")
    dets, preds = _read_results(out)
    truth = _read_truth(gt, out, list(dets))
    records = {vid: _maybe_cas(out, vid) for vid in dets}
    files = _find_videos(videos, records)
    view = out / VIEW_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{VIEW_DIR}.partial-", dir=out))
    try:
        index = _write_videos(tmp, view, dets, truth, records, files, diagnose_tiou)
        index |= {"title": str(out.resolve().name), "diagnose_tiou": diagnose_tiou,
                  "has_truth": truth is not None, "kinds": list(KINDS) + ["missed"],
                  "ap": _per_class(truth, preds, thresholds) if _instances(truth) else None,
                  "task": _task(records)}
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


def _task(records: dict[str, CasRecord | None]) -> str | None:
    return next((str(r.meta.get("task")) for r in records.values() if r is not None), None)


def _write_videos(tmp: Path, view: Path, dets: dict[str, Detections], truth: Any,
                  records: dict[str, CasRecord | None], files: dict[str, Path],
                  tiou: float) -> dict[str, Any]:
    """Every video's data file; returns the index rows."""
    (tmp / "data").mkdir()
    rows = []
    for n, (vid, det) in enumerate(dets.items()):
        gt_rows: list[tuple] = []
        if truth is not None:
            mine = truth.video == vid  # (N,)
            gt_rows = [(float(s), float(e), str(c)) for (s, e), c
                       in zip(truth.segment[mine], truth.label[mine], strict=True)]
        kinds, missed = ([""] * len(det.label), [False] * len(gt_rows))
        if truth is not None and vid in truth.durations:
            kinds, missed = diagnose(det.segment, det.label, det.score,
                                     np.array([g[:2] for g in gt_rows]), [g[2] for g in gt_rows],
                                     tiou)
        rec = records[vid]
        duration = _duration(vid, det, rec, truth)
        tracks = _tracks(vid, det, kinds, gt_rows, missed, rec, duration)
        _write_js(tmp / "data" / f"{n:06d}.js", "avlocVideo", n, tracks)
        rows.append(_row(vid, n, det, kinds, gt_rows, missed, rec, duration,
                         _video_url(files.get(vid), view)))
    return {"videos": rows}


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
