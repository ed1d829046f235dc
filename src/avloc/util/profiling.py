"""Measuring helpers shared by the benchmarks and the memory tests: peak CPU bytes, and
the model's matmul FLOPs."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def count_flops(
    cfg: Any, audio_dim: int, visual_dim: int, num_classes: int, L: int,
    backward: bool = False,
) -> int:
    """Matmul FLOPs (2 per multiply-add) of avloc's model (settings `cfg`, a ModelConfig) on
    one video of L snippets, for FLOP-utilisation benchmarks; element-wise work
    (normalise, soft-max, tanh, losses) is not counted.

    Forward by default. With backward=True, forward + backward: every matmul's backward
    costs twice its forward (gradients of both operands), except the embeddings f_u, f_v,
    whose input (the features) needs no gradient. Attention recomputed inside a fused
    backward kernel is not counted: these are the model's FLOPs, not the kernel's.
    """
    d = cfg.d_x
    embed = 0
    if cfg.modality in ("av", "audio"):
        embed += 2 * L * audio_dim * d
    if cfg.modality in ("av", "visual"):
        embed += 2 * L * visual_dim * d
    # per stage: one projection P = X_u-hat W (L d^2), then per direction scores (L^2 d)
    # and the weighted sum (L^2 d)
    fusion = cfg.stages * (2 * L * d * d + 2 * (4 * L * L * d))
    fused = 2 * d if cfg.modality == "av" else d
    head = 2 * L * fused * (num_classes + 1)
    if cfg.head == "parsing":  # per stream: events, mu and, attentive, two attention layers
        outputs = num_classes * (3 if cfg.parsing_pool == "attention" else 1) + cfg.parsing_mu
        head = 2 * L * fused * outputs
    if backward:
        return int(2 * embed + 3 * (fusion + head))
    return int(embed + fusion + head)
