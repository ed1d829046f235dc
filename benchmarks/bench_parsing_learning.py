"""avloc's parsing model against an independent HAN-like baseline on LLP-structured data,
both scored as the LLP protocol scores them (thresholds 0.5) and with thresholds tuned on
validation, over several seeds.

    .venv/bin/python benchmarks/bench_parsing_learning.py [--epochs 20] [--seeds 0 1 2]
        [--videos 10000] [--only NAME ...] [--data ../shared/data/llp]

Data: `data.format=llp_synthetic` laid on the real LLP lists and validation / test events
(`--data`, default ../shared/data/llp or $AVLOC_SHARED_DATA/llp; the embedded statistics
when absent), the first `--videos` training clips. Generated features, not real ones.

The baseline is written here, apart from avloc's model: HAN (Tian, Li and Xu, ECCV 2020,
github.com/YapengTian/AVVP-ECCV20 `nets/net_audiovisual.py`, `main_avvp.py`) as its paper
describes it: linear embeddings to 512, one hybrid attention layer (self-attention and
cross-modal attention with residuals, layer norms and a feed-forward block, shared by the
two modalities), per-segment sigmoid event probabilities of each modality, attentive MMIL
pooling over time and modality, BCE on the video-level prediction plus the guided
per-modality terms with label smoothing (audio 1.0, visual 0.9), Adam lr 3e-4 with a step
decay (x0.1 every 10 epochs), batch 16; the best epoch by validation segment-level Type@AV
at 0.5. avloc's variants are `avloc.train.train` with the `llp` preset and overrides.

Both are scored by the same code on the same test clips: the official rule (event c in
segment t of a modality when its video-level probability and the modality's probability
at t are >= 0.5; `evaluate.ParsingSplit`, equal to the AVVP-ECCV20 metrics) and, beside
it, with the three thresholds tuned on the validation split (`tune_parsing_thresholds`).
One CPU thread; runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avloc.config import LocalizeConfig, load_config
from avloc.data import load_dataset
from avloc.data.base import Dataset, Video
from avloc.scoring.evaluate import ParsingSplit
from avloc.scoring.predict import VideoPrediction, predict
from avloc.scoring.tune import tune_parsing_thresholds

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVLOC_SHARED_DATA", REPO.parent / "shared" / "data")) / "llp"
NUMBERS = (("segment_level", "type_av"), ("segment_level", "event_av"),
           ("event_level", "type_av"), ("event_level", "event_av"))
# name: the llp preset's overrides (the baseline is "HAN-like baseline")
VARIANTS: dict[str, list[str]] = {
    "avloc llp preset": [],
    "dropout 0.3": ["model.dropout=0.3"],
    "dropout 0.1": ["model.dropout=0.1"],
    "dropout 0.1, 1 stage": ["model.dropout=0.1", "model.stages=1"],
}
BASELINE = "HAN-like baseline"


# ---- the baseline ---------------------------------------------------------------------------
class HybridAttention(nn.Module):
    """HAN's layer for one modality: x + cross-modal attention to the other + self-attention,
    layer norm, then a residual feed-forward block and layer norm."""

    def __init__(self, d: int, ff: int = 512, dropout: float = 0.1):
        super().__init__()
        self.self_att = nn.MultiheadAttention(d, 1, dropout=dropout, batch_first=True)
        self.cross_att = nn.MultiheadAttention(d, 1, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(ff, d))
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in range(3))

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        cross = self.cross_att(x, other, other, need_weights=False)[0]  # (B, T, d)
        own = self.self_att(x, x, x, need_weights=False)[0]  # (B, T, d)
        x = self.norm1(x + self.drops[0](cross) + self.drops[1](own))
        return self.norm2(x + self.drops[2](self.ff(x)))


class HANLike(nn.Module):
    """Embeddings, one hybrid attention layer shared by both modalities, MMIL pooling."""

    def __init__(self, da: int, dv: int, classes: int, d: int = 512):
        super().__init__()
        self.fc_a, self.fc_v = nn.Linear(da, d), nn.Linear(dv, d)
        self.layer = HybridAttention(d)
        self.prob, self.time_att, self.modality_att = (nn.Linear(d, classes) for _ in range(3))

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, T, D_a), (B, T, D_v) -> video (B, C), audio and visual video-level (B, C),
        per-segment probabilities (B, T, 2, C)."""
        xa, xv = self.fc_a(a), self.fc_v(v)  # (B, T, d)
        xa, xv = self.layer(xa, xv), self.layer(xv, xa)
        x = torch.stack([xa, xv], dim=2)  # (B, T, 2, d)
        frame = torch.sigmoid(self.prob(x))  # (B, T, 2, C)
        weighted = self.time_att(x).softmax(dim=1) * frame  # (B, T, 2, C) over time
        video = (weighted * self.modality_att(x).softmax(dim=2)).sum(dim=(1, 2))  # (B, C)
        return video, weighted[:, :, 0].sum(1), weighted[:, :, 1].sum(1), frame


def _stack(videos: list[Video]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = torch.from_numpy(np.stack([v.audio for v in videos]))  # (N, T, D_a)
    v = torch.from_numpy(np.stack([v.visual for v in videos]))  # (N, T, D_v)
    return a, v, torch.from_numpy(np.stack([x.labels for x in videos]))  # (N, C)


def _bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


@torch.no_grad()
def han_predictions(model: HANLike, videos: list[Video]) -> list[VideoPrediction]:
    model.eval()
    a, v, _ = _stack(videos)
    video, _, _, frame = model(a, v)
    out = []
    for i, x in enumerate(videos):
        audio, visual = frame[i, :, 0].numpy(), frame[i, :, 1].numpy()  # (T, C)
        either = np.maximum(audio, visual)
        p = np.concatenate([1 - either.max(1, keepdims=True), either], axis=1)
        out.append(VideoPrediction(x.vid, p, either.max(1), audio, visual, video[i].numpy()))
    return out


def train_han(ds: Dataset, epochs: int, seed: int
              ) -> tuple[list[VideoPrediction], list[VideoPrediction]]:
    """Train the baseline; its validation and test predictions at the best epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    da, dv = ds.feature_dims
    model = HANLike(da, dv, ds.num_classes)
    optim = torch.optim.Adam(model.parameters(), lr=3e-4)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=10, gamma=0.1)
    a, v, y = _stack(ds.splits["train"])
    smooth_a, smooth_v = y, 0.9 * y + 0.05  # HAN's guided targets, a y + (1 - a) / 2
    best, state = -1.0, None
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(y)), -(-len(y) // 16)):
            video, pa, pv, _ = model(a[idx], v[idx])
            loss = _bce(video, y[idx]) + _bce(pa, smooth_a[idx]) + _bce(pv, smooth_v[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
        sched.step()
        val = ParsingSplit(ds, han_predictions(model, ds.splits["val"]))
        score = val.metrics(LocalizeConfig(), ["segment_level"], False)["segment_level"]
        if score["type_av"] > best:
            best, state = score["type_av"], {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(state)
    return han_predictions(model, ds.splits["val"]), han_predictions(model, ds.splits["test"])


# ---- avloc -----------------------------------------------------------------------------------
def train_avloc(overrides: list[str], ds: Dataset, tmp: Path, epochs: int, seed: int,
                videos: int) -> tuple[list[VideoPrediction], list[VideoPrediction]]:
    """Train the llp preset with `overrides` on `ds`; its predictions with best.pt."""
    from avloc.checkpoint import load_model
    from avloc.train import train

    cfg = load_config("llp", [*base_overrides(epochs, seed, videos), *overrides])
    out = tmp / f"run{len(list(tmp.iterdir()))}"
    with contextlib.redirect_stdout(io.StringIO()):
        train(cfg, None, out, dataset=ds)
    model, _, _ = load_model(out)
    return predict(model, ds.splits["val"]), predict(model, ds.splits["test"])


def base_overrides(epochs: int, seed: int, videos: int) -> list[str]:
    return ["data.format=llp_synthetic", f"data.synth_videos={videos}", f"train.epochs={epochs}",
            f"train.seed={seed}", "train.progress=false"]


def scores(ds: Dataset, val: list[VideoPrediction], test: list[VideoPrediction]
           ) -> dict[str, dict]:
    """Test F-scores at the official 0.5 and at thresholds tuned on validation."""
    cfg = load_config("llp", ["data.format=llp_synthetic"])
    tuned = tune_parsing_thresholds(ds, val, cfg, "segment_level.type_av")
    split = ParsingSplit(ds, test)
    return {"official": split.metrics(LocalizeConfig()), "tuned": split.metrics(tuned)}


def _cell(values: list[float]) -> str:
    x = 100 * np.array(values)
    return f"{x.mean():5.1f} ± {x.std():3.1f}" if len(x) > 1 else f"{x[0]:5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--videos", type=int, default=10000, help="training clips")
    ap.add_argument("--only", nargs="*", help="variant names (default: all, and the baseline)")
    ap.add_argument("--data", type=Path, default=DATA if (DATA / "AVVP_train.csv").is_file()
                    else None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"python {sys.version.split()[0]}, one thread; {args.epochs} epochs, "
          f"{args.videos} training clips, data {args.data or 'embedded statistics'}")
    names = [n for n in [BASELINE, *VARIANTS] if not args.only or n in args.only]
    cfg = load_config("llp", base_overrides(args.epochs, 0, args.videos))
    with contextlib.redirect_stderr(io.StringIO()):
        ds = load_dataset(cfg.data, args.data)
    head = " | ".join(f"{lv[:3]} {k}" for lv, k in NUMBERS)
    print(f"{'variant':<34} {'protocol':<9} | {head} | thresholds (video, audio, visual)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows: dict[str, list[dict]] = {"official": [], "tuned": []}
            start = time.perf_counter()
            for seed in args.seeds:
                if name == BASELINE:
                    val, test = train_han(ds, args.epochs, seed)
                else:
                    val, test = train_avloc(VARIANTS[name], ds, Path(tmp), args.epochs,
                                            seed, args.videos)
                for protocol, m in scores(ds, val, test).items():
                    rows[protocol].append(m)
            seconds = (time.perf_counter() - start) / len(args.seeds)
            for protocol, ms in rows.items():
                cells = " | ".join(_cell([m[lv][k] for m in ms]) for lv, k in NUMBERS)
                t = [", ".join(f"{m['thresholds'][k]:.2f}" for k in ("video", "audio", "visual"))
                     for m in ms]
                print(f"{name:<34} {protocol:<9} | {cells} | {'; '.join(t)}", flush=True)
            print(f"{'':<34} ({seconds:.0f} s a seed)", flush=True)


if __name__ == "__main__":
    main()
