"""Which decoded frame of a video each of the LLP release's JPEGs is (nearest by mean
squared pixel difference): the evidence tests/test_release_grid.py checks avloc's
frame sampling against.

    python tools/llp_release_frames.py FRAME_DIR VIDEO > tests/data/llp_release_frames_ID.json

FRAME_DIR: the release's data/LLP_dataset/frame/<id>/ (000001.jpg ...).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np
from PIL import Image


def main(frame_dir: str, video: str) -> None:
    with av.open(video) as container:
        frames = np.stack([f.to_ndarray(format="rgb24").astype(np.float32)
                           for f in container.decode(container.streams.video[0])])
    nearest = []
    for jpeg in sorted(Path(frame_dir).glob("*.jpg")):
        image = np.asarray(Image.open(jpeg).convert("RGB"), np.float32)
        nearest.append(int(((frames - image) ** 2).mean(axis=(1, 2, 3)).argmin()))
    json.dump({"video": Path(video).name, "jpeg_frames": nearest}, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:3])
