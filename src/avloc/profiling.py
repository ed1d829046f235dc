"""Measuring helpers shared by the benchmarks and the memory tests."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch.profiler import ProfilerActivity, profile


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak CPU bytes allocated while `fn` runs (its own frees subtracted), from the
    profiler's allocation events: exact, and independent of timing or other processes."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    mem = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    live: dict[int, int] = {}
    current = peak = 0
    for e in mem:
        addr, size = e["args"]["Addr"], e["args"]["Bytes"]
        if size > 0:
            live[addr] = size
            current += size
        elif addr in live:  # blocks allocated before the window do not count
            current -= live.pop(addr)
        peak = max(peak, current)
    return peak
