"""How well modality-aware label refinement (train.label_refinement=ma) judges what is not
heard or not seen, on LLP-structured synthetic data, whose generated training events say
which labels truly are (read here for the diagnosis only; training never reads them).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_recipes.py --data ../shared/data/llp \
        --seeds 0 1 2

Per seed: the teacher of a `llp_demo` run (trained here, as the recipe trains it), then over
the training clips' labels: the share truly not heard / not seen; how many MA judges so and
how many of those are right (precision) and found (recall); and how well the swap test's
score (the larger of the two streams' probabilities with the other track swapped) ranks
the truly absent below the present (AUC: 0.5 chance, 1 perfect).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from avloc.config import load_config
from avloc.data import load_dataset
from avloc.train import recipes
from avloc.train.distributed import Dist
from avloc.util.cpus import use_threads


def auc(absent: np.ndarray, present: np.ndarray) -> float:
    """P(score of an absent label < score of a present one), ties half."""
    if not len(absent) or not len(present):
        return float("nan")
    a, p = absent[:, None], present[None, :]
    return float((a < p).mean() + 0.5 * (a == p).mean())


def truth(ds, videos) -> np.ndarray:
    """(N, 2, C) which labels are heard / seen in the generated training events."""
    index = {c: i for i, c in enumerate(ds.classes)}
    out = np.zeros((len(videos), 2, ds.num_classes), dtype=bool)
    for n, v in enumerate(videos):
        for s in ds.annotations[v.vid].segments:
            out[n, 0 if s.modality == "audio" else 1, index[s.label]] = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="the LLP annotation folder (real lists)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.5],
                    help="train.ma_ratio values to judge with (0.5: Wu and Yang's)")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE settings for the llp_demo run")
    args = ap.parse_args()
    use_threads(1)
    print("| seed | ratio | labels | not heard (true) | judged not heard | precision / recall "
          "| AUC | not seen (true) | judged not seen | precision / recall | AUC |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        cfg = load_config("llp_demo", ["train.progress=false", "train.label_refinement=ma",
                                       f"train.seed={seed}", *args.overrides])
        ds = load_dataset(cfg.data, args.data)
        videos = ds.splits["train"]
        with tempfile.TemporaryDirectory() as tmp:
            model = recipes.fit_teacher(recipes.teacher_config(cfg, 0), recipes.training_view(ds),
                                        Path(tmp) / "teacher0", torch.device("cpu"), Dist())
        labels = np.stack([v.labels for v in videos])
        probs = recipes.swapped_stream_probs(model, videos, recipes.ma_partners(labels, seed),
                                             torch.device("cpu"))
        for ratio in args.ratios:
            report(seed, ratio, probs, labels, truth(ds, videos))


def report(seed: int, ratio: float, probs: np.ndarray, labels: np.ndarray, real: np.ndarray
           ) -> None:
    """One table row: MA's judgements at `ratio` against the generated truth `real`."""
    refined = recipes.ma_refine(probs, labels, recipes.ma_thresholds(probs[:, 0], labels, ratio))
    y = labels > 0
    row = [str(seed), f"{ratio:g}", str(int(y.sum()))]
    for m, kept in ((0, probs[:, 1]), (1, probs[:, 2])):  # own audio / own visual left
        absent, judged = y & ~real[:, m], y & (refined[:, m] == 0)
        hit = int((absent & judged).sum())
        score = kept.max(axis=1)  # (N, C) the larger stream's probability
        row += [f"{100 * absent.sum() / y.sum():.1f} %", str(int(judged.sum())),
                f"{100 * hit / max(judged.sum(), 1):.0f} % / "
                f"{100 * hit / max(absent.sum(), 1):.1f} %",
                f"{auc(score[absent], score[y & real[:, m]]):.3f}"]
    print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
