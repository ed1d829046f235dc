"""`avloc view`: the error diagnosis, the files it writes, and the page in a real browser
(Playwright driving Debian's Chromium: tracks, seeking the video, filters, long videos)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from avloc.cli import main
from avloc.data.base import Timing
from avloc.scoring.results import CasRecord, cas_path, write_cas
from avloc.util.errors import AvlocError
from avloc.view import build_view
from avloc.view.diagnose import diagnose

CLASSES = ["dog", "speech"]


# ---- which error each detection makes ------------------------------------------------------
def test_diagnose_names_each_kind_of_error_on_hand_made_cases():
    gt = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    gt_labels = ["dog", "dog", "speech"]
    dets = np.array([[10.0, 20.0],   # dog, exact: correct
                     [11.0, 19.0],   # dog again on the same instance: a duplicate
                     [30.0, 50.0],   # dog, tIoU 0.5 with [30, 40] is 10/20 = 0.5: correct
                     [50.0, 80.0],   # dog over the speech instance only: wrong class
                     [90.0, 95.0]])  # nothing there: false positive (but 5th of 3: not judged)
    labels = ["dog", "dog", "dog", "dog", "dog"]
    kinds, missed = diagnose(dets, labels, np.array([0.9, 0.8, 0.7, 0.6, 0.5]), gt, gt_labels)
    assert kinds == ["tp", "false_positive", "tp", "", ""]  # only the G = 3 best are judged
    assert missed == [False, False, True]

    kinds, missed = diagnose(dets[[3, 4]], ["dog", "dog"], np.array([0.9, 0.8]), gt, gt_labels)
    assert kinds == ["wrong_class", "false_positive"] and missed == [True, True, True]

    kinds, _ = diagnose(np.array([[12.0, 40.0]]), ["dog"], np.array([1.0]), gt[:1], ["dog"])
    assert kinds == ["boundaries"]  # tIoU 8/30 with its instance: found, badly bounded
    kinds, missed = diagnose(np.zeros((0, 2)), [], np.zeros(0), gt, gt_labels)
    assert kinds == [] and missed == [True, True, True]
    kinds, missed = diagnose(dets[:1], ["dog"], np.array([0.3]), np.zeros((0, 2)), [])
    assert kinds == ["false_positive"] and missed == []  # a background-only video


# ---- a known output folder -------------------------------------------------------------------
RESULTS = {
    "clipA": [{"label": "dog", "score": 0.9, "segment": [1.0, 3.0]},
              {"label": "speech", "score": 0.4, "segment": [3.5, 5.0]}],
    "clipB": [{"label": "speech", "score": 0.8, "segment": [0.0, 2.0]}],
    "clipC": [{"label": "dog", "score": 0.7, "segment": [2.0, 4.0]}],
}
TRUTH = {
    "clipA": [{"label": "dog", "segment": [1.0, 3.0]}],
    "clipB": [{"label": "dog", "segment": [0.0, 2.0]}],
    "clipC": [{"label": "dog", "segment": [2.0, 4.0]}, {"label": "dog", "segment": [4, 6]}],
}


def known_folder(root: Path, snippets: int = 6, seconds: float = 1.0) -> Path:
    """OUT as avloc localize writes it, for three videos whose segments we choose."""
    rng = np.random.default_rng(0)
    for vid in RESULTS:
        cas = rng.uniform(0, 1, (snippets, 2)).astype(np.float32)  # (T, C)
        mu = cas.max(axis=1)  # (T,)
        write_cas(cas_path(root, vid), CasRecord(
            vid, cas, 1 - mu, mu, CLASSES, Timing(seconds), snippets * seconds,
            {"task": "action", "checkpoint": "test", "source": f"{vid}.mp4"}))
    (root / "results.json").write_text(json.dumps({"results": RESULTS}))
    gt = {"database": {v: {"subset": "test", "duration": 6.0, "annotations": a}
                       for v, a in TRUTH.items()}}
    (root / "truth.json").write_text(json.dumps(gt))
    return root


def track(doc: dict, key: str) -> dict:
    """One track of a video's data file."""
    return next(t for t in doc["tracks"] if t["key"] == key)


def read_script(path: Path, call: str) -> list:
    """The arguments of `call(...)` that a data script of the page makes."""
    text = path.read_text()
    assert text.startswith(f"{call}(") and text.endswith(");\n")
    return json.loads("[" + text[len(call) + 1:-3] + "]")


def test_the_index_holds_each_video_its_errors_and_per_class_ap(tmp_path, capsys):
    from avloc.config import parse_tiou
    from avloc.scoring.anet_json import read_ground_truth
    from avloc.scoring.metrics import detection_map

    out = known_folder(tmp_path / "out")
    assert main(["view", str(out), "--gt", str(out / "truth.json")]) == 0
    assert "3 videos" in capsys.readouterr().out
    [index] = read_script(out / "view" / "index.js", "avlocIndex")
    rows = {r["id"]: r for r in index["videos"]}
    assert list(rows) == ["clipA", "clipB", "clipC"]
    assert rows["clipB"]["errors"] == {"tp": 0, "boundaries": 0, "wrong_class": 1,
                                       "false_positive": 0, "missed": 1}
    assert rows["clipC"]["errors"]["missed"] == 1 and rows["clipC"]["errors"]["tp"] == 1
    assert rows["clipA"]["top"] == "dog" and rows["clipA"]["score"] == 0.9
    expected = detection_map(read_ground_truth(out / "truth.json"),
                             RESULTS, parse_tiou("0.5:0.95:0.05"), unknown_labels="drop")
    assert {c["label"]: c["ap"] for c in index["ap"]["classes"]} == expected["per_class_AP"]
    assert index["ap"]["average_mAP"] == expected["average_mAP"]

    n, doc = read_script(out / "view" / rows["clipA"]["file"], "avlocVideo")
    assert n == 0 and track(doc, "pred")["items"][1][:4] == [3.5, 5.0, "speech", 0.4]
    heat = track(doc, "heat")
    rows_bytes = np.frombuffer(base64.b64decode(heat["data"]), np.uint8)
    assert rows_bytes.shape == (len(heat["lanes"]) * 6,) and heat["lanes"][0] == "dog"
    assert [t["key"] for t in doc["tracks"]] == ["gt", "pred", "heat", "mu"]
    for name in ("index.html", "assets/echarts.min.js", "assets/view.js", "assets/view.css"):
        assert (out / "view" / name).stat().st_size > 1000
    html = (out / "view" / "index.html").read_text()
    assert "http" not in html  # nothing from the network


def test_a_failed_build_keeps_the_previous_report(tmp_path, capsys):
    out = known_folder(tmp_path / "out")
    build_view(out)
    before = (out / "view" / "index.js").read_bytes()
    (tmp_path / "other.json").write_text(json.dumps({"database": {"zzz": {
        "duration": 5.0, "annotations": [{"label": "dog", "segment": [0, 1]}]}}}))
    assert main(["view", str(out), "--gt", str(tmp_path / "other.json")]) == 1
    assert "none of the 3 videos" in capsys.readouterr().err
    assert (out / "view" / "index.js").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(AvlocError, match="no results file"):
        build_view(tmp_path)


def test_many_predicted_classes_share_the_last_lane(tmp_path):
    from avloc.view.tracks import LANES

    out = tmp_path / "out"
    out.mkdir()
    dets = [{"label": f"c{k:02d}", "score": 1 - k / 100, "segment": [k, k + 1.0]}
            for k in range(LANES + 2)]
    (out / "results.json").write_text(json.dumps({"results": {"v": dets}}))
    build_view(out)
    _, doc = read_script(out / "view" / "data" / "000000.js", "avlocVideo")
    assert track(doc, "pred")["lanes"] == [f"c{k:02d}" for k in range(LANES - 1)] + [
        "(other classes)"]
    assert [t["key"] for t in doc["tracks"]] == ["pred"]  # no CAS files: no heat map
    assert doc["duration"] == LANES + 2


# ---- in a real browser -----------------------------------------------------------------------
def open_video(page, index: Path, vid: str) -> None:
    page.goto(f"{index.as_uri()}#video={vid}")
    page.wait_for_function(f"document.body.dataset.openVideo === '{vid}'")


def listed(page) -> list[str]:
    return page.eval_on_selector_all("#videos tbody tr td.id", "tds => tds.map(t => t.textContent)")


CHART = "echarts.getInstanceByDom(document.getElementById('chart'))"


def series(page, name: str) -> list:
    """The data of one series of the chart as drawn: [start, end, lane, score, k] rows."""
    return page.evaluate(f"{CHART}.getOption().series.find(s => s.id === '{name}')"
                         ".data.map(d => d.value)")


def lanes(page, axis: int) -> list[str]:
    return page.evaluate(f"{CHART}.getOption().yAxis[{axis}].data")


def test_tracks_show_the_segments_and_a_click_seeks_the_video(page, tmp_path):
    pytest.importorskip("av", reason="the video extra is not installed: pip install 'avloc[video]'")
    from testvideo import make_test_video

    out = known_folder(tmp_path / "out")
    (tmp_path / "videos").mkdir()
    make_test_video(tmp_path / "videos" / "clipA.mp4", 6.0,
                    [(0.0, (90, 90, 90)), (1.0, (200, 40, 40)), (3.0, (90, 90, 90))])
    index, _ = build_view(out, gt=out / "truth.json", videos=tmp_path / "videos")
    open_video(page, index, "clipA")

    gt, pred = series(page, "gt"), series(page, "pred")
    assert [[s, e, lanes(page, 0)[k]] for s, e, k, *_ in gt] == [[1.0, 3.0, "dog"]]
    assert [[s, e, lanes(page, 1)[k], round(score, 3)] for s, e, k, score, _ in pred] == [
        [1.0, 3.0, "dog", 0.9], [3.5, 5.0, "speech", 0.4]]
    assert lanes(page, 2)[:2] == ["dog", "speech"]  # heat rows: the true class first
    table = page.eval_on_selector_all("#segments tbody tr", "rs => rs.map(r => r.innerText)")
    assert "correct" in table[1] and "poor" not in table[1]

    page.wait_for_function("document.getElementById('player').readyState >= 1")
    box = page.locator("#chart").bounding_box()
    x, y = page.evaluate(f"{CHART}.convertToPixel({{xAxisIndex: 1, yAxisIndex: 1}}, [4.25, 1])")
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function("document.querySelector('#chart').innerText.includes('0.400')")
    assert "speech" in page.locator("#chart").inner_text()  # the tooltip: class and score
    assert "t = 4.2" in page.locator("#readout").inner_text()  # the time under the pointer
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 3.5) < 0.01")
    assert page.locator("#segments tr.active").inner_text().startswith("predicted\tspeech")

    # clicking the timeline elsewhere seeks there
    x0, y0 = page.evaluate(f"{CHART}.convertToPixel({{xAxisIndex: 1, yAxisIndex: 1}}, [0.5, 0])")
    page.mouse.click(box["x"] + x0, box["y"] + y0)
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 0.5) < 0.05")


def test_the_real_clip_plays_in_the_page_and_seeks(page, tmp_path, real_video):
    out = known_folder(tmp_path / "out")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "clipA.mp4").symlink_to(real_video)  # the real 10-second clip
    index, _ = build_view(out, gt=out / "truth.json", videos=tmp_path / "videos")
    open_video(page, index, "clipA")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(10, abs=0.2)
    page.click("#segments tbody tr >> nth=2")  # the predicted speech segment, 3.5 s
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 3.5) < 0.01")


def test_the_list_filters_by_class_and_error_and_sorts_by_score(page, tmp_path):
    out = known_folder(tmp_path / "out")
    index, _ = build_view(out, gt=out / "truth.json")
    page.goto(index.as_uri())
    page.wait_for_selector("#videos tbody tr")
    assert listed(page) == ["clipA", "clipB", "clipC"]
    page.select_option("#f-class", "speech")
    assert listed(page) == ["clipA", "clipB"]
    page.select_option("#f-class", "")
    page.select_option("#f-error", "wrong_class")
    assert listed(page) == ["clipB"]
    page.select_option("#f-error", "missed")
    assert listed(page) == ["clipB", "clipC"]
    page.select_option("#f-error", "")
    page.fill("#f-score", "0.75")
    assert listed(page) == ["clipA", "clipB"]
    page.fill("#f-score", "")
    page.click("#videos th[data-key=score]")
    assert listed(page) == ["clipA", "clipB", "clipC"]  # 0.9, 0.8, 0.7: highest first
    page.click("#videos th[data-key=score]")
    assert listed(page) == ["clipC", "clipB", "clipA"]
    assert page.locator("#count").inner_text() == "3 of 3 videos"
    page.click("#videos tbody tr >> nth=1")
    page.wait_for_function("document.body.dataset.openVideo === 'clipB'")
    assert "clipB" in page.url


def test_long_and_ave_style_videos_draw_every_track(page, tmp_path):
    out = tmp_path / "long"
    known_folder(out, snippets=2000, seconds=0.64)
    index, _ = build_view(out)  # no ground truth: no ground-truth track, no outcomes
    open_video(page, index, "clipB")
    assert page.evaluate(f"{CHART}.getOption().series.map(s => s.id)") == ["pred", "heat", "mu"]
    assert len(series(page, "mu")) == 2000
    assert page.evaluate(f"{CHART}.getOption().xAxis[0].max") == pytest.approx(1280.0)
    assert page.locator("#f-error").is_hidden()

    short = known_folder(tmp_path / "ave", snippets=10, seconds=1.0)
    index, _ = build_view(short, gt=short / "truth.json")
    open_video(page, index, "clipC")
    assert len(series(page, "mu")) == 10 and len(series(page, "gt")) == 2
    assert "no video file" in page.locator("#d-info").inner_text()
    assert page.locator("#player").is_hidden()
