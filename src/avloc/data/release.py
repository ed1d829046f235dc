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
- wtalc: OUT/<Prefix>-I3D-JOINTFeatures.npy, object array of (T, 2048), and
  OUT/<Prefix>-VGGish-Features.npy of (T, 128), one entry per video of the annotation
  files' videoname.npy when OUT has them (a video file named by its YouTube id, its
  videoname, or v_<id>), else per video in id order, listed in OUT/videos.txt; Prefix is
  Thumos14reduced when OUT holds Thumos14reduced-Annotations/, else ActivityNet1.2. Written
  once every video they need is extracted, atomically, as AVE's.
- actionformer: OUT/i3d_features/<video>.npy (T, 2048) float32, per video as it is
  extracted (ActionFormer's THUMOS'14 folder; the JSON is the user's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avloc.data.ave import FEATURE_KEY, read_annotations
from avloc.data.llp import RELEASE_DIRS
from avloc.data.wtalc import WtalcLayout, annotation_dir
from avloc.extract.run import ExtractSummary, extract_folder, list_videos
from avloc.extract.store import read_features, read_streams
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


def write_per_video(out: Path, done: list[str], folders: dict[str, str],
                    arrays: Callable[[Path], dict[str, np.ndarray]] = read_streams
                    ) -> list[Path]:
    """OUT/<folder>/<video>.npy of each extracted video: {array name: folder}, the arrays
    of its .npz by `arrays` (default: the streams it keeps)."""
    written = []
    for vid in done:
        streams = arrays(out / FEATURE_DIR / f"{vid}.npz")
        for name, folder in folders.items():
            path = out / folder / f"{vid}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb") as handle:
                np.save(handle, streams[name].astype(np.float32))
            written.append(path)
    return written


def write_llp(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """feats/<stream>/<clip>.npy of each extracted clip."""
    folders = {"vggish" if name == "audio" else name: f"feats/{folder}"
               for name, folder in RELEASE_DIRS.items()}
    return write_per_video(out, done, folders)


def write_actionformer(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """i3d_features/<video>.npy of each extracted video."""
    from avloc.data.thumos import FEATURE_DIRS

    def visual(path: Path) -> dict[str, np.ndarray]:  # the .npz's visual is the release's
        return {"visual": read_features(path)[1]}

    return write_per_video(out, done, {"visual": FEATURE_DIRS[0]}, visual)


def missing_rows(rows: list[str], done: list[str]) -> bool:
    """Whether some row's video is not extracted yet (then it says so)."""
    missing = sorted(set(rows) - set(done))
    if missing:  # other shards still to run, or failed videos: the .npz files stay
        print(f"release files not written yet: {len(missing)} of {len(set(rows))} videos not "
              f"extracted ({missing[0]}, ...); they are written when all are")
    return bool(missing)


def wtalc_layout(out: Path) -> WtalcLayout:
    from avloc.data.anet import ANET12
    from avloc.data.thumos import THUMOS_WTALC

    return THUMOS_WTALC if (out / THUMOS_WTALC.annotation_dir).is_dir() else ANET12


def wtalc_rows(out: Path, layout: WtalcLayout, ids: list[str]) -> list[str] | None:
    """The video id of each entry, in videoname.npy's order, each the first of its id,
    videoname or v_<id> among `ids`; None when OUT has no annotation files."""
    from avloc.data.wtalc import read_annotations

    if not (annotation_dir(out, layout) / "videoname.npy").is_file():
        return None
    _, videos = read_annotations(out, layout, 0.64)
    have = set(ids)
    return [next((n for n in (v.vid, v.name, f"v_{v.vid}") if n in have), v.vid)
            for v in videos]


def write_object_array(path: Path, arrays: list[np.ndarray]) -> None:
    """An object array of per-video float32 arrays, as W-TALC ships its features."""
    packed = np.empty(len(arrays), dtype=object)
    for index, array in enumerate(arrays):
        packed[index] = array.astype(np.float32)
    with atomic_open(path, "wb") as handle:
        np.save(handle, packed, allow_pickle=True)


def write_wtalc(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """The JOINT and VGGish object arrays once every entry's video is extracted."""
    layout = wtalc_layout(out)
    rows = wtalc_rows(out, layout, ids)
    if missing_rows(rows or ids, done):
        return []
    feats = [read_features(out / FEATURE_DIR / f"{vid}.npz") for vid in rows or ids]
    paths = [out / layout.visual_file, out / layout.audio_file]
    write_object_array(paths[0], [visual for _, visual, _ in feats])  # (T, 2048) each
    write_object_array(paths[1], [audio for audio, _, _ in feats])  # (T, 128) each
    if rows is None:
        write_text_atomic(out / "videos.txt", "".join(f"{vid}\n" for vid in ids))
        paths.append(out / "videos.txt")
    return paths


def ave_rows(out: Path, ids: list[str]) -> list[str]:
    """The video of each h5 row: Annotations.txt's rows when OUT has one, else `ids`."""
    path = out / "Annotations.txt"
    return [row.video_id for row in read_annotations(path)] if path.is_file() else ids


def write_ave(out: Path, ids: list[str], done: list[str]) -> list[Path]:
    """audio_feature.h5 and visual_feature.h5 once every row's video is extracted."""
    rows = ave_rows(out, ids)
    if missing_rows(rows, done):
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


WRITERS = {"ave": write_ave, "llp": write_llp, "wtalc": write_wtalc,
           "actionformer": write_actionformer}
