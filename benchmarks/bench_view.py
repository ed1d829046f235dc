"""`avloc view` on many long videos: build time, then page load, memory and per-video
opening time in a real browser (Playwright driving Debian's Chromium).

    .venv/bin/python benchmarks/bench_view.py [--videos 500] [--snippets 2000] [--classes 20]
                                              [--open 20] [--keep DIR]

Writes a localization output folder of generated videos (CAS files of `--snippets` snippets
of 0.64 s, ~20 predicted segments and ~8 ground-truth instances each, results.json and
ground_truth.json), runs build_view on it, then opens OUT/view/index.html from disk and
reports: time to the rendered index (navigation start to the table filled), the page's
JS heap (CDP Performance.getMetrics, JSHeapUsedSize) and the browser tab's memory after
loading, the time to open and draw each of `--open` videos in a row, and the heap after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from avloc.data.base import Timing
from avloc.scoring.results import CasRecord, cas_path, write_cas
from avloc.view import build_view

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-headless-shell")


def smooth_walk(rng: np.random.Generator, t: int, c: int) -> np.ndarray:
    """(T, C) activations in (0, 1) that rise and fall over tens of snippets, like a CAS."""
    steps = rng.standard_normal((t, c)) * 0.25  # (T, C)
    walk = np.cumsum(steps, axis=0) - 2.0
    return (1 / (1 + np.exp(-walk))).astype(np.float32)


def make_folder(out: Path, videos: int, snippets: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = [f"class{c:02d}" for c in range(classes)]
    timing = Timing(0.64)
    results, database = {}, {}
    for i in range(videos):
        vid = f"video_{i:05d}"
        cas = smooth_walk(rng, snippets, classes)  # (T, C)
        mu = cas.max(axis=1)  # (T,)
        duration = snippets * 0.64
        write_cas(cas_path(out, vid), CasRecord(vid, cas, 1 - mu, mu, names, timing, duration,
                                                {"task": "action", "checkpoint": "bench"}))
        starts = rng.uniform(0, duration - 30, size=28)  # (28,)
        lengths = rng.uniform(2, 30, size=28)
        labels = rng.integers(0, classes, size=28)
        results[vid] = [{"label": names[labels[k]], "score": float(rng.uniform()),
                         "segment": [float(starts[k]), float(starts[k] + lengths[k])]}
                        for k in range(20)]
        database[vid] = {"subset": "test", "duration": duration, "annotations": [
            {"label": names[labels[k]], "segment": [float(starts[k] + rng.uniform(-1, 1)),
                                                     float(starts[k] + lengths[k])]}
            for k in range(20, 28)]}
    (out / "results.json").write_text(json.dumps({"results": results}))
    (out / "ground_truth.json").write_text(json.dumps({"database": database}))


def browser_numbers(index: Path, vids: list[str], opened: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    exe = next((p for p in CHROMIUM if Path(p).exists()), None)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(index.as_uri())
        page.wait_for_function("performance.getEntriesByName('avloc-index').length > 0")
        load_ms = page.evaluate("performance.getEntriesByName('avloc-index')[0].startTime")
        scripts_ms = page.evaluate("performance.getEntriesByType('navigation')[0]"
                                   ".domContentLoadedEventEnd")
        heap = _heap(cdp)
        times = []
        for vid in vids[:opened]:
            t0 = page.evaluate(f"(() => {{ const t = performance.now(); "
                               f"location.hash = 'video={vid}'; return t; }})()")
            mark = f"avloc-open-{vid}"
            page.wait_for_function(f"performance.getEntriesByName('{mark}').length > 0")
            times.append(page.evaluate(f"performance.getEntriesByName('{mark}')[0].startTime") - t0)
            page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        heap_after = _heap(cdp)
        browser.close()
    return {"load_ms": load_ms, "scripts_ms": scripts_ms, "heap_mb": heap,
            "heap_after_mb": heap_after, "open_ms_median": float(np.median(times)),
            "open_ms_max": float(np.max(times))}


def _heap(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--snippets", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--open", type=int, default=20, help="videos opened one after another")
    ap.add_argument("--keep", help="write the folder here and keep it (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.keep or tempfile.mkdtemp(prefix="avloc-bench-view-"))
    try:
        t0 = time.perf_counter()
        make_folder(out, args.videos, args.snippets, args.classes)
        print(f"folder: {args.videos} videos x {args.snippets} snippets, {args.classes} classes "
              f"({time.perf_counter() - t0:.1f} s to generate)")
        t0, c0 = time.perf_counter(), time.process_time()
        index, n = build_view(out)
        print(f"build_view: {time.perf_counter() - t0:.1f} s wall, "
              f"{time.process_time() - c0:.1f} s CPU")
        size = sum(f.stat().st_size for f in (out / "view").rglob("*") if f.is_file())
        data = sum(f.stat().st_size for f in (out / "view" / "data").iterdir())
        print(f"view folder: {size / 2**20:.1f} MiB ({data / n / 1024:.0f} KiB per video file, "
              f"index.js {(out / 'view' / 'index.js').stat().st_size / 1024:.0f} KiB)")
        vids = [f"video_{i:05d}" for i in range(0, n, max(1, n // args.open))]
        b = browser_numbers(index, vids, args.open)
        print(f"page load: index rendered {b['load_ms']:.0f} ms after navigation start "
              f"(DOMContentLoaded: {b['scripts_ms']:.0f} ms); JS heap {b['heap_mb']:.1f} MiB")
        print(f"open a video (load its file, draw all tracks): median "
              f"{b['open_ms_median']:.0f} ms, max {b['open_ms_max']:.0f} ms over {args.open}; "
              f"JS heap after {b['heap_after_mb']:.1f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
