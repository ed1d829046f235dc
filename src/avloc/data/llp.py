"""Look, Listen and Parse (LLP): audio-visual video parsing (Tian, Li and Xu, ECCV 2020).

10-second YouTube clips named `YTID_start_end`, ten one-second segments, 25 classes.
Training clips carry video-level labels only (several per clip, no modality); validation
and test clips also have per-modality events: when each event is heard (audio) and when
it is seen (visual). The annotation files of the AVVP-ECCV20 release (its `data/`
folder), tab-separated with a header, in DIR, DIR/data or the folder of setting
`data.annotations`:

    AVVP_train.csv, AVVP_val_pd.csv, AVVP_test_pd.csv   filename, event_labels (a,b,c)
    AVVP_eval_audio.csv, AVVP_eval_visual.csv           filename, onset, offset, event_labels

Features, in one of two layouts (setting `data.llp_features`):
- release (`DIR/feats/`, as the release's download): `vggish/<id>.npy` (10, 128) audio,
  `res152/<id>.npy` (80, 2048) frames at 8 fps, `r2plus1d_18/<id>.npy` (10 or 80, 512);
- extract (`DIR/features/<id>.npz`): `avloc extract` output, audio and visual per second.
<id> is the clip name or its first 11 characters, the YouTube id (the release's loader
opens `filename[:11] + '.npy'`). Visual features with k rows per second are averaged over
each second's k rows (res152: the 8 frames of a second). HAN averages the 8 frames after
its linear layer fc_v; averaging first is the same (the layer is linear) and stores 8x less.

The release's annotation flaws are reported, not fatal, and treated as the official
evaluation treats them (`main_avvp.py`: ground truth GT[class, onset:offset] = 1 for the
rows whose filename is the evaluated clip's): events of clips in neither the validation
nor the test list are never scored; an event with offset <= onset marks no segment;
an event whose label is not among its clip's video-level labels is scored.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avloc.config import DataConfig
from avloc.data.base import Annotation, Dataset, Segment, Video
from avloc.data.checks import align_av, check_feature_dims, features_2d, require_file
from avloc.util.errors import AvlocError

# the class order of the official code (ids_to_multinomial, main_avvp.eval)
LLP_CLASSES = [
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)", "Basketball_bounce",
    "Fire_alarm", "Chainsaw", "Cello", "Banjo", "Singing", "Chicken_rooster", "Violin_fiddle",
    "Vacuum_cleaner", "Baby_laughter", "Accordion", "Lawn_mower", "Motorcycle", "Helicopter",
    "Acoustic_guitar", "Telephone_bell_ringing", "Baby_cry_infant_cry", "Blender", "Clapping",
]
LIST_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVENT_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
SEGMENTS = 10  # one-second segments per clip (the official evaluation assumes 10)
YTID = 11  # characters of a YouTube id: the release names feature files by it
RELEASE_DIRS = {"audio": "vggish", "res152": "res152", "r2plus1d_18": "r2plus1d_18"}


@dataclass
class LLPAnnotations:
    """Everything the five CSV files say, checked; the flaws found as notes."""

    folder: Path
    lists: dict[str, list[tuple[str, list[str]]]]  # split -> [(clip, labels)] in file order
    events: dict[str, list[Segment]]  # clip (validation or test) -> its events, with modality
    notes: list[str] = field(default_factory=list)


def annotation_folder(cfg: DataConfig, root: Path | None) -> Path:
    """The folder holding AVVP_train.csv: setting data.annotations, DIR or DIR/data."""
    places = [Path(cfg.annotations)] if cfg.annotations else []
    if root is not None:
        places += [Path(root), Path(root) / "data"]
    for place in places:
        if (place / LIST_FILES["train"]).is_file():
            return place
    if not places:
        raise AvlocError("LLP annotations: give --data DIR or setting data.annotations=FOLDER")
    raise AvlocError(f"{places[0] / LIST_FILES['train']}: missing file (LLP annotations, the "
                     "AVVP-ECCV20 release's data/ CSV files; also looked in "
                     f"{', '.join(str(p) for p in places[1:]) or 'no other folder'})")


def _rows(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a tab-separated file whose first line is `header`."""
    require_file(path, "LLP annotations")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AvlocError(f"{path}: cannot read as tab-separated text ({e})") from None
    if not lines or [h.strip() for h in lines[0]] != header:
        got = "\t".join(lines[0]) if lines else "nothing"
        raise AvlocError(f"{path}: line 1: expected the header {' '.join(header)!r}, got {got!r}")
    out = []
    for number, fields in enumerate(lines[1:], start=2):
        if not fields or fields == [""]:
            continue  # a blank line (a trailing newline)
        if len(fields) != len(header):
            raise AvlocError(f"{path}: line {number}: {len(fields)} tab-separated fields, "
                             f"expected {len(header)} ({', '.join(header)})")
        out.append((number, [x.strip() for x in fields]))
    return out


def _labels(text: str, where: str) -> list[str]:
    """The comma-separated labels, each once (in order); an unknown class is an error."""
    labels = [x.strip() for x in text.split(",")]
    for label in labels:
        if label not in LLP_CLASSES:
            raise AvlocError(f"{where}: label {label!r} is not one of the 25 LLP classes")
    return list(dict.fromkeys(labels))


def _second(text: str, where: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AvlocError(f"{where}: {what} {text!r} is not a whole second") from None
    if not 0 <= value <= SEGMENTS:
        raise AvlocError(f"{where}: {what} {value} lies outside the clip (0 to {SEGMENTS} s)")
    return value


def read_clip_list(path: Path, notes: list[str]) -> list[tuple[str, list[str]]]:
    """One of the three weakly labelled lists: [(clip, labels)] in file order. A label
    repeated in one row counts once (the official multi-hot encoding sets it once)."""
    out = []
    seen: set[str] = set()
    repeated = []
    for number, (clip, text) in _rows(path, ["filename", "event_labels"]):
        where = f"{path}: line {number} (clip {clip})"
        if not clip or "/" in clip or "\\" in clip or clip in (".", ".."):
            raise AvlocError(f"{where}: clip name {clip!r} cannot be a file name")
        if clip in seen:
            raise AvlocError(f"{where}: clip listed twice")
        seen.add(clip)
        labels = _labels(text, where)
        if len(labels) < len(text.split(",")):
            repeated.append(f"line {number}: {clip} {text}")
        out.append((clip, labels))
    if repeated:
        notes.append(f"{path}: {len(repeated)} rows list a label twice; it counts once, as in "
                     f"the official code ({repeated[0]}{', ...' if len(repeated) > 1 else ''})")
    return out


def _example(names: list[str], listed: set[str]) -> str:
    """A few names, each with the listed clip it looks like a mangled copy of."""
    shown = []
    for name in names[:3]:
        like = sorted(c for c in listed if c.endswith(name) or name.startswith(c))
        shown.append(f"{name} (like {like[0]})" if like else name)
    return ", ".join(shown) + (", ..." if len(names) > 3 else "")


def read_events(
    folder: Path, lists: dict[str, list[tuple[str, list[str]]]], notes: list[str]
) -> dict[str, list[Segment]]:
    """The per-modality events of the validation and test clips, with the release's flaws
    as notes (see the module docstring for how each is treated)."""
    scored = {clip: set(labels) for split in ("val", "test") for clip, labels in lists[split]}
    listed = {clip for items in lists.values() for clip, _ in items}
    events: dict[str, list[Segment]] = {clip: [] for clip in scored}
    for modality, name in EVENT_FILES.items():
        path = folder / name
        unknown: Counter[str] = Counter()
        empty, foreign = [], 0
        for number, (clip, onset, offset, label) in _rows(
                path, ["filename", "onset", "offset", "event_labels"]):
            where = f"{path}: line {number} (clip {clip})"
            start, end = _second(onset, where, "onset"), _second(offset, where, "offset")
            (label,) = _labels(label, where)
            if clip not in scored:
                unknown[clip] += 1
            elif end <= start:
                empty.append(f"line {number}: {clip} {start}-{end} {label}")
            else:
                foreign += label not in scored[clip]
                events[clip].append(Segment(float(start), float(end), label, modality))
        if unknown:
            notes.append(f"{path}: {sum(unknown.values())} events of {len(unknown)} clips in "
                         f"neither the validation nor the test list are not scored, as in "
                         f"the official code: {_example(sorted(unknown), listed)}")
        if empty:
            notes.append(f"{path}: {len(empty)} events end where or before they start and "
                         f"mark no segment, as in the official code ({empty[0]}"
                         f"{', ...' if len(empty) > 1 else ''})")
        if foreign:
            notes.append(f"{path}: {foreign} events have a label their clip's video-level "
                         "labels lack; they are scored, as in the official code")
    return events


def read_llp_annotations(folder: Path) -> LLPAnnotations:
    """Read and check the five CSV files; no clip may be in two lists."""
    notes: list[str] = []
    lists = {split: read_clip_list(folder / name, notes) for split, name in LIST_FILES.items()}
    owner: dict[str, str] = {}
    for split, items in lists.items():
        for clip, _ in items:
            if clip in owner:
                raise AvlocError(f"{folder / LIST_FILES[split]}: clip {clip} is also in "
                                 f"{LIST_FILES[owner[clip]]}")
            owner[clip] = split
    events = read_events(folder, lists, notes)
    unseen = sum(1 for split in ("val", "test") for clip, labels in lists[split]
                 if set(labels) - {s.label for s in events[clip]})
    if unseen:
        notes.append(f"{folder}: {unseen} validation or test clips have a video-level label "
                     "without any annotated event (nothing to find for it there)")
    return LLPAnnotations(folder, lists, events, notes)


def report_notes(notes: list[str]) -> None:
    """The annotation flaws, one line each on stderr: reported, never fatal."""
    for note in notes:
        print(f"avloc: note: {note}", file=sys.stderr, flush=True)


# ---- features --------------------------------------------------------------------------
class MissingFeatures(AvlocError):
    """A clip has no feature file (setting data.missing_features may leave it out)."""


def feature_file(folder: Path, clip: str, suffix: str) -> Path:
    """folder/<clip><suffix>, else folder/<YouTube id><suffix> (the release's naming)."""
    for name in (clip, clip[:YTID]):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    raise MissingFeatures(f"{folder}: missing features of clip {clip} (looked for "
                          f"{clip}{suffix} and {clip[:YTID]}{suffix}; setting "
                          "data.missing_features=skip_train leaves training clips without "
                          "them out)")


def per_second(x: np.ndarray, where: str, what: str) -> np.ndarray:
    """(k * 10, D) -> (10, D): the mean of each second's k rows (res152: 8 frames at 8 fps)."""
    if len(x) % SEGMENTS:
        raise AvlocError(f"{where}: {what} has {len(x)} rows, expected a multiple of {SEGMENTS} "
                         f"(k per second of the {SEGMENTS} s clip)")
    return x.reshape(SEGMENTS, len(x) // SEGMENTS, -1).mean(axis=1)  # (10, D)


def _npy(path: Path, clip: str, what: str) -> np.ndarray:
    from avloc.util.io import load_npy

    return features_2d(load_npy(path), f"{path}: clip {clip}", what)


def release_features(feats: Path, clip: str, visual: str) -> tuple[np.ndarray, np.ndarray]:
    """(10, 128) VGGish audio and the pooled visual features of `data.llp_visual`."""
    path = feature_file(feats / RELEASE_DIRS["audio"], clip, ".npy")
    audio = _npy(path, clip, "audio")
    if len(audio) != SEGMENTS:
        raise AvlocError(f"{path}: clip {clip}: audio has {len(audio)} rows, expected "
                         f"{SEGMENTS} (one per second)")
    parts = []
    for name in visual.split("+"):
        vpath = feature_file(feats / RELEASE_DIRS[name], clip, ".npy")
        parts.append(per_second(_npy(vpath, clip, name), f"{vpath}: clip {clip}", name))
    return audio, np.concatenate(parts, axis=1).astype(np.float32)  # (10, D_a), (10, D_v)


def extracted_features(
    folder: Path, clip: str, tolerance: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """`avloc extract` output for one clip, cut to its ten seconds (an extractor may count
    one more partial snippet of a 10.03 s clip)."""
    from avloc.data.generic import read_npz

    path = feature_file(folder, clip, ".npz")
    audio, visual, extractor = read_npz(path, clip)
    if not SEGMENTS <= len(audio) <= SEGMENTS + tolerance:
        raise AvlocError(f"{path}: clip {clip}: {len(audio)} snippets, expected {SEGMENTS} "
                         f"(up to {SEGMENTS + tolerance} with data.length_tolerance={tolerance})")
    if extractor and float(extractor.get("snippet_seconds", 1.0)) != 1.0:
        raise AvlocError(f"{path}: clip {clip}: extracted with snippets of "
                         f"{extractor['snippet_seconds']} s; LLP needs 1 s (--snippet-seconds 1)")
    audio, visual = align_av(audio[:SEGMENTS], visual[:SEGMENTS], f"{path}: clip {clip}")
    return audio, visual, extractor


def feature_layout(cfg: DataConfig, root: Path) -> tuple[str, Path]:
    """("release", DIR/feats) or ("extract", DIR/features), by data.llp_features."""
    release, extract = root / "feats", root / "features"
    kind = cfg.llp_features
    if kind == "auto":
        kind = "release" if release.is_dir() else "extract"
    folder = release if kind == "release" else extract
    if not folder.is_dir():
        raise AvlocError(f"{folder}: missing folder of LLP features (feats/ as the release "
                         "ships them, or features/ from `avloc extract`; docs/datasets.md)")
    return kind, folder


def multi_hot_labels(labels: list[str]) -> np.ndarray:
    y = np.zeros(len(LLP_CLASSES), np.float32)  # (C,)
    y[[LLP_CLASSES.index(c) for c in labels]] = 1.0
    return y


def llp_annotations(ann: LLPAnnotations) -> dict[str, Annotation]:
    """Every clip's ground truth: its events (validation and test) with their modality; the
    training clips' events are unknown (`weak`), not absent."""
    return {clip: Annotation(clip, float(SEGMENTS), list(ann.events.get(clip, [])),
                             weak=split == "train")
            for split, items in ann.lists.items() for clip, _ in items}


def load_llp(cfg: DataConfig, root: Path) -> Dataset:
    """Read and check the annotations and every clip's features (data.format=llp)."""
    ann = read_llp_annotations(annotation_folder(cfg, root))
    report_notes(ann.notes)
    kind, folder = feature_layout(cfg, root)
    splits: dict[str, list[Video]] = {}
    extractors: dict[str, Any] | None = None
    first: tuple[int, int] | None = None
    for split, items in ann.lists.items():
        videos, missing = [], []
        may_skip = cfg.missing_features == "skip" or (
            cfg.missing_features == "skip_train" and split == "train")
        for clip, labels in items:
            try:
                if kind == "release":
                    audio, visual = release_features(folder, clip, cfg.llp_visual)
                    extractor = None
                else:
                    audio, visual, extractor = extracted_features(folder, clip,
                                                                  cfg.length_tolerance)
            except MissingFeatures:
                if not may_skip:
                    raise
                missing.append(clip)
                continue
            dims = (audio.shape[1], visual.shape[1])
            if first is None:  # the first clip: every other must match it
                first, extractors = dims, extractor
            check_feature_dims(dims, first, f"{folder}: clip {clip}")
            if extractor != extractors:
                raise AvlocError(f"{folder}: clip {clip}: extracted with {extractor}, but the "
                                 f"first clip with {extractors}; re-extract with one setting")
            videos.append(Video(clip, audio, visual, multi_hot_labels(labels)))
        if missing:
            report_notes([left_out_note(split, missing, len(items), folder)])
        splits[split] = videos
    if not splits["train"]:
        raise AvlocError(f"{folder}: none of the {len(ann.lists['train'])} training clips of "
                         f"{LIST_FILES['train']} has features")
    keep = {v.vid for videos in splits.values() for v in videos}
    annotations = {k: a for k, a in llp_annotations(ann).items() if k in keep}
    return Dataset("llp", "parsing", list(LLP_CLASSES), 1.0, splits, annotations, extractors)


def left_out_note(split: str, missing: list[str], listed: int, folder: Path) -> str:
    """The line that says which clips of a split were left out for lack of features."""
    scored = "" if split == "train" else (" (its scores are over the clips present, not the "
                                          "whole list)")
    return (f"{folder}: left out {len(missing)} of the {listed} {split} clips, which have no "
            f"features (e.g. {', '.join(missing[:3])}){scored}")
