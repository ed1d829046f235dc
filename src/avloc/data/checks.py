"""Checks and helpers shared by the dataset readers (AVE, ActivityNet 1.2, generic), and
the check of a whole dataset before training (`check_training_data`).

Every reader validates the whole input when it loads, before any training starts, and
reports the first problem as a one-line `AvlocError` that names the file, the video (or
line) and what is wrong: a bad value found after an hour of training, or a silently
misaligned label, costs far more than a strict reader.

Tolerances (documented in docs/datasets.md):
- audio and visual snippet counts of a video may differ by `AV_TOLERANCE` snippet
  (extractors with different windows count the last partial snippet differently); the
  longer stream is trimmed to the shorter;
- a video's snippet count T may miss duration / snippet_seconds by `length_tolerance`
  snippets beyond floor/ceil rounding;
- a segment may end up to one snippet after the video's duration (annotation times and
  durations are rounded independently; the real ActivityNet 1.2 files overshoot by up to
  0.35 s); segments are kept as annotated, never clipped, so that evaluation matches the
  official ground truth.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc.data.base import Dataset, Segment, snippets_in
from avloc.util.errors import AvlocError

AV_TOLERANCE = 1  # snippets by which audio and visual counts may differ (ANet, generic)


def require_file(path: Path, what: str) -> Path:
    """The path, or a one-line error saying which file is missing and what it holds."""
    if not path.is_file():
        raise AvlocError(f"{path}: missing file ({what})")
    return path


def check_unique(ids: Iterable[str], source: str, what: str = "video id") -> None:
    """Duplicate ids would silently merge two videos' ground truth."""
    seen: set[str] = set()
    for vid in ids:
        if vid in seen:
            raise AvlocError(f"{source}: duplicate {what} {vid!r}")
        seen.add(vid)


def check_video_name(vid: str, source: str) -> None:
    """Video ids become file names (generic layout): no separators, no '.'/'..'."""
    if not vid or vid in (".", "..") or "/" in vid or "\\" in vid or "\0" in vid:
        raise AvlocError(f"{source}: video id {vid!r} cannot be used as a file name")


def features_2d(x: Any, where: str, modality: str, no_dims_ok: bool = False) -> np.ndarray:
    """One video's (T, D) float32 features; rejects other shapes, empty videos, NaN/Inf.
    no_dims_ok: (T, 0) is allowed, meaning no features of this modality (visual-only data)."""
    check_numeric_dtype(np.asarray(x).dtype, where, modality)
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise AvlocError(f"{where}: {modality} features are not numeric arrays") from None
    if arr.ndim != 2:
        raise AvlocError(
            f"{where}: {modality} features have shape {arr.shape}, expected (T, D)"
        )
    if arr.shape[0] == 0:
        raise AvlocError(f"{where}: video has zero snippets ({modality} shape {arr.shape})")
    if arr.shape[1] == 0 and not no_dims_ok:
        raise AvlocError(f"{where}: {modality} features have zero dimensions")
    check_features_finite(arr, where, modality)
    return arr


def check_numeric_dtype(dtype: np.dtype, where: str, modality: str) -> None:
    """Real numbers only: complex values would lose their imaginary part and dates or
    strings would turn into meaningless numbers when cast to float32."""
    if dtype.kind not in "fiu":
        raise AvlocError(f"{where}: {modality} features have dtype {dtype}, expected real numbers")


def check_features_finite(arr: np.ndarray, where: str, modality: str) -> None:
    """NaN/Inf in features turn every loss NaN; find them at load time, not at epoch 3."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise AvlocError(f"{where}: {modality} features contain NaN/Inf (at index {tuple(bad)})")


def align_av(
    audio: np.ndarray, visual: np.ndarray, where: str, tolerance: int = AV_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Trim the longer stream when the counts differ by <= tolerance, else an error."""
    ta, tv = audio.shape[0], visual.shape[0]
    if abs(ta - tv) > tolerance:
        raise AvlocError(
            f"{where}: audio has {ta} snippets but visual has {tv} "
            f"(at most {tolerance} apart allowed)"
        )
    t = min(ta, tv)
    return audio[:t], visual[:t]


def check_feature_dims(dims: tuple[int, int], first: tuple[int, int], where: str) -> None:
    """All videos of a dataset must share (D_a, D_v): the model has one input layer."""
    if dims != first:
        raise AvlocError(
            f"{where}: feature dimensions (audio, visual) = {dims} differ from {first} "
            "of the first video"
        )


def check_training_data(ds: Dataset) -> None:
    """Every video of every split, before the first step: a bad one found at epoch 50
    would waste the run. The readers check their files in detail; this also covers a
    Dataset built in Python and passed to `train(dataset=...)`: (T, D) float features with
    T >= 1, finite, as many audio as visual snippets, one (D_a, D_v) for all, C labels of
    0 or 1."""
    dims, c = None, ds.num_classes
    for split, videos in ds.splits.items():
        for v in videos:
            where = f"dataset {ds.name}, {split} video {v.vid}"
            for name, x in (("audio", v.audio), ("visual", v.visual)):
                if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] > 0
                        and np.issubdtype(x.dtype, np.floating)):
                    raise AvlocError(f"{where}: {name} features must be a (T, D) float array "
                                     f"with T >= 1 (got {getattr(x, 'shape', type(x))})")
                check_features_finite(x, where, name)
            if v.audio.shape[0] != v.visual.shape[0]:
                raise AvlocError(f"{where}: {v.audio.shape[0]} audio but "
                                 f"{v.visual.shape[0]} visual snippets")
            dims = dims or (v.audio.shape[1], v.visual.shape[1])
            if (v.audio.shape[1], v.visual.shape[1]) != dims:
                raise AvlocError(f"{where}: feature dims differ from the first video's {dims}")
            labels = np.asarray(v.labels)
            if labels.shape != (c,) or not np.isin(labels, (0, 1)).all():
                raise AvlocError(f"{where}: labels must be {c} values of 0 or 1")


def check_head(head: str, ds: Dataset) -> None:
    """Parsing data needs the parsing head (setting model.head) and the parsing head needs
    parsing data: each head's outputs are only what its own protocol scores."""
    if (head == "parsing") != (ds.task == "parsing"):
        wanted = "parsing" if ds.task == "parsing" else "fused"
        raise AvlocError(f"setting model.head={head}: dataset {ds.name} is {ds.task} data; "
                         f"use model.head={wanted}")


HOLDOUT_FORMATS = ("anet12", "generic", "thumos14", "thumos14_wtalc")  # val held out of train


def no_validation_note(ds: Dataset, fmt: str, val_fraction: float) -> str | None:
    """Why `ds` has no validation videos, for the training log (None when it has some):
    without them nothing picks the best epoch, which a user should hear about."""
    if ds.splits.get("val"):
        return None
    train = ds.splits.get("train", [])
    known = [v for v in train if not (v.vid in ds.annotations and ds.annotations[v.vid].weak)]
    if train and not known:
        why = (f"all {len(train)} training videos have video-level labels only and validation "
               "needs segments; give 'validation' videos with segments")
    elif fmt in HOLDOUT_FORMATS:
        why = (f"data.val_fraction={val_fraction:g} of {len(known)} training videos with known "
               "segments holds out none; raise it or give 'validation' videos")
    else:
        why = f"dataset {ds.name} has no validation split"
    return (f"no validation videos ({why}): no model selection, best.pt is the last epoch and "
            "metrics.json has no 'val'")


def no_background_note(ds: Dataset) -> str | None:
    """Event data (AVE-style) whose training videos all hold an event: mu then learns
    background only from within-video contrast, which the training log should say (the
    measurements: docs/paper-notes.md, "Background without background-only videos")."""
    train = ds.splits.get("train", [])
    if ds.task != "event" or not train or any(not v.labels.any() for v in train):
        return None
    return (f"all {len(train)} training videos hold an event (no background-only videos, "
            "as AVE's weak setting has): background is learnt only from within each video, "
            "so expect mu to separate event from background less well (the class soft-max "
            "may still find it: avloc eval prints the share of background snippets found; "
            "loss.pseudo_renormalize=true makes mu separate, at some cost in accuracy); "
            "see docs/paper-notes.md, 'Background without background-only videos'")


def check_length(
    length: int, duration: float, snippet_seconds: float, tolerance: int, where: str,
    uncovered: float = 0.0,
) -> None:
    """The snippet count must match the duration, or snippets map to the wrong seconds.

    `uncovered`: seconds of the video no snippet of the grid can cover (sliding-window
    features: the last window's frames beyond one stride), taken off the duration.
    """
    expected = (duration - uncovered) / snippet_seconds
    lo = math.floor(expected + 1e-6) - tolerance
    hi = math.ceil(expected - 1e-6) + tolerance
    if not lo <= length <= hi:
        span = f"(duration {duration:g} s - {uncovered:g} s)" if uncovered else (
            f"duration {duration:g} s")
        raise AvlocError(
            f"{where}: {length} snippets but {span} / {snippet_seconds:g} s = "
            f"{expected:.2f} snippets (allowed {lo}..{hi}; setting data.length_tolerance="
            f"{tolerance})"
        )


def check_duration(duration: Any, where: str) -> float:
    """A positive finite number of seconds."""
    if isinstance(duration, np.generic):
        duration = duration.item()  # shows as -3.0 in messages, not np.float64(-3.0)
    try:
        value = float(duration)
    except (TypeError, ValueError):
        raise AvlocError(f"{where}: duration {duration!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise AvlocError(f"{where}: duration {duration!r} must be a positive number of seconds")
    return value


def make_segment(
    start: Any,
    end: Any,
    label: str,
    duration: float,
    classes: Sequence[str] | set[str],
    end_slack: float,
    where: str,
) -> Segment:
    """A validated segment: numeric, ordered, inside the video, of a known class.

    end == start is accepted: the released files have such zero-length instances (AVE
    line 27; 10 in ActivityNet 1.2) and the reference labels keep them (AVE: video label
    set, no event snippet; ActivityNet: the official evaluation counts them). `end_slack`
    (seconds; one snippet for ActivityNet-style data) is how far an end may pass the
    duration; math.inf lets segments lie anywhere after 0 (THUMOS'14's release has
    segments past the end of their video, which its official evaluation counts).
    """
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError):
        raise AvlocError(f"{where}: segment [{start!r}, {end!r}] is not numeric") from None
    if not (math.isfinite(s) and math.isfinite(e)):
        raise AvlocError(f"{where}: segment [{start!r}, {end!r}] is not finite")
    if e < s:
        raise AvlocError(f"{where}: segment [{s:g}, {e:g}] ends before it starts")
    past_end = math.isfinite(end_slack) and (s > duration or e > duration + end_slack + 1e-6)
    if s < 0 or past_end:
        slack = f"; ends may pass it by {end_slack:g} s" if end_slack else ""
        raise AvlocError(
            f"{where}: segment [{s:g}, {e:g}] lies outside the video "
            f"(duration {duration:g} s{slack})"
        )
    if label not in classes:
        raise AvlocError(f"{where}: label {label!r} is not in the class list")
    return Segment(start=s, end=e, label=label)


def multi_hot(items: Iterable[Segment | str], classes: Sequence[str]) -> np.ndarray:
    """The video-level label: which classes occur anywhere in the video, from its segments
    or from class names (video-level labels without segments)."""
    labels = np.zeros(len(classes), dtype=np.float32)  # (C,)
    for item in items:
        labels[classes.index(item.label if isinstance(item, Segment) else item)] = 1.0
    return labels


def snippet_labels_from_segments(
    segments: Sequence[Segment],
    length: int,
    snippet_seconds: float,
    classes: Sequence[str],
    where: str,
) -> np.ndarray:
    """(T,) int64 ground-truth labels for event accuracy: snippet t is in a segment when
    start <= t * snippet_seconds < end (`data.base.snippets_in`).

    0 is background, c + 1 is classes[c]. A snippet claimed by two different classes has
    no single label, so that is an error (only event-style datasets need these labels).
    """
    index = {c: i + 1 for i, c in enumerate(classes)}
    out = np.zeros(length, dtype=np.int64)  # (T,)
    for seg in segments:
        inside = snippets_in(seg.start, seg.end, length, snippet_seconds)  # (T,)
        clash = inside & (out != 0) & (out != index[seg.label])
        if clash.any():
            raise AvlocError(
                f"{where}: snippet {int(np.flatnonzero(clash)[0])} lies in segments of two "
                "classes; event labels need one class per snippet"
            )
        out[inside] = index[seg.label]
    return out


def holdout(
    labels: Sequence[np.ndarray], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split indices into (kept, held out) for model selection, deterministic in `seed`.

    Size: round(fraction * n) of each group of videos with the same first class
    (background-only videos form their own group), summed, or round(fraction * N) when that
    is more (many small groups whose shares round to 0): about `fraction` of each.
    Coverage first: within that size, every class with two or more videos gets one held-out
    video (rarest classes first; never a class's last remaining training video), so that
    validation can score every class where the fraction allows it. Then the groups are
    filled to their share. `fraction` is in [0, 1) (setting data.val_fraction, checked by
    config.validate).
    """
    if not len(labels):
        return [], []
    y = np.array([np.asarray(lab) > 0 for lab in labels]).reshape(len(labels), -1)  # (N, C)
    group = [int(np.flatnonzero(row)[0]) if row.any() else -1 for row in y]  # (N,)
    members: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(group):
        members[key].append(i)
    share = {key: int(round(fraction * len(ix))) for key, ix in members.items()}
    budget = max(sum(share.values()), int(round(fraction * len(labels))))
    rng = np.random.default_rng(seed)
    held: dict[int, None] = {}  # insertion-ordered set
    in_train = y.sum(axis=0)  # (C,) training videos per class
    for c in sorted(np.flatnonzero(in_train >= 2), key=lambda c: (in_train[c], c)):
        if len(held) >= budget:
            break
        if any(y[i, c] for i in held):
            continue
        for i in map(int, rng.permutation(np.flatnonzero(y[:, c]))):
            if i not in held and in_train[y[i]].min() >= 2:
                held[i] = None
                in_train -= y[i]
                break
    for key in sorted(members):
        mine = sum(group[i] == key for i in held)
        free = [int(i) for i in rng.permutation(members[key]) if int(i) not in held]
        take = min(max(share[key] - mine, 0), budget - len(held))
        held.update(dict.fromkeys(free[:take]))
    rest = [int(i) for i in rng.permutation(len(labels)) if int(i) not in held]
    held.update(dict.fromkeys(rest[: budget - len(held)]))  # shares rounded down to 0
    kept = [i for i in range(len(labels)) if i not in held]
    return kept, sorted(held)
