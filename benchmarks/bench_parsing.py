"""LLP parsing metrics speed: avloc's vectorised F-scores vs a per-video, per-class loop,
and threshold tuning on a validation-sized split.

    .venv/bin/python benchmarks/bench_parsing.py [--videos 1200] [--seed 0]

Ground truth: the real LLP test events (AVVP_eval_audio.csv / AVVP_eval_visual.csv of the
1,200 test clips) from ../shared/data/llp (or $AVLOC_SHARED_DATA/llp); random sparse events
of the same size when that folder is absent. Predictions: seeded random per-segment
probabilities thresholded as the official code does (0.5). The loop is the official
procedure (AVVP-ECCV20 utils/eval_metrics.py) written plainly; both must agree to 1e-12.
Tuning: `scoring.tune.tune_parsing_thresholds` on 649 random validation-sized videos (the
coordinate ascent over 19 values of three thresholds that `avloc train` and `avloc eval`
run once per run). CPU time (time.process_time) is reported beside wall time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from avloc.scoring.metrics.parsing import parsing_scores

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVLOC_SHARED_DATA", REPO.parent / "shared" / "data")) / "llp"


def truth(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(C, T) audio and visual ground truth of n clips: the real test clips when at hand."""
    if (DATA / "AVVP_train.csv").is_file():
        from avloc.data.llp import LLP_CLASSES, read_llp_annotations
        from avloc.scoring.segments import truth_matrices

        ann = read_llp_annotations(DATA)
        clips = [c for c, _ in ann.lists["test"]][:n]
        pairs = [truth_matrices(ann.events[c], LLP_CLASSES, 10, 1.0) for c in clips]
        return [a for a, _ in pairs], [v for _, v in pairs]
    return ([(rng.random((25, 10)) < 0.06).astype(np.uint8) for _ in range(n)],
            [(rng.random((25, 10)) < 0.04).astype(np.uint8) for _ in range(n)])


def loop_scores(pa, pv, ga, gv) -> dict[str, float]:
    """The official procedure, one video and one class at a time."""

    def events(row):
        out, start = [], None
        for t, x in enumerate(list(row) + [0]):
            if x == 1 and start is None:
                start = t
            elif x != 1 and start is not None:
                out.append(set(range(start, t)))
                start = None
        return out

    def seg(p, g):
        return (int((p * g).sum()), int((p * (1 - g)).sum()), int(((1 - p) * g).sum()))

    def evt(p, g):
        ep, eg = events(p), events(g)
        hit = lambda a, b: len(a & b) >= 0.5 * len(a | b)  # noqa: E731
        tp = sum(any(hit(x, y) for y in eg) for x in ep)
        return tp, len(ep) - tp, sum(not any(hit(y, x) for x in ep) for y in eg)

    def f(counts):
        fs = [2 * tp / (2 * tp + fn + fp) for tp, fp, fn in counts if tp + fp + fn > 0]
        return sum(fs) / len(fs) if fs else 1.0

    out = {}
    for level, count in (("segment_level", seg), ("event_level", evt)):
        per = []
        for a, v, x, y in zip(pa, pv, ga, gv, strict=True):
            ca = [count(a[c], x[c]) for c in range(len(a))]
            cv = [count(v[c], y[c]) for c in range(len(a))]
            cav = [count(a[c] * v[c], x[c] * y[c]) for c in range(len(a))]
            pooled = [tuple(i + j for i, j in zip(p, q, strict=True)) for p, q in zip(ca, cv,
                                                                                      strict=True)]
            per.append((f(ca), f(cv), f(cav), f(pooled)))
        a_, v_, av_, e_ = (float(np.mean([p[i] for p in per])) for i in range(4))
        out[f"{level}.type_av"] = (a_ + v_ + av_) / 3
        out[f"{level}.event_av"] = e_
    return out


def timed(fn, repeats: int = 1):
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    return result, best_cpu, best_wall


def bench_tuning(rng: np.random.Generator) -> tuple[float, float]:
    """Threshold tuning on 649 videos of random probabilities and random ground truth."""
    from avloc.config import load_config
    from avloc.data.base import Annotation, Dataset, Segment, Video
    from avloc.data.llp import LLP_CLASSES
    from avloc.scoring.predict import VideoPrediction
    from avloc.scoring.tune import tune_parsing_thresholds

    anns, preds = {}, []
    for i in range(649):
        vid = f"v{i}"
        segs = [Segment(float(s), float(min(s + rng.integers(1, 6), 10)), LLP_CLASSES[c], m)
                for c, s, m in zip(rng.integers(0, 25, 3), rng.integers(0, 10, 3),
                                   ("audio", "visual", "audio"), strict=True)]
        anns[vid] = Annotation(vid, 10.0, segs)
        a, v = rng.random((10, 25)), rng.random((10, 25))
        preds.append(VideoPrediction(vid, np.zeros((10, 26)), np.zeros(10), a, v,
                                     rng.random(25)))
    videos = [Video(p.vid, np.zeros((10, 1)), np.zeros((10, 1)), np.zeros(25)) for p in preds]
    ds = Dataset("bench", "parsing", list(LLP_CLASSES), 1.0, {"val": videos}, anns)
    cfg = load_config("llp_demo")
    _, cpu, wall = timed(lambda: tune_parsing_thresholds(ds, preds, cfg, "segment_level.type_av"))
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ga, gv = truth(args.videos, rng)
    n = len(ga)
    pa = [(rng.random((25, 10)) < 0.1).astype(np.uint8) for _ in range(n)]
    pv = [(rng.random((25, 10)) < 0.08).astype(np.uint8) for _ in range(n)]
    fast, fast_cpu, fast_wall = timed(lambda: parsing_scores(pa, pv, ga, gv), repeats=5)
    slow, slow_cpu, slow_wall = timed(lambda: loop_scores(pa, pv, ga, gv))
    worst = max(abs(fast[k.split(".")[0]][k.split(".")[1]] - v) for k, v in slow.items())
    tune_cpu, tune_wall = bench_tuning(rng)
    source = "real LLP test events" if (DATA / "AVVP_train.csv").is_file() else "random events"
    print(f"{n} videos ({source}); both levels")
    print(f"parsing_scores   CPU {fast_cpu:.3f} s  wall {fast_wall:.3f} s (best of 5)")
    print(f"per-video loop   CPU {slow_cpu:.3f} s  wall {slow_wall:.3f} s")
    print(f"speed-up (CPU)   {slow_cpu / fast_cpu:.1f}x; largest difference {worst:.1e}")
    print(f"tune thresholds  CPU {tune_cpu:.3f} s  wall {tune_wall:.3f} s (649 videos)")


if __name__ == "__main__":
    main()
