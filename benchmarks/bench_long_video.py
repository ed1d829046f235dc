"""Inference on one long video: memory-efficient (SDPA) vs explicit L x L cross attention.

    .venv/bin/python benchmarks/bench_long_video.py [--length 5625] [--device cpu|cuda]
        [--repeats 2] [--amp] [--skip-model]

An hour of video at 0.64 s a snippet is L = 5,625 snippets. Two measurements, each for
both forms in the same run, alternating so that a busy machine slows both alike:

1. The attention part: one direction of Eq. 1-2 (scores, soft-max over the keys with a
   padding mask, weighted sum) for (1, L, d_x) inputs, d_x = 1024. Peak memory is what
   the call allocates above what existed before it, its output included.
2. The whole model: the paper's 2-stage model (d_x 1024, open-max, ActivityNet feature
   sizes: VGGish audio 128, I3D visual 2048, 100 classes) on the whole video, as
   `avloc eval` runs it (inference mode, model.attention=efficient vs explicit).

Peak memory on CPU comes from the profiler's allocation events (exact, independent of
other processes); on CUDA from torch.cuda.max_memory_allocated. Time is the best of
--repeats; on CPU also CPU time (time.process_time), which a shared machine inflates less.
Target: attention-part peak of the efficient form <= 1/10 of the explicit one's, time no
worse.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from avloc.config import ModelConfig
from avloc.model import AVLocModel, cross_attention_efficient, cross_attention_explicit
from avloc.util.profiling import cpu_peak_bytes

MiB = 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    return cpu_peak_bytes(fn)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def compare(
    name: str, forms: dict[str, Callable[[], object]], device: torch.device, repeats: int
) -> dict[str, dict[str, float]]:
    """Peak memory once per form, then `repeats` alternating timed calls per form."""
    res: dict[str, dict[str, float]] = {}
    for form, fn in forms.items():
        fn()  # warm-up: kernels, allocator caches
        res[form] = {"peak_mib": peak_bytes(fn, device) / MiB, "wall": [], "cpu": []}
    for _ in range(repeats):
        for form, fn in forms.items():
            wall, cpu = timed(fn, device)
            res[form]["wall"].append(wall)
            res[form]["cpu"].append(cpu)
    for r in res.values():
        r["wall"], r["cpu"] = min(r["wall"]), min(r["cpu"])
    e, x = res["efficient"], res["explicit"]
    print(f"\n{name}")
    for form, r in res.items():
        print(f"  {form:9s}  peak {r['peak_mib']:8.1f} MiB   wall {r['wall']:7.2f} s   "
              f"CPU {r['cpu']:7.2f} s")
    print(f"  ratio efficient/explicit: peak memory {e['peak_mib'] / x['peak_mib']:.3f}, "
          f"wall time {e['wall'] / x['wall']:.2f}, CPU time {e['cpu'] / x['cpu']:.2f}")
    return res


def fused_kernel_available(q: torch.Tensor, mask: torch.Tensor) -> str:
    """CUDA only: does a fused (linear-memory) SDPA kernel accept this shape and dtype?"""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
             SDPBackend.CUDNN_ATTENTION]
    try:
        with sdpa_kernel(fused):
            F.scaled_dot_product_attention(q[:, None], q[:, None], q[:, None],
                                           attn_mask=mask[:, None, None, :], scale=1.0)
        return "yes"
    except RuntimeError as e:
        return f"NO, SDPA falls back to the L x L math kernel ({str(e).splitlines()[0][:120]})"


def attention_part(
    L: int, d: int, device: torch.device, dtype: torch.dtype, repeats: int
) -> dict[str, dict[str, float]]:
    """Measurement 1: one direction of Eq. 1-2 in both forms."""
    q, k = (F.normalize(torch.randn(1, L, d, device=device), dim=-1).to(dtype) for _ in "qk")
    v = torch.randn(1, L, d, device=device, dtype=dtype)
    mask = torch.ones(1, L, dtype=torch.bool, device=device)
    if device.type == "cuda":
        print(f"fused SDPA kernel for head size {d}, {dtype}: {fused_kernel_available(q, mask)}")

    def attention(fn):
        def run():
            with torch.inference_mode():
                return fn(q, k, v, mask)
        return run

    return compare("attention part: one direction of Eq. 1-2, (1, L, d_x)", {
        "efficient": attention(cross_attention_efficient),
        "explicit": attention(lambda *a: cross_attention_explicit(*a)[0]),
    }, device, repeats)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=5625, help="snippets in the video")
    ap.add_argument("--d-x", type=int, default=1024)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (as train.amp=true)")
    ap.add_argument("--skip-model", action="store_true", help="only the attention part")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    L, d = args.length, args.d_x
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device {device} ({name or platform.machine()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, L = {L}, d_x = {d}, amp = {args.amp}")
    torch.manual_seed(0)

    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)
    mask = torch.ones(1, L, dtype=torch.bool, device=device)
    part = attention_part(L, d, device, torch.bfloat16 if args.amp else torch.float32,
                          args.repeats)
    e, x = part["efficient"], part["explicit"]
    memory_met = e["peak_mib"] <= x["peak_mib"] / 10
    time_met = {k: e[k] <= x[k] for k in ("wall", "cpu")}
    if not args.skip_model:
        audio = torch.randn(1, L, 128, device=device)
        visual = torch.randn(1, L, 2048, device=device)
        models = {}
        for form in ("efficient", "explicit"):
            cfg = ModelConfig(d_x=d, stages=2, attention=form)
            torch.manual_seed(0)
            models[form] = AVLocModel(cfg, 128, 2048, 100).to(device).eval()

        def forward(model):
            def run():
                with torch.inference_mode(), amp:
                    return model(audio, visual, mask)["log_p"]
            return run

        whole = compare("whole 2-stage model, inference on one video", {
            f: forward(m) for f, m in models.items()}, device, args.repeats)
        same = torch.allclose(forward(models["efficient"])(), forward(models["explicit"])(),
                              atol=1e-2 if args.amp else 1e-4)
        print(f"  same log-probabilities from both forms: {same}")
        del whole
    verdict = {True: "met", False: "NOT met"}
    print(f"\ntarget (attention part): peak <= 1/10 of explicit: {verdict[memory_met]}; "
          f"time no worse: {verdict[time_met['wall']]} (wall), {verdict[time_met['cpu']]} (CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
