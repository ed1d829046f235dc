"""`avloc extract --protocol P --layout release`: a release's own files, which the AVE and
LLP readers (data.ave, data.llp) take unchanged, written from the protocol's .npz files.

The .npz files (OUT/features/<video>.npz, each keeping the release's arrays as streams) are
the cache: sharded and resumed runs extract into them, and the release files are written
from whatever is finished:
- ave: OUT/audio_feature.h5 (N, T, 128) and OUT/visual_feature.h5 (N, T, 7, 7, 512),
  dataset "avadataset", one row per line of OUT/Annotations.txt when it is there (a video
  with two events fills two rows, as in the release), else per video in id order, listed
  in OUT/videos.txt. Written once every video they need is extracted (the last shard to
  finish writes them), atomically.
- llp: OUT/feats/vggish/<clip>.npy (T, 128), feats/res152/<clip>.npy (8 T, 2048) and
  feats/r2plus1d_18/<clip>.npy (T, 512), per clip as it is extracted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avloc.data.ave import FEATURE_KEY, read_annotations
from avloc.data.llp import RELEASE_DIRS
from avloc.extract.run import ExtractSummary, extract_folder, list_videos
from avloc.extract.store import read_streams
from avloc.util.errors import AvlocError
from avloc.util.io import atomic_open, write_text_atomic

FEATURE_DIR = "features"  # OUT/features: the protocol's .npz files, the cache
AVE_FILES = {"audio": "audio_feature.h5", "visual": "visual_feature.h5"}


def extract_release(inputs: str | Path | Iterable[str | Path], out_dir: str | Path,
                    protocol: str, **options: Any) -> tuple[ExtractSummary, list[Path]]:
    """extract_folder(inputs, OUT/features, protocol=protocol, ...), then the release's files
    of every video extracted so far; returns the summary and the files written."""
    if protocol not in WRITERS:
        raise AvlocError(f"--layout release: protocol {protocol} has no release layout "
                         f"(those with one: {', '.join(WRITERS)})")
    out = Path(out_dir)
    summary = extract_folder(inputs, out / FEATURE_DIR, protocol=protocol, **options)
    ids = [p.stem for p in list_videos(inputs)]  # every shard's, sorted
    done = [vid for vid in ids if (out / FEATURE_DIR / f"{vid}.npz").is_file()]
    return summary, WRITERS[protocol](out, ids, done)


def write_llp(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """feats/<stream>/<clip>.npy of each extracted clip."""
    written = []
    for vid in done:
        streams = read_streams(out / FEATURE_DIR / f"{vid}.npz")
        for name, folder in RELEASE_DIRS.items():
            stream = streams["vggish" if name == "audio" else name]
            path = out / "feats" / folder / f"{vid}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb") as handle:
                np.save(handle, stream.astype(np.float32))
            written.append(path)
    return written


def ave_rows(out: Path, ids: list[str]) -> list[str]:
    """The video of each h5 row: Annotations.txt's rows when OUT has one, else `ids`."""
    path = out / "Annotations.txt"
    return [row.video_id for row in read_annotations(path)] if path.is_file() else ids


def write_ave(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """audio_feature.h5 and visual_feature.h5 once every row's video is extracted."""
    rows = ave_rows(out, ids)
    missing = sorted(set(rows) - set(done))
    if missing:  # other shards still to run, or failed videos: the .npz files stay
        print(f"release files not written yet: {len(missing)} of {len(set(rows))} videos not "
              f"extracted ({missing[0]}, ...); they are written when all are")
        return []
    first = read_streams(out / FEATURE_DIR / f"{rows[0]}.npz")
    paths = [out / AVE_FILES[name] for name in AVE_FILES]
    with atomic_open(paths[0], "w+b") as audio_file, atomic_open(paths[1], "w+b") as visual_file:
        with h5py.File(audio_file, "w") as audio_h5, h5py.File(visual_file, "w") as visual_h5:
            sets = {name: h5.create_dataset(FEATURE_KEY, (len(rows), *first[name].shape),
                                            dtype="float32")
                    for name, h5 in (("audio", audio_h5), ("visual", visual_h5))}
            for index, vid in enumerate(rows):
                streams = read_streams(out / FEATURE_DIR / f"{vid}.npz")
                for name, dataset in sets.items():
                    if streams[name].shape != dataset.shape[1:]:
                        raise AvlocError(f"{out / FEATURE_DIR / vid}.npz: {name} "
                                         f"{streams[name].shape}, but AVE's h5 layout holds one "
                                         f"length and {rows[0]} has {dataset.shape[1:]}")
                    dataset[index] = streams[name]
    if not (out / "Annotations.txt").is_file():
        write_text_atomic(out / "videos.txt", "".join(f"{vid}\n" for vid in rows))
        paths.append(out / "videos.txt")
    return paths


WRITERS = {"ave": write_ave, "llp": write_llp}
