"""Shared fixtures. Real data is read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AVLOC_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data folder {path} is absent (set AVLOC_SHARED_DATA to its location)")
    return path


@pytest.fixture
def ave_dir() -> Path:
    """The real AVE annotation/split files (no full feature files)."""
    return _shared("ave")


@pytest.fixture
def anet_dir() -> Path:
    """The real ActivityNet 1.2 annotations in the W-TALC .npy layout."""
    return _shared("activitynet12")


@pytest.fixture(scope="module")
def thumos_dir() -> Path:
    """The real THUMOS'14 annotations: ActionFormer's thumos14.json."""
    return _shared("thumos14")


@pytest.fixture(scope="module")
def llp_dir() -> Path:
    """The real LLP annotation CSVs (AVVP-ECCV20's data/; no features)."""
    return _shared("llp")


@pytest.fixture(scope="module")
def real_video() -> Path:
    """A real 10-second AudioSet clip (speech and a dog)."""
    return _shared("video") / "BjCEufrlXm4.mp4"


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules with tiny network inputs: one thread is as fast and avoids OpenMP barrier
    stalls (10x slowdowns) when other processes share the cores, as on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def action_run(tmp_path_factory) -> tuple[Path, Path]:
    """(a small generic-layout *action* dataset, a run trained on it): the embedded synthetic
    data converted to the generic layout with "task": "action", so it is scored by mAP."""
    import json

    from avloc.config import load_config
    from avloc.data import load_dataset
    from avloc.data.convert import convert_to_generic
    from avloc.train import train

    root = tmp_path_factory.mktemp("action")
    synth = load_config("demo", ["data.synth_videos=80", "data.synth_classes=4",
                                 "data.synth_background_videos=0"])
    convert_to_generic(load_dataset(synth.data, None), root / "data")
    path = root / "data" / "annotations.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc | {"task": "action"}))
    cfg = load_config("demo", ["data.format=generic", "model.d_x=32", "train.epochs=15",
                               "train.progress=false", "train.batch_size=16"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, root / "data", root / "run")
    finally:
        torch.set_num_threads(threads)
    return root / "data", root / "run"


# ---- a real browser, for the pages of `avloc view` --------------------------------------------
def chromium() -> str | None:
    for name in (os.environ.get("AVLOC_CHROMIUM"), "chromium", "chromium-headless-shell",
                 "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium to drive: apt-get install chromium (.ci/run installs it), "
                    "or set AVLOC_CHROMIUM to a Chromium binary")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe)
        yield b
        b.close()


def checked_page(browser, width: int, height: int):
    """A page of that size; at its end, no script error may have happened on it."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert errors == [], errors  # no script error on any page


@pytest.fixture
def page(browser):
    yield from checked_page(browser, 1400, 900)
