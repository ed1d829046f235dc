"""`avloc extract`: video files -> one feature .npz per video (the generic dataset layout).

extract_video() does one video in memory (what `avloc localize` needs); extract_folder()
does a batch: shard selection, skipping finished videos, a progress bar, and per-video
failures reported and skipped so one bad file never stops a long run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avloc.config.protocols import get_protocol
from avloc.extract.backends import (
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    check_names,
    make_audio_backend,
    make_visual_backend,
)
from avloc.extract.decode import decode_notes, decode_video
from avloc.extract.melspec import SAMPLE_RATE
from avloc.extract.store import (
    FORMAT_VERSION,
    Extracted,
    existing_state,
    setting_differences,
    write_features,
)
from avloc.util.errors import AvlocError, plural
from avloc.util.progress import Heartbeat, eta_text, interactive
from avloc.util.refs import named
from avloc.util.sharding import parse_shard, select_shard, shard_name

if TYPE_CHECKING:  # the back-ends import torch; this module does not need to
    from avloc.extract.audio import AudioBackend
    from avloc.extract.visual import VisualBackend

HEARTBEAT_MINUTES = 5.0  # not on a terminal: a progress line this often
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mkv .webm .avi .mov .flv .mpg .mpeg .wmv .3gp .ts .ogv".split()
)


@dataclass
class ExtractSummary:
    """What a batch did; `failed` holds (video path, one-line reason)."""

    out_dir: Path
    shard: tuple[int, int]  # (zero-based index, count), avloc.util.sharding
    selected: int = 0
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        shard = f" (shard {shard_name(self.shard)})" if self.shard[1] > 1 else ""
        where = f"-> {self.out_dir}" if self.written or self.skipped else "(nothing written)"
        return (
            f"{plural(self.selected, 'video')}{shard}: {len(self.written)} extracted, "
            f"{len(self.skipped)} already done, {len(self.failed)} failed {where}"
        )


def list_videos(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Video files named directly or found (by suffix, not recursively) in folders,
    sorted by video id (file stem), which is also the order sharding counts in."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    found: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found += [
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            ]
        elif item.is_file():
            found.append(item)
        else:
            raise AvlocError(f"{item}: no such video file or folder")
    if not found:
        where = ", ".join(str(i) for i in items)
        raise AvlocError(f"{where}: no video files (by suffix: "
                         f"{' '.join(sorted(VIDEO_SUFFIXES))})")
    by_id: dict[str, Path] = {}
    for path in found:
        if path.stem in by_id and by_id[path.stem].resolve() != path.resolve():
            raise AvlocError(f"{path} and {by_id[path.stem]}: two videos with the id {path.stem}")
        by_id[path.stem] = path
    return [by_id[vid] for vid in sorted(by_id)]


def _settings(audio: str, visual: str, snippet_seconds: float, per: int) -> dict[str, Any]:
    return {"audio_backend": audio, "visual_backend": visual,
            "snippet_seconds": float(snippet_seconds), "frames_per_snippet": int(per)}  # fmt: skip


def _check_grid(snippet_seconds: float, frames_per_snippet: int) -> None:
    if not snippet_seconds > 0:
        raise AvlocError(f"snippet_seconds={snippet_seconds}: must be positive")
    if frames_per_snippet < 1:
        raise AvlocError(f"frames_per_snippet={frames_per_snippet}: must be at least 1")


def extract_video(
    path: str | Path,
    audio_backend: str | AudioBackend = DEFAULT_AUDIO,
    visual_backend: str | VisualBackend = DEFAULT_VISUAL,
    snippet_seconds: float = 1.0,
    frames_per_snippet: int = 1,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One video -> (audio (T, D_a), visual (T, D_v), meta). Back-ends may be names (a
    network that needs a weight file finds it in $AVLOC_WEIGHTS) or back-ends built with
    make_audio_backend / make_visual_backend, which take the weight file and the batch size
    (build them once and reuse them across videos: loading a network costs seconds)."""
    _check_grid(snippet_seconds, frames_per_snippet)
    if isinstance(audio_backend, str):
        audio_backend = make_audio_backend(audio_backend)
    if isinstance(visual_backend, str):
        visual_backend = make_visual_backend(visual_backend)
    video = decode_video(path, snippet_seconds, frames_per_snippet, visual_backend.input_size)
    num = video.num_snippets
    audio = audio_backend.embed(video.audio, num, snippet_seconds)  # (T, D_a)
    visual = visual_backend.embed(video.frames)  # (T, D_v)
    num = min(len(audio), len(visual))  # equal by construction; trim if a back-end disagrees
    meta = _settings(audio_backend.name, visual_backend.name, snippet_seconds, frames_per_snippet)
    meta.update(
        format_version=FORMAT_VERSION, video=Path(path).name, num_snippets=num,
        audio_dim=int(audio.shape[1]), visual_dim=int(visual.shape[1]),
        duration=round(video.duration, 6), fps=round(video.fps, 6),
        has_audio=video.has_audio, sample_rate=SAMPLE_RATE,
        frame_size=visual_backend.input_size,
    )  # fmt: skip
    return audio[:num].astype(np.float32), visual[:num].astype(np.float32), meta


class BackendExtractor:
    """extract_video with back-ends built once: the extractor of a run without --protocol."""

    def __init__(self, backends: tuple[AudioBackend, VisualBackend], snippet_seconds: float,
                 frames_per_snippet: int) -> None:
        self.backends, self.grid = backends, (snippet_seconds, frames_per_snippet)

    def extract(self, path: Path) -> Extracted:
        return Extracted(*extract_video(path, *self.backends, *self.grid))


def protocol_settings(name: str) -> dict[str, Any]:
    """What a protocol's files record and must match to count as done (store.SETTING_KEYS)."""
    return {"protocol": name, "snippet_seconds": get_protocol(name).snippet_seconds}


def extract_folder(
    inputs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    audio_backend: str = DEFAULT_AUDIO,
    visual_backend: str = DEFAULT_VISUAL,
    snippet_seconds: float = 1.0,
    frames_per_snippet: int = 1,
    *,
    protocol: str | None = None,
    weights_dir: str | Path | None = None,
    audio_weights: str | Path | None = None,
    visual_weights: str | Path | None = None,
    shard: str | None = None,
    overwrite: bool = False,
    batch_size: int = 32,
    progress: bool = True,
) -> ExtractSummary:
    """Extract every video of `inputs` (of shard "I/N", counted from 1: avloc.util.sharding) into
    out_dir/<video id>.npz, with the back-ends and snippet grid given, or with a release's
    `protocol` (config.protocols; its weight files in weights_dir, else $AVLOC_WEIGHTS)."""
    if protocol:
        settings = protocol_settings(protocol)
    else:
        _check_grid(snippet_seconds, frames_per_snippet)
        check_names(audio_backend, visual_backend, audio_weights, visual_weights)
        settings = _settings(audio_backend, visual_backend, snippet_seconds, frames_per_snippet)
    part = parse_shard(shard)
    videos = select_shard(list_videos(inputs), part)
    out = Path(out_dir)  # made with the first file written: a failed batch leaves none
    summary = ExtractSummary(out, part, selected=len(videos))
    todo = _todo(videos, out, settings, overwrite, summary)
    if not todo:
        return summary
    # networks are built only when there is work; a missing weight file stops here
    if protocol:
        extractor = named(get_protocol(protocol).extractor)(weights_dir, batch_size)
    else:
        backends = (make_audio_backend(audio_backend, audio_weights, weights_dir),
                    make_visual_backend(visual_backend, visual_weights, batch_size, weights_dir))
        extractor = BackendExtractor(backends, snippet_seconds, frames_per_snippet)
    _run(todo, out, extractor, summary, progress)
    return summary


def _todo(videos: list[Path], out: Path, settings: dict[str, Any], overwrite: bool,
          summary: ExtractSummary) -> list[Path]:
    """The videos still to extract; the done ones are counted as skipped, and those whose
    file was made with other settings as failed (each said why, on stderr)."""
    todo = []
    for path in videos:
        target = out / f"{path.stem}.npz"
        state = "missing" if overwrite else existing_state(target, settings)
        if state == "done":
            summary.skipped.append(path.stem)
        elif state == "stale":
            reason = (f"{target} was extracted with other settings: "
                      f"{setting_differences(target, settings)}; --overwrite re-extracts it, "
                      "or extract into another --out")
            summary.failed.append((str(path), reason))
            print(f"failed: {path}: {reason}", file=sys.stderr, flush=True)
        else:
            todo.append(path)
    if summary.skipped:  # one line, not one per video: a resumed batch may skip thousands
        print(f"skipped {len(summary.skipped)} videos already extracted with these settings "
              f"into {out} ({_some(summary.skipped)}; --overwrite re-extracts them)",
              file=sys.stderr, flush=True)
    return todo


def _some(names: list[str], most: int = 3) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def _run(todo: list[Path], out: Path, extractor: Any, summary: ExtractSummary,
         progress: bool) -> None:
    from tqdm import tqdm

    bar = tqdm(todo, desc="extract", unit="video", disable=not (progress and interactive()),
               file=sys.stderr)
    beat, start = Heartbeat(HEARTBEAT_MINUTES if progress and bar.disable else 0), time.monotonic()
    for done, path in enumerate(bar):
        if beat.due():  # a log file gets a line now and then instead of a bar
            print(f"extract: {done}/{len(todo)} videos, {len(summary.failed)} failed, "
                  f"{eta_text(done, len(todo), time.monotonic() - start)}", file=sys.stderr,
                  flush=True)
        try:
            got = extractor.extract(path)
            out.mkdir(parents=True, exist_ok=True)
            write_features(out / f"{path.stem}.npz", got.audio, got.visual, got.meta, got.streams)
            summary.written.append(path.stem)
            for note in decode_notes(got.meta, float(got.meta["snippet_seconds"])):
                tqdm.write(f"avloc: note: {path}: {note}", file=sys.stderr)
        except Exception as err:  # noqa: BLE001 - one bad video must not stop the batch
            reason = str(err)
            if not isinstance(err, AvlocError):
                reason = f"{path}: {type(err).__name__}: {err}"
            summary.failed.append((str(path), reason))
            tqdm.write(f"failed: {reason}", file=sys.stderr)
