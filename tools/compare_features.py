"""Per-snippet cosine similarity between one stream of avloc's features of a release video
(`avloc extract --protocol P`, a .npz keeping the release's arrays) and the release's own
file of the same video: how close avloc's reproduction comes, for users who have both.

    python tools/compare_features.py OUT/features/<id>.npz res152 LLP/feats/res152/<id>.npy
    python tools/compare_features.py OUT/features/<id>.npz visual AVE/visual_feature.h5 --row R

STREAM: a stream of the .npz (ave: audio, visual; llp: vggish, res152, r2plus1d_18).
RELEASE: a .npy, or an .h5 whose dataset `avadataset` (AVE) is read at row --row (the
video's line in Annotations.txt, from 0). Rows are compared in order (each flattened, so
AVE's 7x7x512 maps compare whole); a length difference is reported and the shorter taken.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avloc.extract.store import read_streams


def cosines(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """(T,) cosine of each row pair, rows flattened; 1.0 for two all-zero rows."""
    count = min(len(mine), len(theirs))
    a = mine[:count].reshape(count, -1).astype(np.float64)
    b = theirs[:count].reshape(count, -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0),
                    np.all(a == b, axis=1).astype(np.float64))


def release_array(path: Path, row: int | None) -> np.ndarray:
    if path.suffix == ".h5":
        import h5py

        if row is None:
            raise SystemExit(f"{path}: an .h5 release file needs --row (the video's row)")
        with h5py.File(path, "r") as handle:
            return np.asarray(handle["avadataset"][row])
    return np.load(path, allow_pickle=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mine", type=Path, help="avloc's .npz of the video")
    parser.add_argument("stream", help="which of its release arrays")
    parser.add_argument("release", type=Path, help="the release's .npy or .h5")
    parser.add_argument("--row", type=int, help="row of an .h5 release file")
    args = parser.parse_args()
    streams = read_streams(args.mine)
    if args.stream not in streams:
        raise SystemExit(f"{args.mine}: no stream {args.stream!r} (has {', '.join(streams)})")
    mine, theirs = streams[args.stream], release_array(args.release, args.row)
    if len(mine) != len(theirs):
        print(f"lengths differ: avloc {len(mine)}, release {len(theirs)}; comparing the first "
              f"{min(len(mine), len(theirs))}")
    values = cosines(mine, theirs)
    print(" ".join(f"{v:.3f}" for v in values))
    print(f"mean cosine {values.mean():.4f}, min {values.min():.4f} over {len(values)} rows")


if __name__ == "__main__":
    main()
