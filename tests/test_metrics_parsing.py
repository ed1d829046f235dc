"""LLP parsing metrics against a plain, per-video, per-class implementation of the official
procedure (AVVP-ECCV20 `utils/eval_metrics.py` and `main_avvp.py`), written here from its
description: random predictions, empty predictions, events at the clip's ends, videos
without any event in a modality."""

from __future__ import annotations

import numpy as np
import pytest

from avloc.scoring.metrics.parsing import parsing_scores, runs
from avloc.scoring.reports import format_parsing_table
from avloc.util.errors import AvlocError


def naive_events(row: list[int]) -> list[set[int]]:
    """The events of one class row: maximal runs of 1s, each as its set of segments."""
    events, current = [], set()
    for t, x in enumerate(row):
        if x == 1:
            current.add(t)
        elif current:
            events.append(current)
            current = set()
    if current:
        events.append(current)
    return events


def naive_tp_fp_fn_events(pred: list[int], gt: list[int]) -> tuple[int, int, int]:
    def hit(a: set[int], b: set[int]) -> bool:  # sum(x1 x2) >= 0.5 sum(x1 + x2 - x1 x2)
        return len(a & b) >= 0.5 * len(a | b)

    p, g = naive_events(pred), naive_events(gt)
    tp = sum(any(hit(x, y) for y in g) for x in p)
    fp = len(p) - tp
    fn = sum(not any(hit(y, x) for x in p) for y in g)
    return tp, fp, fn


def naive_tp_fp_fn_segments(pred: list[int], gt: list[int]) -> tuple[int, int, int]:
    tp = sum(1 for a, b in zip(pred, gt, strict=True) if a == 1 and b == 1)
    fp = sum(1 for a, b in zip(pred, gt, strict=True) if a == 1 and b == 0)
    fn = sum(1 for a, b in zip(pred, gt, strict=True) if a == 0 and b == 1)
    return tp, fp, fn


def naive_f(counts: list[tuple[int, int, int]]) -> float:
    """Mean over classes with TP+FP != 0 or TP+FN != 0 of 2TP/(2TP+FN+FP); 1.0 if none."""
    fs = [2 * tp / (2 * tp + fn + fp) for tp, fp, fn in counts if tp + fp != 0 or tp + fn != 0]
    return sum(fs) / len(fs) if fs else 1.0


def naive_video(pa, pv, ga, gv, count) -> tuple[float, float, float, float]:
    """One video: (audio F, visual F, pooled Event@AV F, audio-visual F)."""
    pav, gav = pa * pv, ga * gv
    ca, cv, cav, pooled = [], [], [], []
    for c in range(pa.shape[0]):
        a = count(list(pa[c]), list(ga[c]))
        v = count(list(pv[c]), list(gv[c]))
        ca.append(a)
        cv.append(v)
        cav.append(count(list(pav[c]), list(gav[c])))
        pooled.append(tuple(x + y for x, y in zip(a, v, strict=True)))
    return naive_f(ca), naive_f(cv), naive_f(pooled), naive_f(cav)


def naive_scores(pa_list, pv_list, ga_list, gv_list) -> dict:
    """The official averaging: each F averaged over videos; Type@AV = mean of the three."""
    out = {}
    for level, count in (("segment_level", naive_tp_fp_fn_segments),
                         ("event_level", naive_tp_fp_fn_events)):
        per = [naive_video(*v, count) for v in zip(pa_list, pv_list, ga_list, gv_list,
                                                   strict=True)]
        a, v, e, av = (float(np.mean([p[i] for p in per])) for i in range(4))
        out[level] = {"audio": a, "visual": v, "audio_visual": av,
                      "type_av": (av + a + v) / 3, "event_av": e}
    return out


def assert_same(got: dict, want: dict) -> None:
    for level in ("segment_level", "event_level"):
        for key, value in want[level].items():
            assert got[level][key] == pytest.approx(value, abs=1e-12), (level, key)


def random_videos(rng, n, c=25, t=10, density=0.3):
    return [(rng.random((c, t)) < density).astype(int) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_random_predictions_match_the_official_procedure(seed):
    rng = np.random.default_rng(seed)
    n = 40
    # sparse truth like LLP's (a few classes per video), predictions of varied density
    ga = [(rng.random((25, 10)) < 0.08).astype(int) for _ in range(n)]
    gv = [(rng.random((25, 10)) < 0.05).astype(int) for _ in range(n)]
    pa = random_videos(rng, n, density=[0.02, 0.1, 0.3][seed % 3])
    pv = random_videos(rng, n, density=[0.05, 0.2, 0.5][seed % 3])
    assert_same(parsing_scores(pa, pv, ga, gv), naive_scores(pa, pv, ga, gv))


def test_predictions_near_the_truth_exercise_the_tiou_rule():
    """Shifted and stretched copies of true events: tIoU around 0.5 either way."""
    rng = np.random.default_rng(7)
    ga, gv, pa, pv = [], [], [], []
    for _ in range(60):
        g = np.zeros((25, 10), int)
        for c in rng.choice(25, 3, replace=False):
            s = int(rng.integers(0, 10))
            g[c, s:int(rng.integers(s + 1, 11))] = 1
        p = np.roll(g, int(rng.integers(-2, 3)), axis=1)
        p[:, rng.integers(0, 10)] ^= 1  # split or extend some events
        ga.append(g)
        gv.append(g * (rng.random((25, 1)) < 0.5))
        pa.append(p)
        pv.append(p * (rng.random((25, 1)) < 0.5))
    assert_same(parsing_scores(pa, pv, ga, gv), naive_scores(pa, pv, ga, gv))


def test_odd_but_valid_inputs():
    z = np.zeros((25, 10), int)
    full = np.ones((25, 10), int)
    edge = z.copy()
    edge[3, 0] = edge[3, 9] = 1  # events at both ends of the clip
    edge[4, 9] = 1
    only_audio = z.copy()
    only_audio[0, 2:7] = 1  # a video with no visual event at all
    cases = [
        (z, z, z, z),  # nothing predicted, nothing there: all true negatives
        (z, z, only_audio, z),  # empty predictions
        (edge, z, edge, z),  # exact hits at clip ends
        (edge, edge, edge, z),  # visual false positives where nothing is seen
        (full, full, only_audio, z),  # everything predicted
        (only_audio, only_audio, only_audio, z),
    ]
    pa, pv, ga, gv = (list(x) for x in zip(*cases, strict=True))
    got = parsing_scores(pa, pv, ga, gv)
    assert_same(got, naive_scores(pa, pv, ga, gv))
    one = parsing_scores([z], [z], [z], [z])  # the official "all true negatives" = 1.0
    assert all(v == 1.0 for level in ("segment_level", "event_level")
               for v in one[level].values())
    hit = parsing_scores([edge], [z], [edge], [z])
    assert hit["segment_level"]["audio"] == 1.0 and hit["event_level"]["audio"] == 1.0
    assert hit["segment_level"]["visual"] == 1.0  # no visual event, none predicted


def test_tiou_half_counts_and_runs_are_maximal():
    g = np.zeros((1, 10), int)
    g[0, 0:4] = 1
    p = np.zeros((1, 10), int)
    p[0, 2:4] = 1  # intersection 2, union 4: exactly 0.5, a hit
    assert parsing_scores([p], [p], [g], [g])["event_level"]["audio"] == 1.0
    p2 = np.zeros((1, 10), int)
    p2[0, 3:6] = 1  # intersection 1, union 6: a false positive and a miss
    assert parsing_scores([p2], [p2], [g], [g])["event_level"]["audio"] == 0.0
    row, start, end = runs(np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1, 1]]))
    assert list(zip(start, end, strict=True)) == [(0, 2), (3, 4), (6, 10)]


def test_videos_of_different_lengths_and_bad_input():
    rng = np.random.default_rng(3)
    shapes = [(5, 10), (5, 7), (5, 12)]
    pa = [(rng.random(s) < 0.3).astype(int) for s in shapes]
    pv = [(rng.random(s) < 0.3).astype(int) for s in shapes]
    ga = [(rng.random(s) < 0.2).astype(int) for s in shapes]
    gv = [(rng.random(s) < 0.2).astype(int) for s in shapes]
    assert_same(parsing_scores(pa, pv, ga, gv), naive_scores(pa, pv, ga, gv))
    with pytest.raises(AvlocError, match="no videos"):
        parsing_scores([], [], [], [])
    with pytest.raises(AvlocError, match="shapes"):
        parsing_scores(pa[:1], pv[:1], ga[1:2], gv[:1])
    with pytest.raises(AvlocError, match="other than 0/1"):
        parsing_scores([pa[0] * 2], pv[:1], ga[:1], gv[:1])


def test_table_prints_both_levels_in_percent():
    z = np.zeros((2, 10), int)
    text = format_parsing_table(parsing_scores([z], [z], [z], [z]))
    assert "segment-level" in text and "event-level" in text
    assert "Type@AV" in text and "Event@AV" in text and "100.0" in text
