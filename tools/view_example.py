"""Make docs/view.png, the README's picture of `avloc view`, from raw video files end to end:

    .venv/bin/python tools/view_example.py [--work DIR]

1. write 90 generated 12-second videos (tests/testvideo.py): grey scenes where an event is a
   colour (red, green or blue) shown *while* a tone sounds; distractors show a colour
   without sound or sound without colour, so neither modality alone localizes;
2. `avloc extract` them with the diagnostic back-ends (rms audio, mean-RGB visual; no
   network weights, seconds on a CPU) and write the generic layout's annotations.json;
3. `avloc train`, `avloc tune` (validation), `avloc localize` the 15 test videos,
   `avloc view` with their ground truth, and a screenshot of one test video in Chromium.

Needs the video extra and the dev extra (Playwright) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
CLASSES = {"red": ((220, 40, 40), 440.0), "green": ((40, 190, 60), 660.0),
           "blue": ((40, 80, 220), 880.0)}
SUBSETS = ["training"] * 60 + ["validation"] * 15 + ["testing"] * 15
LENGTH = 12.0


def avloc(*args: str) -> None:
    print("$ avloc", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "avloc", *args], check=True)


def make_videos(folder: Path, rng: np.random.Generator) -> dict:
    """The videos and their ground truth (ActivityNet format)."""
    from testvideo import make_test_video

    database = {}
    names = list(CLASSES)
    for i, subset in enumerate(SUBSETS):
        label = names[i % 3]
        colour, hertz = CLASSES[label]
        grey = tuple(int(v) for v in rng.integers(90, 140, 3))
        start = float(rng.integers(0, 7))
        end = start + float(rng.integers(2, 6))
        changes = [(0.0, grey), (start, colour), (end, grey)]
        if rng.uniform() < 0.4:  # a silent flash of another colour elsewhere
            other = CLASSES[names[(i + 1) % 3]][0]
            at = float(rng.choice([t for t in range(11) if not start - 2 < t < end + 1] or [11]))
            changes = sorted(changes + [(at, other), (at + 1.0, grey)])
        make_test_video(folder / f"{subset[:4]}_{i:03d}.mp4", LENGTH, changes, fps=10,
                        size=(160, 96), tone=(start, end, hertz, 0.5), noise=6)
        database[f"{subset[:4]}_{i:03d}"] = {"subset": subset, "duration": LENGTH,
                                             "annotations": [{"segment": [start, end],
                                                              "label": label}]}
    return database


def screenshot(index: Path, vid: str, out: Path, size: tuple[int, int] = (1280, 820),
               seek: bool = True) -> None:
    """A PNG of the report open on `vid` in Chromium; `seek`: play to the second segment
    of the list first (the video file must be found)."""
    import shutil

    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.goto(f"{index.as_uri()}#video={vid}")
        page.wait_for_function(f"document.body.dataset.openVideo === '{vid}'")
        if seek:
            page.wait_for_function("document.getElementById('player').readyState >= 2")
            page.click("#segments tbody tr >> nth=1")  # seek to the predicted segment
            page.evaluate("document.getElementById('detail').scrollTop = 0")
        page.wait_for_timeout(600)
        page.screenshot(path=str(out))
        browser.close()
    shrink_png(out)


def shrink_png(path: Path) -> None:
    """A 256-colour PNG: a fifth of the size, the same to the eye."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
        path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="working folder (default: a new temp folder)")
    ap.add_argument("--video", default="test_081", help="the test video to show")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="avloc-view-example-"))
    videos, data = work / "videos", work / "data"
    videos.mkdir(parents=True)
    database = make_videos(videos, np.random.default_rng(0))
    avloc("extract", str(videos), "--out", str(data / "features"), "--audio-backend", "rms",
          "--visual-backend", "meanrgb", "--no-progress")
    doc = {"task": "action", "snippet_seconds": 1.0, "classes": list(CLASSES),
           "database": database}
    (data / "annotations.json").write_text(json.dumps(doc, indent=1))
    avloc("train", "--config", "demo", "--data", str(data), "--out", str(work / "run"),
          "data.format=generic", "model.d_x=64", "train.epochs=40", "train.batch_size=12",
          "train.eval_every=40", "train.progress=false")  # val is easy: keep the last epoch
    avloc("tune", str(work / "run"), "--data", str(data))
    tests = [videos / f"{v}.mp4" for v, e in database.items() if e["subset"] == "testing"]
    truth = {"database": {v: e for v, e in database.items() if e["subset"] == "testing"}}
    (work / "truth.json").write_text(json.dumps(truth))
    avloc("localize", *map(str, tests), "--checkpoint", str(work / "run"), "--out",
          str(work / "loc"), "--no-progress")
    avloc("score", str(work / "truth.json"), str(work / "loc" / "results.json"),
          "--subset", "testing")
    avloc("view", str(work / "loc"), "--gt", str(work / "truth.json"))
    screenshot(work / "loc" / "view" / "index.html", args.video, REPO / "docs" / "view.png")
    print(f"wrote {REPO / 'docs' / 'view.png'} (work folder {work})")


if __name__ == "__main__":
    main()
