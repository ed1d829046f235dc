"""`avloc view` for each task: parsing (audio and visual tracks, events judged as the LLP
event level judges them, the LLP F-scores equal to `avloc score`'s), event data (snippet
accuracy, the AVE protocol) and detection, each drawn in a real browser at 1366 px."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import checked_page
from test_view import CHART, known_folder, read_script, series, track

from avloc.data.base import Timing
from avloc.scoring.results import CasRecord, cas_path, write_cas
from avloc.view import build_view

CLASSES = ["Dog", "Helicopter", "Speech"]
# video: results (label, modality, start, end, score) and truth (label, modality, start, end)
PARSING = {
    "llp_test_00000": ([("Helicopter", "audio", 0, 10, 0.9), ("Helicopter", "visual", 0, 10, 0.8)],
                       [("Helicopter", "audio", 0, 10), ("Helicopter", "visual", 0, 10)]),
    "clip_b": ([("Dog", "audio", 2, 5, 0.7), ("Speech", "visual", 0, 3, 0.6)],
               [("Dog", "audio", 2, 6), ("Speech", "audio", 0, 10), ("Dog", "visual", 1, 4)]),
}


def parsing_folder(root: Path) -> Path:
    """An `avloc eval --out` folder of a parsing model: CAS files with the audio and visual
    tracks, results.json with a modality per event, ground_truth.json with one entry per
    modality (an event heard and seen is listed twice, once per modality)."""
    rng = np.random.default_rng(0)
    results, database = {}, {}
    for vid, (pred, truth) in PARSING.items():
        audio, visual = (rng.uniform(0, 0.4, (10, 3)).astype(np.float32) for _ in range(2))
        for label, m, a, b, _ in pred:
            (audio if m == "audio" else visual)[a:b, CLASSES.index(label)] = 0.8
        either = np.maximum(audio, visual)
        write_cas(cas_path(root, vid), CasRecord(
            vid, either, 1 - either.max(1), either.max(1), CLASSES, Timing(1.0), 10.0,
            {"task": "parsing", "checkpoint": "t", "source": "dataset x, test"}, audio, visual,
            either.max(0)))
        results[vid] = [{"label": c, "modality": m, "segment": [float(a), float(b)],
                         "score": s} for c, m, a, b, s in pred]
        database[vid] = {"subset": "test", "duration": 10.0, "annotations": [
            {"label": c, "modality": m, "segment": [a, b]} for c, m, a, b in truth]}
    made_by = {"task": "parsing", "subset": "test", "snippet_seconds": 1.0,
               "thresholds": {"video": 0.5, "audio": 0.5, "visual": 0.5,
                              "source": "the LLP protocol"}}
    (root / "results.json").write_text(json.dumps({"results": results, "avloc": made_by}))
    (root / "ground_truth.json").write_text(json.dumps({"database": database}))
    return root


def test_parsing_index_scores_are_those_of_avloc_score_and_events_are_judged(tmp_path):
    from avloc.scoring.score_files import score_results

    out = parsing_folder(tmp_path / "ev")
    build_view(out)
    [index] = read_script(out / "view" / "index.js", "avlocIndex")
    want, _ = score_results(out / "ground_truth.json", out / "results.json")
    assert index["task"] == "parsing" and index["ap"] is None
    for level in ("segment_level", "event_level"):
        assert index["summary"][level] == pytest.approx(
            {k: want[level][k] for k in index["summary"][level]}, abs=1e-12)
    rows = {r["id"]: r for r in index["videos"]}
    assert rows["llp_test_00000"]["scores"]["segment_level.type_av"] == 1.0
    b = rows["clip_b"]
    # audio Dog 2-5 against 2-6: 3 segments of 4 in common, tIoU 0.75; Speech never heard
    assert b["by_modality"]["audio"] == {"tp": 1, "false_positive": 0, "missed": 1}
    assert b["by_modality"]["visual"] == {"tp": 0, "false_positive": 1, "missed": 1}
    _, doc = read_script(out / "view" / rows["llp_test_00000"]["file"], "avlocVideo")
    assert [t["key"] for t in doc["tracks"]] == ["gt_audio", "pred_audio", "heat_audio",
                                                 "gt_visual", "pred_visual", "heat_visual"]
    # the event heard and seen: once in each modality's truth track, found in both
    assert track(doc, "gt_audio")["items"] == [[0.0, 10.0, "Helicopter", "found"]]
    assert track(doc, "gt_visual")["items"] == [[0.0, 10.0, "Helicopter", "found"]]
    assert track(doc, "pred_audio")["items"] == [[0.0, 10.0, "Helicopter", 0.9, "tp"]]


def test_event_index_gives_the_pooled_snippet_accuracy(tmp_path):
    from avloc.scoring.metrics import snippet_accuracy
    from avloc.scoring.results import read_cas
    from avloc.scoring.segments import argmax_labels

    out = known_folder(tmp_path / "ave", snippets=6, seconds=1.0)
    for vid in ("clipA", "clipB", "clipC"):
        rec = read_cas(cas_path(out, vid))
        rec.meta["task"] = "event"
        write_cas(cas_path(out, vid), rec)
    build_view(out, gt=out / "truth.json")
    [index] = read_script(out / "view" / "index.js", "avlocIndex")
    truth = {"clipA": [0, 1, 1, 0, 0, 0], "clipB": [1, 1, 0, 0, 0, 0],
             "clipC": [0, 0, 1, 1, 1, 1]}  # dog = 1 where a segment starts a snippet
    preds = [argmax_labels(read_cas(cas_path(out, v)).p) for v in truth]
    want = snippet_accuracy(preds, [np.array(t) for t in truth.values()])
    assert index["task"] == "event"
    assert index["summary"] == {"accuracy": pytest.approx(want), "snippets": 18}


def fits(page) -> bool:
    """The index table is no wider than its panel (nothing cut off on the right)."""
    return page.evaluate("document.querySelector('#videos').scrollWidth <= "
                         "document.querySelector('#index .scroll').clientWidth")


@pytest.fixture
def small_page(browser):
    """A laptop's screen: 1366 x 768."""
    yield from checked_page(browser, 1366, 768)


def test_parsing_page_draws_both_modalities_and_the_f_scores(small_page, tmp_path):
    page = small_page
    out = parsing_folder(tmp_path / "ev")
    index, _ = build_view(out)
    page.goto(f"{index.as_uri()}#video=llp_test_00000")
    page.wait_for_function("document.body.dataset.openVideo === 'llp_test_00000'")
    ids = page.evaluate(f"{CHART}.getOption().series.map(s => s.id)")
    assert ids == ["gt_audio", "pred_audio", "heat_audio", "gt_visual", "pred_visual",
                   "heat_visual"]
    assert len(series(page, "gt_audio")) == len(series(page, "gt_visual")) == 1  # not twice
    summary = page.locator("#summary").inner_text()
    assert "LLP F-scores" in summary and "Type@AV" in summary and "event-level" in summary
    assert "the LLP protocol" in summary  # which thresholds decided the events
    assert "this video's LLP F-scores" in page.locator("#d-info").inner_text()
    assert "100.0" in page.locator("#d-info").inner_text()
    table = page.eval_on_selector_all("#segments tbody tr", "rs => rs.map(r => r.innerText)")
    assert any(r.startswith("visual: ground truth") and "event found" in r for r in table)
    assert fits(page)


def test_detection_and_event_pages_fit_and_explain_their_outcomes(small_page, tmp_path):
    page = small_page
    out = known_folder(tmp_path / "out")
    index, _ = build_view(out, gt=out / "truth.json")
    page.goto(f"{index.as_uri()}#video=clipC")
    page.wait_for_function("document.body.dataset.openVideo === 'clipC'")
    assert fits(page)
    rules = page.locator("#legend details.rules").text_content()
    assert "not judged" in rules and "G best" in rules and "instance missed" in rules
    assert "score = peak activation" in page.locator("#legend").inner_text()  # why > 1
    one = tmp_path / "one"
    one.mkdir()
    (one / "results.json").write_text(json.dumps({"results": {"solo": [
        {"label": "dog", "score": 1.067, "segment": [0.0, 2.0]}]}}))
    index, _ = build_view(one)
    page.goto(index.as_uri())  # one video: it opens at once
    page.wait_for_function("document.body.dataset.openVideo === 'solo'")
    assert page.title() == "one · avloc view"
