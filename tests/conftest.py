"""Shared fixtures. Real data is read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
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
