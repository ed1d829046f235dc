"""A whole run against a minimal loop: `avloc train` then `avloc eval` on generated data
laid out like a benchmark, timed beside the least code that trains the same model with
the same losses for the same epochs and tests once.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_whole_run.py [--preset thumos14]
        [--videos 200] [--epochs 8] [SETTING=VALUE ...]

Data: bench_learning's generated data of the preset's benchmark (`ACTIONS`: THUMOS- or
ActivityNet-structured lengths and instances), `--videos` training videos (validation
and test a quarter each), d_x 256. The whole run is what a user runs: `avloc train`
(training, validation every train.eval_every epochs and at the last, checkpoints, logs,
the test split scored with the best checkpoint) and `avloc eval RUN` (the test split again,
with the run's thresholds). The minimal loop: the same dataset, initial weights, Adam,
batches (the preset's sampler and crops) and `training_loss`, then `evaluate_split` on
the test split once; no validation, checkpoint or log. Both on one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import torch

from avloc.cli import main as avloc
from avloc.config import Config, load_config
from avloc.data import load_dataset
from avloc.data.batching import PairBatchSampler, crop_length, load_share
from avloc.losses import training_loss
from avloc.model import build_model
from avloc.runs.layout import read_metrics
from avloc.runs.state import seed_generators
from avloc.scoring.evaluate import evaluate_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import ACTIONS  # noqa: E402  (the benchmarks' generated data)


def settings(args: argparse.Namespace) -> list[str]:
    """The preset's overrides: its benchmark's generated data at --videos, --epochs."""
    return [*ACTIONS[args.preset], f"data.synth_videos={args.videos}",
            f"train.epochs={args.epochs}", "train.progress=false", *args.settings]


def whole_run(args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """Seconds of `avloc train` then `avloc eval` (their output hidden), and the test
    metric of the best checkpoint."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        for argv in (["train", "--config", args.preset, "--out", str(out), *settings(args)],
                     ["eval", str(out)]):
            if avloc(argv):
                raise SystemExit(f"avloc {argv[0]} failed")
    seconds = time.perf_counter() - start
    return seconds, float(read_metrics(out)["test"]["average_mAP"])


def minimal_loop(cfg: Config) -> tuple[float, float]:
    """Seconds of loading the data, training the preset's model for its epochs and testing
    it once, and the test metric (average mAP)."""
    start = time.perf_counter()
    ds = load_dataset(cfg.data, None)
    seed_generators(cfg.train.seed)
    model = build_model(cfg.model, *ds.feature_dims, ds.num_classes, cfg.loss.topk_divisor)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.train.lr,
                             weight_decay=cfg.train.weight_decay)
    videos = ds.splits["train"]
    pairs = cfg.train.similar_pairs if cfg.loss.alpha else 0
    sampler = PairBatchSampler(videos, cfg.train.batch_size, pairs, cfg.train.seed,
                               bucket=cfg.data.batching == "bucket")
    for epoch in range(cfg.train.epochs):
        model.train()
        for groups in sampler.epoch(epoch):
            crop = crop_length(videos, groups, cfg.data.batching, cfg.data.max_seqlen)
            b = load_share(videos, groups[0], cfg.train.seed, epoch, crop)
            out = model(b.audio, b.visual, b.mask)
            loss, _ = training_loss(out.full_precision(), b.mask, b.labels, cfg.loss,
                                    b.casl_classes, b.modality_labels, b.snippet_targets)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
    metrics, _ = evaluate_split(model, ds, "test", cfg)
    return time.perf_counter() - start, float(metrics["average_mAP"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="thumos14", choices=sorted(ACTIONS))
    ap.add_argument("--videos", type=int, default=200, help="training videos")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("settings", nargs="*", help="more SETTING=VALUE for both")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.preset, settings(args))
    loop, loop_map = minimal_loop(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        run, run_map = whole_run(args, Path(tmp) / "run")
    print(f"{args.preset} on generated data ({args.videos} training videos, {args.epochs} "
          f"epochs, validation every {cfg.train.eval_every}), one thread:")
    print(f"  minimal loop (train, test once): {loop:.1f} s (test average mAP {loop_map:.3f})")
    print(f"  whole run (avloc train + avloc eval): {run:.1f} s (test average mAP "
          f"{run_map:.3f}, best validated epoch)")
    print(f"  ratio: {run / loop:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
