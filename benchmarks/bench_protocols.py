"""Cost of the release protocols (`avloc extract --protocol P`): CPU seconds per minute of
video, per protocol, on CPU, with randomly initialised networks (speed does not depend on
the values).

    .venv/bin/python benchmarks/bench_protocols.py [--protocols ave llp] [--long-seconds 30]
        [--repeats 2] [--threads 1] [--i3d-parts]

Inputs: the real 10 s AudioSet clip (../shared/data/video/BjCEufrlXm4.mp4, if present) and a
generated 320x240 30 fps video of --long-seconds with a tone and noisy frames. Each run is
one whole `extract` of the protocol's extractor (decoding, frames, audio, networks); wall
and CPU times are each the minimum over --repeats runs; per-minute figures use CPU time.
Prints a markdown table for docs/benchmarks.md. The I3D protocols (wtalc, actionformer)
cost about 100 CPU minutes per video-minute, nearly all TV-L1 flow: name them in
--protocols to run them whole; --i3d-parts times their two costs apart on the real clip
(TV-L1 per frame pair, I3D per 16-frame window) and derives the per-minute figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from avloc.config.protocols import PROTOCOLS
from avloc.extract.decode import video_seconds
from avloc.util.refs import named

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_extract import REAL, best_of  # noqa: E402
from random_weights import write_random_weights  # noqa: E402
from testvideo import make_test_video  # noqa: E402


def long_video(folder: Path, seconds: float) -> Path:
    return make_test_video(folder / "long.mp4", seconds, ((0.0, (90, 120, 200)),), fps=30,
                           size=(320, 240), tone=(1.0, seconds - 1.0, 440.0, 0.3), noise=40.0)


def i3d_parts(weights: Path, repeats: int, pairs: int = 8) -> None:
    """CPU s of TV-L1 per 340x256 frame pair and of I3D (RGB + flow) per window, on the real
    clip's frames as the protocols load them, and what they make a minute of video cost."""
    import numpy as np

    from avloc.extract.flow import Tvl1
    from avloc.extract.protocol_i3d import ActionformerExtractor, load_frame
    from avloc.extract.release_decode import picked_frames

    loaded = list(picked_frames(REAL, np.arange(pairs + 1), load_frame))  # (rgb, grey) each
    flow = Tvl1()
    greys = [grey for _, grey in loaded]
    _, cpu = best_of(repeats, lambda: [flow(a, b) for a, b in zip(greys, greys[1:], strict=False)])
    per_pair = cpu / pairs
    extractor = ActionformerExtractor(weights)
    clips = np.zeros((2, 16, 224, 224, 5), np.uint8)
    with torch.inference_mode():
        _, cpu = best_of(repeats, lambda: extractor.embed(clips))
    per_window = cpu / len(clips)
    print("\n| part | CPU s each | wtalc (25 fps, a window per 16) | actionformer (30 fps, a "
          "window per 4) |\n|---|---|---|---|")
    print(f"| TV-L1 flow, one 340x256 frame pair | {per_pair:.2f} | {per_pair * 1500:.0f} s/min "
          f"| {per_pair * 1800:.0f} s/min |")
    print(f"| I3D RGB + flow, one 16-frame window | {per_window:.2f} | "
          f"{per_window * 1500 / 16:.0f} s/min | {per_window * 1800 / 4:.0f} s/min |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", nargs="*", default=["ave", "llp"], choices=PROTOCOLS)
    parser.add_argument("--i3d-parts", action="store_true", help="TV-L1 and I3D timed apart")
    parser.add_argument("--long-seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s)\n")
    print("| protocol | video | minutes | wall s | CPU s | CPU s per video-minute |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_random_weights(folder / "weights", keras=False, small_classifier=True)
        videos = ([REAL] if REAL.is_file() else []) + [long_video(folder, args.long_seconds)]
        for name in args.protocols:
            extractor = named(PROTOCOLS[name].extractor)(folder / "weights")
            for video in videos:
                minutes = video_seconds(video) / 60
                wall, cpu = best_of(args.repeats, lambda v=video, e=extractor: e.extract(v))
                print(f"| {name} | {video.name} | {minutes:.2f} | {wall:.1f} | {cpu:.1f} | "
                      f"{cpu / minutes:.0f} |", flush=True)
        if args.i3d_parts and REAL.is_file():
            i3d_parts(folder / "weights", args.repeats)


if __name__ == "__main__":
    main()
