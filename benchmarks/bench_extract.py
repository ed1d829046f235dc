"""Feature-extraction speed on CPU, in seconds of work per minute of video, per stage.

    .venv/bin/python benchmarks/bench_extract.py [--video PATH] [--long-seconds 60]
        [--snippet-seconds 1.0 0.64] [--repeats 3] [--threads N]

Inputs: the real 10 s AudioSet clip (../shared/data/video/BjCEufrlXm4.mp4, if present)
and a generated 320x240 30 fps video of --long-seconds with a tone and noisy frames
(noise makes H.264 decoding do real work). Each video is decoded once per grid; the
back-ends then run on the decoded snippets: yamnet and efficientnet_lite0 with their real
weights, vggish and resnet152 with random weights of the right architecture (speed does
not depend on the values). Wall and CPU times are each the minimum over --repeats runs;
per-minute figures use CPU time. Prints markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from avloc.extract.backends import make_audio_backend, make_visual_backend
from avloc.extract.decode import decode_video, video_seconds
from avloc.extract.nets import VGGish, resnet152

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from testvideo import make_test_video  # noqa: E402 (a test helper: videos of known content)

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "BjCEufrlXm4.mp4"


def best_of(repeats: int, call: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds, each the minimum over repeats. CPU time (all threads of this
    process) is the stable measure on a shared machine; wall time includes waiting."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def random_weights(folder: Path) -> tuple[Path, Path]:
    """Random VGGish and ResNet-152 state dicts in the expected layouts."""
    vggish, resnet = folder / "vggish.pth", folder / "resnet152.pth"
    torch.save(VGGish().state_dict(), vggish)
    torch.save(resnet152().state_dict(), resnet)
    return vggish, resnet


def bench_video(path: Path, grid: float, backends: dict, repeats: int) -> list:
    minutes = video_seconds(path) / 60
    video = decode_video(path, grid)
    rows = [("decode (PyAV, audio + frames)", best_of(repeats, lambda: decode_video(path, grid)))]
    for name, backend in backends.items():
        if hasattr(backend, "input_size"):
            run = lambda b=backend: b.embed(video.frames)  # noqa: E731
        else:
            run = lambda b=backend: b.embed(video.audio, video.num_snippets, grid)  # noqa: E731
        rows.append((name, best_of(repeats, run)))
    return [(label, wall, cpu, cpu / minutes) for label, (wall, cpu) in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=REAL if REAL.exists() else None)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--snippet-seconds", type=float, nargs="+", default=[1.0, 0.64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        vggish, resnet = random_weights(folder)
        load: dict[str, float] = {}
        backends = {}
        for label, make in [
            ("audio yamnet", lambda: make_audio_backend("yamnet")),
            ("audio vggish (random weights)", lambda: make_audio_backend("vggish", vggish)),
            ("visual efficientnet_lite0", lambda: make_visual_backend("efficientnet_lite0")),
            ("visual resnet152 (random weights)", lambda: make_visual_backend("resnet152", resnet)),
        ]:
            start = time.perf_counter()
            backends[label] = make()
            load[label] = time.perf_counter() - start
        long = make_test_video(folder / "long.mp4", args.long_seconds, size=(320, 240), fps=30,
                               tone=(5.0, 25.0, 440.0, 0.3), noise=12.0)  # fmt: skip
        videos = [(long, f"generated {args.long_seconds:g} s 320x240 30 fps")]
        if args.video is not None:
            videos.insert(0, (args.video, f"{args.video.name} (real, 320x240 ~30 fps)"))
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"torch {torch.__version__} threads {torch.get_num_threads()}, no GPU")  # fmt: skip
        print("\n| back-end | load (s) |\n|---|---|")
        for label, seconds in load.items():
            print(f"| {label} | {seconds:.2f} |")
        for grid in args.snippet_seconds:
            for path, title in videos:
                rows = bench_video(path, grid, backends, args.repeats)
                print(f"\n{title}, snippets of {grid:g} s (1 frame per snippet)\n")
                print("| stage | wall s | CPU s | CPU s per minute of video |\n|---|---|---|---|")
                for label, wall, cpu, per_minute in rows:
                    print(f"| {label} | {wall:.2f} | {cpu:.2f} | {per_minute:.2f} |")


if __name__ == "__main__":
    main()
