"""`avloc localize`: from raw video files (or their extracted features) to timed segments.

The checkpoint records how its training features were made (`avloc extract` back-ends and
snippet grid, or a release protocol, config.protocols; see `Dataset.extractors`); videos are
extracted the same way, run through the model, and turned into segments: runs of argmax
classes for event models (AVE-style), the W-TALC two-stage thresholding for action models
(with the run's tuned settings when `avloc tune` wrote them, avloc.scoring.tune), audio and
visual event tracks for parsing models (LLP-style; each segment then has a "modality", and
the thresholds are those the run tuned on validation).

`localize_video` does one video in memory. `localize_batch` does any number into an
output folder (avloc.scoring.results): features cached by `avloc extract`'s own code and rules
(extract_folder), one CAS file per video, then OUT/results.json made from all of them.
Every file is written atomically and a video is done once its CAS file exists, so a
killed batch, run again, redoes nothing that was finished.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config.protocols import PROTOCOLS
from avloc.data import protocol_grid
from avloc.data.base import Timing, Video
from avloc.extract.store import Extracted
from avloc.scoring.predict import VideoPrediction, predict
from avloc.scoring.results import (
    CAS_DIR,
    CasRecord,
    cas_path,
    cas_state,
    read_cas,
    record_from_prediction,
    segments_of,
    write_cas,
    write_results,
)
from avloc.scoring.tuned_model import TunedModel, load_tuned_model
from avloc.util.errors import AvlocError, plural
from avloc.util.progress import interactive
from avloc.util.refs import named

FEATURE_DIR = "features"  # OUT/features: the extraction cache unless --features DIR
CHUNK = 16  # videos loaded at once; predict batches them by length within its budgets


@dataclass
class Localization:
    vid: str
    prediction: VideoPrediction
    segments: list[dict[str, Any]]  # [{label, score, segment: [start, end] seconds}]
    snippet_seconds: float
    duration: float
    classes: list[str]
    task: str = "event"  # the checkpoint's: event | action | parsing


def recorded_extractors(ckpt: dict[str, Any], source: str) -> dict[str, Any]:
    """How the checkpoint's training features were made: a release protocol
    (config.protocols) or `avloc extract` back-ends, with the snippet grid."""
    ext = ckpt.get("extractors")
    if ext and ext.get("protocol"):
        return ext
    if not ext or "audio_backend" not in ext or "visual_backend" not in ext:
        raise AvlocError(
            f"{source}: the checkpoint records no feature extractors: its features were made "
            "neither by `avloc extract` nor by a release protocol it knows (setting "
            f"data.feature_protocol: {', '.join(PROTOCOLS)}); train on features one of them "
            "makes to localize raw videos"
        )
    return ext


def check_requested(
    ext: dict[str, Any], audio: str | None, visual: str | None, source: str
) -> None:
    """A back-end the user names must be the one the checkpoint was trained on."""
    for kind, asked in (("audio", audio), ("visual", visual)):
        trained = ext.get(f"{kind}_backend")
        if asked and ext.get("protocol"):
            raise AvlocError(f"{source}: trained on features of protocol {ext['protocol']}, "
                             f"which fixes its networks: --{kind}-backend does not apply")
        if asked and asked != trained:
            raise AvlocError(
                f"{source}: trained on {kind} features from {trained!r}, not {asked!r}; "
                f"features from another network mean nothing to this model"
            )


def extract_one(video: str | Path, ext: dict[str, Any], audio_weights: Any = None,
                visual_weights: Any = None, weights_dir: Any = None) -> Extracted:
    """One video's features made as the checkpoint's training features were (`ext`)."""
    from avloc.extract import extract_video, make_audio_backend, make_visual_backend

    if ext.get("protocol"):
        extractor = named(PROTOCOLS[ext["protocol"]].extractor)(weights_dir)
        return extractor.extract(Path(video))
    return Extracted(*extract_video(
        video, make_audio_backend(ext["audio_backend"], audio_weights, weights_dir),
        make_visual_backend(ext["visual_backend"], visual_weights, weights_dir=weights_dir),
        float(ext["snippet_seconds"]), int(ext.get("frames_per_snippet", 1)),
    ))  # fmt: skip


def localize_video(
    video: str | Path, checkpoint: str | Path, *, audio_backend: str | None = None,
    visual_backend: str | None = None, audio_weights: str | Path | None = None,
    visual_weights: str | Path | None = None, weights_dir: str | Path | None = None,
    untuned: bool = False,
) -> Localization:
    """One video, in memory: nothing is written."""
    m = load_tuned_model(checkpoint, untuned)
    ext = recorded_extractors(m.ckpt, str(m.path))
    check_requested(ext, audio_backend, visual_backend, str(m.path))
    got = extract_one(video, ext, audio_weights, visual_weights, weights_dir)
    audio, visual = got.audio, got.visual  # (T, D_a), (T, D_v)
    dims = [audio.shape[1], visual.shape[1]]
    if dims != list(m.ckpt["feature_dims"]):
        raise AvlocError(f"{video}: extracted feature dims {dims} differ from the checkpoint's "
                         f"{m.ckpt['feature_dims']}")
    vid = Path(video).stem
    seconds = float(ext["snippet_seconds"])
    duration = float(got.meta.get("duration", len(audio) * seconds))
    audio, visual, timing = protocol_grid(audio, visual, got.meta, ext, seconds)
    item = Video(vid, audio, visual, np.zeros(len(m.ckpt["classes"]), np.float32))
    rec = record_from_prediction(predict(m.model, [item])[0], m.ckpt["classes"],
                                 timing, duration, {})
    return localization(rec, m)


def localization(rec: CasRecord, m: TunedModel) -> Localization:
    """A video's outputs and segments as `format_segments` and `timeline_figure` take them."""
    pred = VideoPrediction(rec.vid, rec.p, rec.mu, rec.audio, rec.visual, rec.video)
    return Localization(rec.vid, pred, segments_of(rec, m.ckpt["task"], m.cfg),
                        rec.timing.seconds, rec.duration, rec.classes, m.ckpt["task"])


@dataclass
class BatchSummary:
    """What a batch did; `failed` holds (video id, one-line reason)."""

    out: Path
    videos: list[str]  # every video asked for, sorted by id
    localized: list[str] = field(default_factory=list)
    done_before: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    results: Path | None = None
    model: TunedModel | None = None  # the model and settings used

    def line(self) -> str:
        where = (f"-> {self.results} and {self.out / CAS_DIR}/" if self.results
                 else "(nothing written)")
        return (f"{plural(len(self.videos), 'video')}: {len(self.localized)} localized, "
                f"{len(self.done_before)} already done, {len(self.failed)} failed {where}")


def localize_batch(
    inputs: Sequence[str | Path], checkpoint: str | Path, out: str | Path,
    features: str | Path | None = None, *, audio_backend: str | None = None,
    visual_backend: str | None = None, audio_weights: str | Path | None = None,
    visual_weights: str | Path | None = None, weights_dir: str | Path | None = None,
    untuned: bool = False, progress: bool = True,
) -> BatchSummary:
    """Videos and folders of videos (`inputs`), or with no inputs every .npz of `features`,
    into OUT: features cached in `features` (default OUT/features), OUT/cas/<video>.npz,
    OUT/results.json. A video that fails is reported (once, on stderr, when it fails) and
    skipped; the rest go on. When no video is localized, nothing is written."""
    from avloc.util.cpus import use_threads

    m = load_tuned_model(checkpoint, untuned)
    use_threads(m.cfg.train.threads)
    if inputs:  # videos are extracted the way the checkpoint's training features were
        ext = recorded_extractors(m.ckpt, str(m.path))
        check_requested(ext, audio_backend, visual_backend, str(m.path))
    out = Path(out)
    fdir = Path(features) if features else out / FEATURE_DIR
    sources = _sources(inputs, fdir)
    summary = BatchSummary(out, list(sources), model=m)
    states = {vid: cas_state(cas_path(out, vid), m.id) for vid in sources}
    _refuse_stale(out, states, m)
    pending = [vid for vid, state in states.items() if state != "done"]
    summary.done_before = [vid for vid, state in states.items() if state == "done"]
    failed: dict[str, str] = {}
    if inputs and pending:  # only videos not localized yet need their features
        failed |= _extract([sources[v] for v in pending], fdir, ext, progress,
                           audio_weights=audio_weights, visual_weights=visual_weights,
                           weights_dir=weights_dir)
    todo = [vid for vid in pending if vid not in failed]
    _localize(todo, fdir, out, sources, m, summary, failed, progress)
    records = list(_finished_records(out, sources, summary, failed))
    made_by = {"thresholds": m.thresholds().to_dict()} if m.ckpt["task"] == "parsing" else None
    if records:
        summary.results = write_results(out, records, m.ckpt["task"], m.cfg, made_by)
    summary.failed = [(vid, failed[vid]) for vid in sources if vid in failed]
    return summary


def localize_command(inputs: Sequence[str | Path], checkpoint: str | Path, out: str | Path,
                     features: str | Path | None = None, **options: Any) -> tuple[str, int]:
    """`avloc localize`: `localize_batch`, then what to print (one video file: its segments
    too, and its own segments JSON and figure) and the exit status (1 when a video failed;
    each failure was said on stderr when it happened)."""
    if not inputs and not features:
        raise AvlocError("localize: give video files or folders, or --features DIR")
    summary = localize_batch(inputs, checkpoint, out, features, **options)
    lines = [summary.model.note] if summary.model and summary.model.note and summary.results \
        else []
    if len(inputs) == 1 and Path(inputs[0]).is_file() and not summary.failed:
        loc, seg, fig = one_video_files(summary, summary.videos[0])
        lines += [format_segments(loc), f"wrote {seg} and {fig}"]
    lines.append(summary.line())
    return "\n".join(lines), 1 if summary.failed else 0


def _sources(inputs: Sequence[str | Path], fdir: Path) -> dict[str, str]:
    """{video id: where it comes from}, sorted by id: the video files of `inputs`, or,
    without inputs, the feature files of `fdir`."""
    from avloc.extract.run import list_videos

    if inputs:
        return {p.stem: str(p) for p in list_videos(inputs)}
    if not fdir.is_dir():
        raise AvlocError(f"{fdir}: no such folder of features (give video files or folders, "
                         "or --features DIR holding .npz files from avloc extract)")
    found = {p.stem: str(p) for p in sorted(fdir.glob("*.npz"))}
    if not found:
        raise AvlocError(f"{fdir}: no .npz feature files to localize")
    return found


def _refuse_stale(out: Path, states: dict[str, str], m: TunedModel) -> None:
    """Outputs of another checkpoint in OUT would mix two models in one results.json."""
    stale = [vid for vid, state in states.items() if state == "stale"]
    if stale:
        raise AvlocError(f"{cas_path(out, stale[0])}: made by another checkpoint than "
                         f"{m.path} ({len(stale)} such files in {out / CAS_DIR}); use "
                         "another --out, or delete them to localize again")


def _extract(videos: list[str], fdir: Path, ext: dict[str, Any], progress: bool,
             **weights: Any) -> dict[str, str]:
    """Extract what the feature cache lacks, with the checkpoint's protocol or back-ends and
    grid `ext`, as `avloc extract` does (same code, same rules); return {video id: reason}
    of the videos that failed."""
    from avloc.extract import extract_folder

    if ext.get("protocol"):
        done = extract_folder(videos, fdir, protocol=ext["protocol"], progress=progress,
                              weights_dir=weights["weights_dir"])
    else:
        done = extract_folder(videos, fdir, ext["audio_backend"], ext["visual_backend"],
                              float(ext["snippet_seconds"]),
                              int(ext.get("frames_per_snippet", 1)), progress=progress, **weights)
    return {Path(path).stem: reason for path, reason in done.failed}


@dataclass
class _Item:
    video: Video
    timing: Timing
    duration: float


def _load(path: Path, vid: str, m: TunedModel) -> _Item:
    """One video's checked features, made the way the checkpoint's training features were."""
    from avloc.data.checks import features_2d
    from avloc.extract.store import SETTING_KEYS, read_features

    audio, visual, meta = read_features(path)
    where = f"{path}: video {vid}"
    audio = features_2d(audio, where, "audio", no_dims_ok=True)  # (T, D_a)
    visual = features_2d(visual, where, "visual")  # (T, D_v)
    dims = [audio.shape[1], visual.shape[1]]
    if dims != list(m.ckpt["feature_dims"]):
        raise AvlocError(f"{where}: feature dims (audio, visual) {dims} differ from the "
                         f"checkpoint's {list(m.ckpt['feature_dims'])}")
    ext = m.ckpt.get("extractors") or {}
    made = {k: meta[k] for k in SETTING_KEYS if k in meta}
    if ext and made and any(made.get(k) != ext.get(k) for k in SETTING_KEYS if k in ext):
        raise AvlocError(f"{where}: extracted with {made}, but the checkpoint was trained on "
                         f"features from {ext}; extract it again with those settings")
    seconds = float(meta.get("snippet_seconds", m.ckpt.get("snippet_seconds") or 1.0))
    duration = float(meta.get("duration", len(audio) * seconds))
    audio, visual, timing = protocol_grid(audio, visual, meta | {"video": vid}, ext, seconds)
    labels = np.zeros(len(m.ckpt["classes"]), np.float32)  # unknown: not used to predict
    return _Item(Video(vid, audio, visual, labels), timing, duration)


def _localize(todo: list[str], fdir: Path, out: Path, sources: dict[str, str], m: TunedModel,
              summary: BatchSummary, failed: dict[str, str], progress: bool) -> None:
    """Run the model over `todo` a chunk at a time; write each video's CAS file at once."""
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="localize", unit="video", file=sys.stderr,
               disable=not (progress and todo and interactive()))  # no bars in a log file
    for start in range(0, len(todo), CHUNK):
        items = []
        for vid in todo[start:start + CHUNK]:
            try:
                items.append(_load(fdir / f"{vid}.npz", vid, m))
            except AvlocError as e:  # one bad file must not stop the batch
                failed[vid] = str(e)
                tqdm.write(f"failed: {e}", file=sys.stderr)
        preds = predict(m.model, [it.video for it in items], amp=m.cfg.train.amp)
        for it, pred in zip(items, preds, strict=True):
            meta = {"task": m.ckpt["task"], "checkpoint": m.id, "source": sources[pred.vid]}
            rec = record_from_prediction(pred, m.ckpt["classes"], it.timing, it.duration, meta)
            write_cas(cas_path(out, pred.vid), rec)
            summary.localized.append(pred.vid)
        bar.update(len(todo[start:start + CHUNK]))
    bar.close()


def _finished_records(out: Path, sources: dict[str, str], summary: BatchSummary,
                      failed: dict[str, str]) -> Iterator[CasRecord]:
    """The CAS records of every finished video, read back one at a time (a file broken
    since it was written is reported like a failed video)."""
    done = set(summary.localized) | set(summary.done_before)
    for vid in sources:
        if vid in done:
            try:
                yield read_cas(cas_path(out, vid))
            except AvlocError as e:
                failed[vid] = f"{e}; delete it to localize the video again"
                print(f"failed: {failed[vid]}", file=sys.stderr, flush=True)


def one_video_files(summary: BatchSummary, vid: str) -> tuple[Localization, Path, Path]:
    """What `avloc localize VIDEO` wrote before batches, beside the batch's files:
    OUT/<video>_segments.json (ActivityNet results format) and OUT/<video>_cas.png."""
    from avloc.scoring.anet_json import results_json
    from avloc.util.io import write_json_atomic

    assert summary.model is not None
    loc = localization(read_cas(cas_path(summary.out, vid)), summary.model)
    seg = summary.out / f"{vid}_segments.json"
    write_json_atomic(seg, results_json({vid: loc.segments}))
    return loc, seg, timeline_figure(loc, summary.out / f"{vid}_cas.png")


def format_segments(loc: Localization) -> str:
    parsing = loc.task == "parsing"
    lines = [f"{loc.vid}: {loc.duration:.2f} s, {plural(len(loc.prediction.p), 'snippet')} of "
             f"{loc.snippet_seconds:g} s, "
             + plural(len(loc.segments), "audio or visual event" if parsing else "segment"),
             f"{'start (s)':>9} {'end (s)':>8} {'score':>6}  " + ("modality  " if parsing else "")
             + "label"]
    for s in loc.segments:
        start, end = s["segment"]
        modality = f"{s['modality']:<8}  " if parsing else ""
        lines.append(f"{start:>9.2f} {end:>8.2f} {s['score']:>6.3f}  {modality}{s['label']}")
    return "\n".join(lines)


def timeline_figure(loc: Localization, out: str | Path, max_classes: int = 6) -> Path:
    """Predicted segments, the class activation sequence of the top classes (rows, darker =
    higher) and mu over the video's timeline in seconds; a parsing model's audio and visual
    event tracks."""
    from avloc.report.style import new_figure, save

    if loc.task == "parsing":
        from avloc.report.parsing_figures import localize_figure

        return localize_figure(loc, out)

    cas = loc.prediction.cas  # (T, C)
    top = np.argsort(-cas.max(axis=0), kind="stable")[:max_classes]  # strongest classes
    T, sec = len(cas), loc.snippet_seconds
    span = T * sec
    fig = new_figure(10, 2.2 + 0.3 * len(top))
    grid = fig.add_gridspec(3, 2, width_ratios=[60, 1],
                            height_ratios=[0.6, 0.3 * len(top) + 0.3, 1.2], hspace=0.3)
    ax_seg = fig.add_subplot(grid[0, 0])
    for s in loc.segments:
        ax_seg.axvspan(*s["segment"], color="#1f77b4", alpha=0.35 + 0.5 * min(s["score"], 1))
        ax_seg.text(sum(s["segment"]) / 2, 0.5, s["label"], ha="center", va="center", fontsize=8)
    ax_seg.set(xlim=(0, span), ylim=(0, 1), yticks=[])
    ax_seg.set_ylabel("segments", rotation=0, ha="right", va="center")
    ax_seg.set_title(f"{loc.vid}: localized segments and class activation", fontsize=11)
    ax_cas = fig.add_subplot(grid[1, 0], sharex=ax_seg)
    im = ax_cas.imshow(cas[:, top].T, aspect="auto", cmap="Greys", vmin=0, vmax=1,
                       extent=(0, span, len(top) - 0.5, -0.5), interpolation="nearest")
    ax_cas.set_yticks(range(len(top)), [loc.classes[c] for c in top], fontsize=8)
    fig.colorbar(im, cax=fig.add_subplot(grid[1, 1]), label="p(class)")
    for ax in (ax_seg, ax_cas):
        ax.tick_params(axis="x", labelbottom=False)
    ax_mu = fig.add_subplot(grid[2, 0], sharex=ax_seg)
    ax_mu.plot((np.arange(T) + 0.5) * sec, loc.prediction.mu, drawstyle="steps-mid", marker=".")
    ax_mu.set(xlim=(0, span), ylim=(-0.02, 1.02), xlabel="time (s)", ylabel="μ (foreground)")
    ax_mu.grid(alpha=0.3)
    return save(fig, out)
