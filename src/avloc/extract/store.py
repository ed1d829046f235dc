"""One `.npz` per video: `audio` (T, D_a) and `visual` (T, D_v) float32, and `meta`, a JSON
string (a 0-d unicode array, so np.load needs no pickle) recording how they were made.
A release protocol's file also keeps the release's own arrays as `stream_<name>` (e.g.
AVE's pool5 maps), from which `--layout release` writes the release's files.

Files are written to a temporary name in the same folder and renamed over the target
(os.replace is atomic on POSIX), so a killed run never leaves a truncated .npz behind.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avloc.util.errors import AvlocError
from avloc.util.io import atomic_open

FORMAT_VERSION = 1
# Settings that must match for an existing file to count as already extracted.
# (a protocol's file has no back-ends; a back-end's file no protocol: both read as None)
SETTING_KEYS = ("protocol", "audio_backend", "visual_backend", "snippet_seconds",
                "frames_per_snippet")
STREAM_PREFIX = "stream_"


@dataclass
class Extracted:
    """One video's features, as every extractor (back-ends or a release protocol) returns
    them and write_features stores them."""

    audio: np.ndarray  # (T, D_a)
    visual: np.ndarray  # (T, D_v)
    meta: dict[str, Any]  # how they were made: the settings, the video's facts
    streams: dict[str, np.ndarray] = field(default_factory=dict)  # the release's own arrays


def write_features(path: Path, audio: np.ndarray, visual: np.ndarray, meta: dict,
                   streams: dict[str, np.ndarray] | None = None) -> None:
    """Write atomically (`avloc.util.io.atomic_open`): a kill never leaves a broken .npz."""
    extra = {STREAM_PREFIX + k: np.asarray(v, np.float32) for k, v in (streams or {}).items()}
    with atomic_open(path, "wb") as handle:
        np.savez(
            handle,
            audio=np.asarray(audio, np.float32),
            visual=np.asarray(visual, np.float32),
            meta=np.array(json.dumps(meta, sort_keys=True)),
            **extra,
        )


def read_streams(path: str | Path) -> dict[str, np.ndarray]:
    """The release arrays a protocol's file keeps ({} for a back-end's file)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k[len(STREAM_PREFIX):]: data[k] for k in data.files
                    if k.startswith(STREAM_PREFIX)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise AvlocError(f"{path}: not a readable feature file ({err})") from err


def read_features(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(audio (T, D_a), visual (T, D_v), meta); a broken file is a one-line AvlocError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            audio, visual = data["audio"], data["visual"]
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise AvlocError(f"{path}: not a readable feature file ({err})") from err
    if audio.ndim != 2 or visual.ndim != 2 or audio.shape[0] != visual.shape[0]:
        raise AvlocError(
            f"{path}: audio {audio.shape} and visual {visual.shape} are not (T, D) with one T"
        )
    return audio, visual, meta


def setting_differences(path: Path, settings: dict[str, Any]) -> str:
    """How an existing file's recorded settings differ from `settings`, e.g.
    "snippet_seconds 1.0 (now 0.5)"; empty when they agree or the file does not load."""
    try:
        _, _, meta = read_features(path)
    except AvlocError:
        return ""
    return ", ".join(f"{key} {meta.get(key)} (now {settings.get(key)})" for key in SETTING_KEYS
                     if meta.get(key) != settings.get(key))


def existing_state(path: Path, settings: dict[str, Any]) -> str:
    """'missing' (absent or unreadable: extract it), 'done' (same settings: skip it) or
    'stale' (readable, but made with other back-ends or another snippet grid)."""
    if not path.is_file():
        return "missing"
    try:
        _, _, meta = read_features(path)
    except AvlocError:
        return "missing"
    same = all(meta.get(key) == settings.get(key) for key in SETTING_KEYS)
    return "done" if same else "stale"
