"""The synthetic generator's structure modes: the statistics it embeds are the real
annotations' (checked against the files), and each mode generates what it says."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np

from avloc.config import DataConfig
from avloc.data import load_dataset
from avloc.data.base import snippets_in_any
from avloc.data.synthetic import (
    ANET_FRACTION_PCT,
    ANET_INSTANCES,
    ANET_LENGTH_PCT,
    AVE_EVENTS,
    THUMOS_INSTANCE_PCT,
    THUMOS_INSTANCES_PCT,
    THUMOS_LENGTH_PCT,
)
from avloc.scoring.metrics import oracle_accuracy
from avloc.util.io import load_npy


def synthetic(**settings):
    base = {"format": "synthetic", "synth_audio_dim": 16, "synth_visual_dim": 16}
    return load_dataset(DataConfig(**{**base, **settings}), None)


def test_ave_event_times_are_those_of_the_real_annotations(ave_dir: Path) -> None:
    counts = collections.Counter()
    for row in (ave_dir / "Annotations.txt").read_text().splitlines():
        start, end = (int(x) for x in row.split("&")[3:5])
        if end > start:  # the one zero-length row is left out
            counts[(start, end)] += 1
    assert counts == collections.Counter(AVE_EVENTS)


def test_activitynet_statistics_are_those_of_the_real_annotations(anet_dir: Path) -> None:
    segments = load_npy(anet_dir / "segments.npy")
    instances = collections.Counter(len(s) for s in segments)
    assert {n: instances[n] for n in ANET_INSTANCES} == ANET_INSTANCES  # 1 to 9 per video
    durations = np.array([float(d) for d in load_npy(anet_dir / "duration.npy")])
    pct = range(0, 101, 5)
    assert np.round(np.percentile(durations / 0.64, pct)).tolist() == list(ANET_LENGTH_PCT)
    fractions = [(e - s) / d for segs, d in zip(segments, durations, strict=True)
                 for s, e in segs]
    real = np.minimum(np.percentile(fractions, pct), 1.0)  # (21,)
    np.testing.assert_allclose(real, ANET_FRACTION_PCT, atol=0.0006)


def test_thumos_statistics_are_those_of_the_real_annotations(thumos_dir: Path) -> None:
    videos = json.loads((thumos_dir / "thumos14.json").read_text())["database"].values()
    pct = range(0, 101, 5)
    lengths = np.array([v["duration"] for v in videos]) / 0.64
    assert np.round(np.percentile(lengths, pct)).tolist() == list(THUMOS_LENGTH_PCT)
    counts = [len(v["annotations"]) for v in videos]
    np.testing.assert_allclose(np.percentile(counts, pct), THUMOS_INSTANCES_PCT, atol=1e-9)
    instances = [(e - s) / 0.64 for v in videos for s, e in (a["segment"]
                                                              for a in v["annotations"])]
    np.testing.assert_allclose(np.percentile(instances, pct), THUMOS_INSTANCE_PCT, atol=0.006)


def oracle(ds) -> float:
    return oracle_accuracy([ds.annotations[v.vid].snippet_labels for v in ds.splits["test"]])


def test_ave_event_times_make_the_oracle_as_strong_as_on_ave() -> None:
    ds = synthetic(synth_events="ave", synth_videos=800, synth_classes=10)
    assert 0.78 <= oracle(ds) <= 0.87  # 82.2 % on AVE's real test split
    assert oracle(synthetic(synth_videos=800, synth_classes=10)) < 0.7  # uniform times


def test_action_videos_have_activitynet_lengths_and_instances() -> None:
    ds = synthetic(synth_task="action", synth_videos=400, synth_classes=20,
                   synth_background_videos=0)
    assert ds.task == "action"
    lengths = np.array([v.length for v in ds.splits["train"]])
    assert lengths.min() >= 4 and lengths.max() <= 373
    assert 140 <= lengths.mean() <= 220  # ActivityNet 1.2: mean 180 snippets
    per_video = [len(ds.annotations[v.vid].segments) for v in ds.splits["train"]]
    assert 0.65 <= np.mean(np.array(per_video) == 1) <= 0.85  # 76 % of real videos have one


def test_action_videos_have_thumos_lengths_and_instances() -> None:
    """data.synth_actions=thumos14: long videos with many short instances (real THUMOS'14:
    median 241 snippets of 0.64 s, 8 instances of 4.7 snippets, 31 % of a video action)."""
    ds = synthetic(synth_task="action", synth_actions="thumos14", synth_videos=400,
                   synth_classes=20, synth_background_videos=0)
    videos = ds.splits["train"]
    lengths = np.array([v.length for v in videos])
    assert lengths.min() >= 14 and lengths.max() <= 2615
    assert 180 <= np.median(lengths) <= 310
    segments = [ds.annotations[v.vid].segments for v in videos]
    assert 5 <= np.median([len(s) for s in segments]) <= 12
    snippets = [(g.end - g.start) / ds.snippet_seconds for s in segments for g in s]
    assert 3 <= np.median(snippets) <= 6.5
    action = [sum((g.end - g.start) / ds.snippet_seconds for g in s) / v.length
              for s, v in zip(segments, videos, strict=True)]
    assert 0.2 <= np.mean(action) <= 0.45
    anet = synthetic(synth_task="action", synth_videos=400, synth_classes=20,
                     synth_background_videos=0)
    assert np.median([len(anet.annotations[v.vid].segments) for v in anet.splits["train"]]) == 1


def test_noise_correlation_is_the_ar1_coefficient_asked() -> None:
    for corr in (0.0, 0.9):
        ds = synthetic(synth_task="action", synth_videos=60, synth_classes=5,
                       synth_background_videos=0, synth_noise_corr=corr)
        x = np.concatenate([np.diff(v.audio, axis=0) for v in ds.splits["train"]])
        # differencing removes the constant prototypes; AR(1) noise gives a lag-1
        # correlation of the differences of (corr - 1) / 2: -0.5 independent, -0.05 at 0.9
        lag1 = np.mean([np.corrcoef(x[:-1, d], x[1:, d])[0, 1] for d in range(x.shape[1])])
        assert abs(lag1 - (corr - 1) / 2) < 0.1


def test_hard_mode_classes_of_a_group_look_alike() -> None:
    def class_means(ds):
        vids = [v for v in ds.splits["train"] if v.labels.any()]
        means = {}
        for c in range(len(ds.classes)):
            feats = [v.visual.mean(0) for v in vids if v.labels[c]]
            means[c] = np.mean(feats, axis=0)
        return means

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    easy = class_means(synthetic(synth_videos=400, synth_classes=8))
    hard = class_means(synthetic(synth_videos=400, synth_classes=8, synth_groups=2,
                                 synth_group_share=0.7))
    same_group = [(0, 2), (1, 3), (4, 6), (5, 7)]  # class c is in group c % 2
    alike = np.mean([cosine(hard[a], hard[b]) for a, b in same_group])
    assert alike > np.mean([cosine(easy[a], easy[b]) for a, b in same_group]) + 0.2


def test_static_share_sets_how_many_videos_show_their_class_all_along() -> None:
    def kinds(share):
        ds = synthetic(synth_task="action", synth_videos=200, synth_classes=5,
                       synth_background_videos=0, synth_static_share=share)
        return collections.Counter(ds.video_kinds[v.vid] for v in ds.splits["train"])

    assert kinds(0.0)["static"] == 0 and kinds(0.0)["clean"] > kinds(0.0)["drowned"] > 0
    assert kinds(1.0) == {"static": 200}
    assert 0.2 < kinds(0.3)["static"] / 200 < 0.4


def test_video_kinds_say_where_each_modality_marks_the_event() -> None:
    ds = synthetic(synth_task="action", synth_videos=300, synth_classes=5,
                   synth_background_videos=20, synth_noise=0.1)
    kinds = ds.video_kinds
    videos = [v for vs in ds.splits.values() for v in vs]
    assert set(kinds) == {v.vid for v in videos}
    assert {kinds[v.vid] for v in videos if not v.labels.any()} == {"background"}
    counts = collections.Counter(kinds[v.vid] for v in ds.splits["train"] if v.labels.any())
    assert 0.3 < counts["clean"] / 300 < 0.5 and 0.2 < counts["static"] / 300 < 0.4

    def step(v, feat):  # how far the features move from outside to inside the instances
        t = ds.timing(v.vid)
        inside = snippets_in_any(((s.start, s.end) for s in ds.annotations[v.vid].segments),
                                 v.length, t)
        if inside.all():
            return None
        x = getattr(v, feat)
        return np.linalg.norm(x[inside].mean(0) - x[~inside].mean(0))

    def mean_step(kind, feat):
        steps = [step(v, feat) for v in ds.splits["train"] if kinds[v.vid] == kind]
        return np.mean([s for s in steps if s is not None])

    # static: the picture does not change at the event, the sound does; clean: both change
    assert mean_step("static", "visual") < 0.3 * mean_step("clean", "visual")
    assert mean_step("static", "audio") > 0.5 * mean_step("clean", "audio")
