"""One training epoch and one test evaluation at THUMOS'14 sizes, CPU time and memory.

    .venv/bin/python benchmarks/bench_thumos.py [--json thumos14.json] [--threads 1 2]
        [--model visual av] [--layout actionformer|wtalc] [--steps N]

The dataset is the real one's shape: the 412 videos of ActionFormer's thumos14.json
(200 Validation -> 180 train + 20 held-out val, 212 Test), each as long as the thumos14
preset makes it (ActionFormer layout: I3D features every 4 frames, every 4th kept, i.e.
16 frames a snippet at the video's fps: 53 to 3134 snippets; --layout wtalc: 0.64 s
snippets, up to 2615), with its real labels, random I3D features (2048-d) and the
preset's settings: d_x 1024, batch 10 with 3 similar pairs, crops of 750 snippets,
all four losses, Adam. Models:

    visual  what THUMOS'14's released features train: visual only, no fusion (no audio)
    av      the paper's 2-stage model, as with 128-d audio features (the generic layout)

Measured per model and thread count: a training epoch (`Trainer.train_step` over the
epoch's 45 batches of 3 similar pairs + 4 more videos; with --steps N, the first N
timed and scaled to the epoch: steps are alike, random crops of 10 videos) and the
evaluation of the test split (`evaluate_split`: whole videos, localization, mAP at
0.1:0.7:0.1), wall and CPU seconds. Once per model, the peak memory allocated above what
existed before (the model, Adam's state, the data) by two training steps padded to 750
snippets (the largest of an epoch) and by the test evaluation
(avloc.util.profiling.cpu_peak_bytes: the profiler's allocation events, exact and independent
of other processes). Features of all videos
are views of one random buffer, so the dataset itself costs 25 MiB, not 1.3 GB; real
features add their own size (4 bytes x 2048 per snippet: 1.2 GiB for all 412 videos).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avloc.config import load_config
from avloc.data.base import Annotation, Dataset, Segment, Video
from avloc.data.checks import multi_hot
from avloc.data.wtalc import split_videos
from avloc.runs.state import seed_generators
from avloc.scoring.evaluate import evaluate_split
from avloc.train import Dist, Trainer
from avloc.util.profiling import cpu_peak_bytes

MiB = 2**20
REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = Path(os.environ.get("AVLOC_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "thumos14/thumos14.json")


def snippets(entry: dict, layout: str) -> int:
    """The video's length as the thumos14 preset loads it."""
    if layout == "wtalc":
        return max(1, round(entry["duration"] / 0.64))
    raw = (round(entry["duration"] * entry["fps"]) - 16) // 4  # one feature every 4 frames
    return math.ceil(raw / 4)  # every 4th kept (data.downsample=4)


def thumos_dataset(path: Path, layout: str, audio_dim: int, cfg) -> Dataset:
    """The real videos, labels and splits with random features (views of one buffer)."""
    database = json.loads(path.read_text())["database"]
    classes = sorted({a["label"] for e in database.values() for a in e["annotations"]})
    lengths = {vid: snippets(e, layout) for vid, e in database.items()}
    rng = np.random.default_rng(0)
    pool_v = rng.standard_normal((max(lengths.values()) + 64, 2048)).astype(np.float32)
    pool_a = rng.standard_normal((len(pool_v), audio_dim)).astype(np.float32)
    items, annotations = [], {}
    for i, (vid, e) in enumerate(database.items()):
        at, t = i % 64, lengths[vid]
        segments = [Segment(*a["segment"], a["label"]) for a in e["annotations"]]
        items.append(Video(vid, pool_a[at:at + t], pool_v[at:at + t], multi_hot(segments,
                                                                                  classes)))
        annotations[vid] = Annotation(vid, e["duration"], segments)
    split = ["train" if e["subset"] == "Validation" else "test" for e in database.values()]
    seconds = 0.64 if layout == "wtalc" else 16 / 30
    return Dataset("thumos14", "action", classes, seconds, split_videos(items, split, cfg.data),
                   annotations)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def steps_of(trainer: Trainer, epoch: int, count: int) -> Callable[[], object]:
    """The first `count` training steps of an epoch (all of it when count is 0)."""
    batches = trainer.sampler.epoch(epoch)
    count = count or len(batches)
    return lambda: [trainer.train_step(epoch, i, batches[i]) for i in range(count)]


def full_crop_steps(trainer: Trainer, epoch: int, count: int) -> Callable[[], object]:
    """`count` steps whose batch is padded to max_seqlen: the largest steps of an epoch."""
    videos, cap = trainer.ds.splits["train"], trainer.cfg.data.max_seqlen
    batches = trainer.sampler.epoch(epoch)
    full = [i for i, b in enumerate(batches) if max(min(videos[j].length, cap) for j in b[0])
            == cap][:count]
    return lambda: [trainer.train_step(epoch, i, batches[i]) for i in full]


def bench_model(name: str, args: argparse.Namespace) -> list[dict]:
    overrides = ["model.modality=visual", "model.stages=0"] if name == "visual" else []
    cfg = load_config("thumos14", [*overrides, "train.progress=false"])
    ds = thumos_dataset(args.json, args.layout, 0 if name == "visual" else 128, cfg)
    seed_generators(cfg.train.seed)  # the initial weights of a real run
    trainer = Trainer(cfg, ds, Path(tempfile.mkdtemp()), torch.device("cpu"), Dist())
    per_epoch = len(trainer.sampler)
    steps = min(args.steps, per_epoch) or per_epoch
    lengths = [v.length for v in ds.splits["test"]]
    print(f"\n{name}: train {len(ds.splits['train'])} videos ({per_epoch} steps of "
          f"{cfg.train.batch_size}, crops of {cfg.data.max_seqlen}; {steps} timed), test "
          f"{len(lengths)} videos of {min(lengths)}-{max(lengths)} snippets, d_x "
          f"{cfg.model.d_x}", flush=True)
    trainer.train_step(0, 0, trainer.sampler.epoch(0)[0])  # warm-up; Adam's state exists
    rows = []
    for epoch, threads in enumerate(args.threads, start=1):
        torch.set_num_threads(threads)
        wall, cpu = timed(steps_of(trainer, epoch, steps))
        train = (wall * per_epoch / steps, cpu * per_epoch / steps)  # steps are alike
        test = timed(lambda: evaluate_split(trainer.model, ds, "test", cfg))
        rows.append({"model": name, "threads": threads, "train": train, "test": test})
        print(f"  {threads} thread(s): epoch {train[0]:.1f} s (CPU {train[1]:.1f} s), "
              f"test evaluation {test[0]:.1f} s (CPU {test[1]:.1f} s)", flush=True)
    train_peak = cpu_peak_bytes(full_crop_steps(trainer, len(args.threads) + 1, 2)) / MiB
    test_peak = cpu_peak_bytes(lambda: evaluate_split(trainer.model, ds, "test", cfg)) / MiB
    print(f"  peak memory: training step {train_peak:.0f} MiB, test evaluation "
          f"{test_peak:.0f} MiB", flush=True)
    for r in rows:
        r["train_peak"], r["test_peak"] = train_peak, test_peak
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="ActionFormer's thumos14.json")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", nargs="+", default=["visual", "av"], choices=["visual", "av"])
    ap.add_argument("--layout", default="actionformer", choices=["actionformer", "wtalc"])
    ap.add_argument("--steps", type=int, default=0,
                    help="time this many steps and scale to the epoch (default 0: all)")
    args = ap.parse_args()
    if not args.json.is_file():
        print(f"{args.json}: not found (give --json or set AVLOC_SHARED_DATA)", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, layout {args.layout}")
    rows = [r for name in args.model for r in bench_model(name, args)]
    print("\n| model | threads | epoch wall (CPU) | step peak | test eval wall (CPU) | "
          "test eval peak |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['threads']} | {r['train'][0]:.1f} s ({r['train'][1]:.1f} s) "
              f"| {r['train_peak']:.0f} MiB | {r['test'][0]:.1f} s ({r['test'][1]:.1f} s) | "
              f"{r['test_peak']:.0f} MiB |")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
