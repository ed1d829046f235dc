"""Detection mAP speed: avloc.scoring.metrics.detection_map vs a per-prediction loop.

    .venv/bin/python benchmarks/bench_map.py [--predictions 200000] [--seed 0]

Ground truth: the real ActivityNet 1.2 validation subset (3582 instances, 100 classes,
2383 videos) from ../shared/data/activitynet12 (or $AVLOC_SHARED_DATA/activitynet12),
or a synthetic one of the same size when that folder is absent. Predictions: seeded random
detections, most of them near a ground-truth instance of their video (as a localizer's
output is), scores rounded to 1e-3 so that ties occur, 10 % on other videos or of other
classes. The loop below is the official algorithm (ActivityNet Evaluation/eval_detection.py,
compute_average_precision_detection) written plainly, one prediction at a time, with its
NumPy sorts; both must give bit-identical numbers. CPU time (time.process_time) is reported
next to wall time because it is not inflated when other processes share the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from avloc.scoring.anet_json import GroundTruth, Predictions, parse_ground_truth
from avloc.scoring.metrics import TIOU, detection_map

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVLOC_SHARED_DATA", REPO.parent / "shared" / "data")) / "activitynet12"


def real_validation_gt(folder: Path) -> GroundTruth:
    """The validation subset of the W-TALC .npy layout as a GroundTruth."""

    def load(name: str) -> np.ndarray:
        return np.load(folder / f"{name}.npy", allow_pickle=True, encoding="bytes")

    names, subset, duration = load("videoname"), load("subset"), load("duration")
    segments, labels = load("segments"), load("labels")
    db = {}
    for i in np.nonzero(subset == b"validation")[0]:
        db[names[i].decode()] = {
            "duration": float(duration[i]),
            "annotations": [
                {"segment": [float(s), float(e)], "label": lab.decode()}
                for (s, e), lab in zip(segments[i], labels[i], strict=True)
            ],
        }
    return parse_ground_truth({"database": db}, str(folder))


def synthetic_gt(rng: np.random.Generator) -> GroundTruth:
    """Same size as ActivityNet 1.2 validation: 2383 videos, 100 classes, 3582 instances."""
    db = {}
    for v in range(2383):
        duration = float(rng.uniform(20, 240))
        label = f"class{rng.integers(100)}"
        n = 1 + (v < 3582 - 2383)  # 1199 videos hold two instances
        anns = []
        for _ in range(n):
            s = float(rng.uniform(0, duration * 0.6))
            anns.append({"segment": [s, float(rng.uniform(s + 1, duration))], "label": label})
        db[f"video_{v}"] = {"duration": duration, "annotations": anns}
    return parse_ground_truth({"database": db}, "synthetic")


def random_predictions(gt: GroundTruth, n: int, rng: np.random.Generator) -> Predictions:
    """60% jittered ground-truth instances, 30% random segments with the video's classes,
    10% random segments of random classes."""
    vids = np.array(list(gt.durations), dtype=object)
    classes = np.array(gt.classes, dtype=object)
    kind = rng.random(n)  # (n,)
    src = rng.integers(len(gt.label), size=n)  # a ground-truth instance per prediction
    video, label = gt.video[src].copy(), gt.label[src].copy()
    length = gt.segment[src, 1] - gt.segment[src, 0]
    jitter = rng.normal(0, 0.15, size=(n, 2)) * np.maximum(length, 1)[:, None]
    seg = gt.segment[src] + jitter  # (n, 2)
    far = kind >= 0.6
    pick = rng.integers(len(vids), size=n)
    wild = kind >= 0.9
    video[wild] = vids[pick[wild]]
    label[wild] = classes[rng.integers(len(classes), size=int(wild.sum()))]
    d = np.array([gt.durations[v] for v in video])  # (n,)
    start = rng.uniform(0, 1, n) * d
    seg[far] = np.stack([start, start + rng.uniform(0, 1, n) * (d - start)], axis=1)[far]
    seg = np.clip(seg, 0, d[:, None])
    seg[:, 1] = np.maximum(seg[:, 1], seg[:, 0] + 0.01)
    seg[:, 1] = np.minimum(seg[:, 1], d + 0.5)  # within the reader's 1 s tolerance
    score = np.round(rng.random(n), 3)  # ties
    return Predictions(video, seg, label, score, "random")


def naive_ap(gt: GroundTruth, preds: Predictions, thresholds: np.ndarray) -> np.ndarray:
    """(K, C): the official per-prediction loop and sorts, ground truth grouped by video."""
    classes = gt.classes
    ap = np.zeros((len(thresholds), len(classes)))
    for ci, c in enumerate(classes):
        gidx = np.nonzero(gt.label == c)[0]
        by_video: dict[str, list[int]] = {}
        for j, g in enumerate(gidx):
            by_video.setdefault(gt.video[g], []).append(j)
        pidx = np.nonzero(preds.label == c)[0]  # file order
        if not len(pidx):
            continue
        pidx = pidx[preds.score[pidx].argsort()[::-1]]
        lock = -np.ones((len(thresholds), len(gidx)))
        tp = np.zeros((len(thresholds), len(pidx)))
        fp = np.zeros((len(thresholds), len(pidx)))
        for idx, p in enumerate(pidx):
            mine = by_video.get(preds.video[p])
            if mine is None:
                fp[:, idx] = 1
                continue
            target, cand = preds.segment[p], gt.segment[gidx[mine]]
            inter = (np.minimum(target[1], cand[:, 1]) - np.maximum(target[0], cand[:, 0])).clip(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                tiou = inter / ((cand[:, 1] - cand[:, 0]) + (target[1] - target[0]) - inter)
            order = tiou.argsort()[::-1]
            for t, thr in enumerate(thresholds):
                for jdx in order:
                    if tiou[jdx] < thr:
                        fp[t, idx] = 1
                        break
                    if lock[t, mine[jdx]] >= 0:
                        continue
                    tp[t, idx] = 1
                    lock[t, mine[jdx]] = idx
                    break
                if fp[t, idx] == 0 and tp[t, idx] == 0:
                    fp[t, idx] = 1
        tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
        for t in range(len(thresholds)):
            prec, rec = tp_c[t] / (tp_c[t] + fp_c[t]), tp_c[t] / len(gidx)
            mprec, mrec = np.hstack([[0], prec, [0]]), np.hstack([[0], rec, [1]])
            for i in range(len(mprec) - 1)[::-1]:
                mprec[i] = max(mprec[i], mprec[i + 1])
            k = np.where(mrec[1:] != mrec[:-1])[0] + 1
            ap[t, ci] = np.sum((mrec[k] - mrec[k - 1]) * mprec[k])
    return ap


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictions", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    gt = real_validation_gt(DATA) if DATA.exists() else synthetic_gt(rng)
    preds = random_predictions(gt, args.predictions, rng)
    print(f"ground truth: {gt.source}: {len(gt.label)} instances, {len(gt.classes)} classes, "
          f"{len(gt.durations)} videos; {len(preds.score)} predictions")

    fast_wall, fast_cpu = [], []
    for _ in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        metrics = detection_map(gt, preds)
        fast_wall.append(time.perf_counter() - w0)
        fast_cpu.append(time.process_time() - c0)
    w0, c0 = time.perf_counter(), time.process_time()
    ref = naive_ap(gt, preds, TIOU)
    slow_wall, slow_cpu = time.perf_counter() - w0, time.process_time() - c0

    got = np.array([metrics["per_class_AP"][c] for c in gt.classes]).T  # (K, C)
    identical = np.array_equal(got, ref) and np.array_equal(
        list(metrics["mAP"].values()), ref.mean(axis=1)
    ) and metrics["average_mAP"] == ref.mean(axis=1).mean()
    print(f"average mAP {100 * metrics['average_mAP']:.4f} %  (loop: {100 * ref.mean():.4f} %)")
    print(f"identical to the per-prediction loop: {identical}")
    print(f"detection_map (best of {args.repeats}): {min(fast_cpu):.3f} s CPU, "
          f"{min(fast_wall):.3f} s wall")
    print(f"per-prediction loop: {slow_cpu:.3f} s CPU, {slow_wall:.3f} s wall")
    print(f"speed-up: {slow_cpu / min(fast_cpu):.1f}x CPU time, "
          f"{slow_wall / min(fast_wall):.1f}x wall time")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
