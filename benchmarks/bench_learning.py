"""What the method learns on synthetic data with the real benchmarks' structure.

    .venv/bin/python benchmarks/bench_learning.py background [--only NAME ...] [--seed 0]
    .venv/bin/python benchmarks/bench_learning.py fusion     [--only NAME ...] [--seed 0]
                                                  [--background-weight W] [--actions A]
    .venv/bin/python benchmarks/bench_learning.py trace      [--only NAME ...] [--epochs 12]
                                                  [--background-weight W] [--seed 0]
    .venv/bin/python benchmarks/bench_learning.py casl       [--only NAME ...] [--seed 0]
    .venv/bin/python benchmarks/bench_learning.py batching   [--epochs 12] [--background-weight W]
    .venv/bin/python benchmarks/bench_learning.py crops      [--actions A]
    .venv/bin/python benchmarks/bench_learning.py scores     [--only NAME ...] [--actions A]

background  AVE-structured data (`data.synth_events=ave`: AVE's event times, two in three
            events fill the clip; video-class oracle about 0.83): test snippet accuracy,
            the oracle, mu inside vs outside events and the share of background snippets
            labelled background, with and without background-only training videos, for the
            loss and model settings that decide whether the model finds background.
fusion      ActivityNet-1.2-structured hard data (`data.synth_task=action`, class groups
            sharing looks, sounds and a scene, AR(1) noise): the fusion ablation (audio,
            visual, plain fusion, 1-3 stages, without CASL or pseudo labels), with validation
            mAP per epoch (peak, last, drop after the peak), each loss term at the first and
            last epoch, and what the best checkpoint's attention, features and mu do.
trace       a fusion variant epoch by epoch, on the validation split: mAP, the mAP of a
            class oracle (only the ground-truth class's segments), video-level top-1,
            mu inside / outside the instances and segments per instance (where a decay of
            the validation mAP comes from).
casl        why L_cas sits at its margin: fusion variants (default: plain fusion and two
            stages, each also with loss.casl_center) trained as in `fusion`, then, over the
            test videos, the cosine distances L_cas compares for pairs sharing a class,
            its hinge, and how much of a fused feature is its video's rather than the
            snippet's own.
batching    the same action data: `data.batching` pad / bucket / shortest and W-TALC random
            crops (pad with data.max_seqlen), side by side: training seconds per epoch,
            padded / real snippets, the best validation mAP within a third of pad's
            training time, and the training time each needs to reach pad's best
            validation mAP.
crops       no training: for each batching choice, the padded / real snippets of an
            epoch and the share of training crops that hold no instance.
scores      fusion variants trained as in `fusion` with W-TALC's max segment score, their
            best checkpoint's validation and test mAP scored with max and with the
            outer-inner contrast (localize.segment_score=oic).

fusion, trace, casl, batching and crops use the `anet12` preset on ActivityNet-1.2-
structured data, or with `--actions thumos14` the `thumos14` preset on THUMOS'14-structured
data (`data.synth_actions=thumos14`: long videos, many short instances; 20 classes in 5
groups, 400 training videos; the same model scale and noise).

Every run is `avloc.train.train` on one CPU thread (torch.set_num_threads(1)), so variants
compare like with like on a shared machine; runs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config import load_config
from avloc.data import load_dataset
from avloc.data.base import Dataset, snippets_in_any
from avloc.data.batching import PairBatchSampler, crop_length, crop_window
from avloc.train import resume, train

BACKGROUND_BASE = ["data.format=synthetic", "data.synth_events=ave", "data.synth_classes=28",
                   "data.synth_videos=1200", "model.d_x=256", "train.lr=1e-3",
                   "train.epochs=15", "train.select_metric=accuracy"]
# BACKGROUND's rows select by accuracy alone (the ave preset's selection when they were
# measured; the preset's is now its own row, "... (the ave preset's selection)")
RAW = "model.attend_normalized=false"  # Eq. 2 as printed: the raw X attended
NORMALISED = "model.attend_normalized=true"  # the presets for real data
BACKGROUND = {  # name: overrides; each once with AVE's 178 background-only videos, once without
    "as printed (raw, weight 1)": [RAW, "loss.background_weight=1"],
    "raw, background_topk=false": [RAW, "loss.background_weight=1",
                                   "loss.background_topk=false"],
    "raw, weight 0.3": [RAW, "loss.background_weight=0.3"],
    "normalised, weight 1": [NORMALISED, "loss.background_weight=1"],
    "normalised, weight 0.3 (ave preset)": [NORMALISED, "loss.background_weight=0.3"],
    "normalised, weight 0.3, 30 epochs": [NORMALISED, "loss.background_weight=0.3",
                                          "train.epochs=30"],
    "normalised, weight 0.3, selected with mu separated (the ave preset's selection)": [
        NORMALISED, "loss.background_weight=0.3", "train.select_metric=accuracy_separated"],
    "normalised, weight 0.3, 30 epochs, selected with mu separated": [
        NORMALISED, "loss.background_weight=0.3", "train.epochs=30",
        "train.select_metric=accuracy_separated"],
    "1 stage, normalised, weight 0.3": [NORMALISED, "loss.background_weight=0.3",
                                        "model.stages=1"],
    "normalised, weight 0.3, gamma=0": [NORMALISED, "loss.background_weight=0.3",
                                        "loss.gamma=0"],
    "normalised, weight 0.3, tau=0.9": [NORMALISED, "loss.background_weight=0.3",
                                        "loss.pseudo_tau=0.9"],
    "normalised, weight 0.3, beta=0": [NORMALISED, "loss.background_weight=0.3",
                                       "loss.beta=0"],
    "normalised, weight 0.3, alpha=0": [NORMALISED, "loss.background_weight=0.3",
                                        "loss.alpha=0"],
    "normalised, weight 0.3, cont class term detached": [
        NORMALISED, "loss.background_weight=0.3", "loss.cont_detach_class=true"],
    "normalised, weight 0.3, pseudo labels renormalised": [
        NORMALISED, "loss.background_weight=0.3", "loss.pseudo_renormalize=true"],
    "plain fusion, weight 1": ["model.stages=0", "loss.background_weight=1"],
    "plain fusion, weight 0.3": ["model.stages=0", "loss.background_weight=0.3"],
}
ACTION_BASE = ["data.format=synthetic", "data.synth_task=action", "data.synth_classes=100",
               "data.synth_videos=600", "data.synth_background_videos=0",
               "data.synth_groups=20", "data.synth_group_share=0.5", "data.synth_noise=0.4",
               "data.synth_noise_corr=0.9", "model.d_x=256", "train.lr=1e-3"]
THUMOS_BASE = ["data.format=synthetic", "data.synth_task=action", "data.synth_actions=thumos14",
               "data.synth_classes=20", "data.synth_videos=400",
               "data.synth_background_videos=0", "data.synth_groups=5",
               "data.synth_group_share=0.5", "data.synth_noise=0.4",
               "data.synth_noise_corr=0.9", "model.d_x=256", "train.lr=1e-3"]
# W-TALC's max segment score, the action presets' until issue 28 (they now score by outer-inner
# contrast): every table of docs/benchmarks.md measured with these parts stays reproducible;
# `scores` measures both
PINNED = ["localize.segment_score=max"]
ACTIONS = {"anet12": [*ACTION_BASE, *PINNED], "thumos14": [*THUMOS_BASE, *PINNED]}
FUSION = {  # each at the preset's loss.background_weight unless --background-weight
    "audio only": ["model.modality=audio", "model.stages=0"],
    "visual only": ["model.modality=visual", "model.stages=0"],
    "plain fusion": ["model.stages=0"],
    "plain fusion, alpha=0": ["model.stages=0", "loss.alpha=0"],
    "plain fusion, gamma=0": ["model.stages=0", "loss.gamma=0"],
    "plain fusion, CASL on logits": ["model.stages=0", "loss.casl_scores=logit"],
    "plain fusion, CASL centred": ["model.stages=0", "loss.casl_center=true"],
    "1 stage": [NORMALISED, "model.stages=1"],
    "2 stages (the preset)": [NORMALISED],
    "2 stages, alpha=0": [NORMALISED, "loss.alpha=0"],
    "2 stages, gamma=0": [NORMALISED, "loss.gamma=0"],
    "2 stages, CASL on logits": [NORMALISED, "loss.casl_scores=logit"],
    "2 stages, CASL centred": [NORMALISED, "loss.casl_center=true"],
    "2 stages, localize.min_snippets=1": [NORMALISED, "localize.min_snippets=1"],
    "2 stages, localize.min_snippets=2": [NORMALISED, "localize.min_snippets=2"],
    "2 stages, beta=0": [NORMALISED, "loss.beta=0"],
    "2 stages, cont_window=2": [NORMALISED, "loss.cont_window=2"],
    "2 stages, pseudo_tau=0.9": [NORMALISED, "loss.pseudo_tau=0.9"],
    "2 stages, background_divisor=3": [NORMALISED, "loss.background_divisor=3"],
    "2 stages, background_divisor=2": [NORMALISED, "loss.background_divisor=2"],
    "2 stages, pseudo labels renormalised": [NORMALISED, "loss.pseudo_renormalize=true"],
    # the generated data without "static" videos (the picture shows the class all along)
    "plain fusion, no static videos": ["model.stages=0", "data.synth_static_share=0"],
    "2 stages, no static videos": [NORMALISED, "data.synth_static_share=0"],
    "plain fusion, pseudo labels relative": ["model.stages=0", "loss.pseudo_relative=0.5"],
    "visual only, pseudo labels relative": ["model.modality=visual", "model.stages=0",
                                            "loss.pseudo_relative=0.5"],
    "2 stages, pseudo labels relative": [NORMALISED, "loss.pseudo_relative=0.5"],
    "2 stages, pseudo labels relative 0.25": [NORMALISED, "loss.pseudo_relative=0.25"],
    "2 stages, pseudo labels relative, beta=0": [NORMALISED, "loss.pseudo_relative=0.5",
                                                 "loss.beta=0"],
    "2 stages, pseudo labels relative, weight 1": [NORMALISED, "loss.pseudo_relative=0.5",
                                                   "loss.background_weight=1"],
    "2 stages, pseudo labels relative, weight 1, background_divisor=2": [
        NORMALISED, "loss.pseudo_relative=0.5", "loss.background_weight=1",
        "loss.background_divisor=2"],
    "plain fusion, pseudo labels relative, weight 1, background_divisor=2": [
        "model.stages=0", "loss.pseudo_relative=0.5", "loss.background_weight=1",
        "loss.background_divisor=2"],
    "2 stages, topk_divisor=16": [NORMALISED, "loss.topk_divisor=16"],
    "2 stages, topk_divisor=32": [NORMALISED, "loss.topk_divisor=32"],
    "3 stages": [NORMALISED, "model.stages=3"],
    "1 stage, raw": [RAW, "model.stages=1"],
    "2 stages, raw": [RAW],
    "2 stages, raw, alpha=0": [RAW, "loss.alpha=0"],
    "2 stages, raw, attention_scale=10": [RAW, "model.attention_scale=10"],
    "3 stages, raw": [RAW, "model.stages=3"],
    "plain fusion, weight decay": ["model.stages=0", "train.weight_decay=5e-4"],
    "2 stages, weight decay": [NORMALISED, "train.weight_decay=5e-4"],
    "2 stages, raw, weight decay": [RAW, "train.weight_decay=5e-4"],
}
CASL_DEFAULT = ["plain fusion", "plain fusion, CASL centred", "2 stages (the preset)",
                "2 stages, CASL centred"]
BATCHING = {
    "pad": ["data.batching=pad"],
    "pad, crop 100 (W-TALC)": ["data.batching=pad", "data.max_seqlen=100"],
    "bucket": ["data.batching=bucket"],
    "shortest": ["data.batching=shortest"],
}
LOSSES = ("mil", "cas", "cont", "pseu")


def run(preset: str, overrides: list[str], tmp: Path) -> dict[str, Any]:
    """Train quietly; the metrics dict of `train` (history per epoch, val, test), and the
    run folder as "run". Validation every epoch (the curves read it; the anet12 and
    thumos14 presets validate every 10th / 4th)."""
    cfg = load_config(preset, ["train.eval_every=1", *overrides, "train.progress=false"])
    out = tmp / f"run{len(list(tmp.iterdir()))}"
    with contextlib.redirect_stdout(io.StringIO()):
        return {**train(cfg, None, out), "run": out}


def test_outputs(run_dir: Path, videos: int | None = None) -> tuple[Any, Dataset, Any]:
    """The best checkpoint's settings, its dataset, and an iterator of (video, batch,
    outputs with the last stage's attention) over the first `videos` test videos (all:
    None). Iterate under torch.no_grad()."""
    from avloc.checkpoint import load_model
    from avloc.data.batching import collate

    model, cfg, _ = load_model(run_dir)
    model.eval()
    ds = load_dataset(cfg.data, None)

    def outputs():
        for v in ds.splits["test"][:videos]:
            b = collate([v])
            yield v, b, model(b.audio, b.visual, b.mask, return_attention=cfg.model.stages > 0)

    return cfg, ds, outputs()


@torch.no_grad()
def diagnose(run_dir: Path, videos: int = 40) -> dict[str, float]:
    """What the best checkpoint does on test videos: the last stage's attention entropy /
    log L (1 = uniform: attention then only averages the video), how much the fused feature
    varies over a video (mean cosine distance of its snippets to the video's mean feature),
    CASL's separation d(H, L) (cosine distance between the high- and low-attention
    features of the video's class, Eq. 10; 0 = CASL has nothing to push apart), and the
    mean foreground reliability mu inside and outside the ground-truth instances (the CAS
    thresholded for segments is mu * softmax(h): where mu sits low inside instances, it
    follows exp of the mu logit and only its peaks pass the threshold)."""
    from avloc.losses import casl_features

    cfg, ds, outputs = test_outputs(run_dir, videos)
    rows, mu_in, mu_out = [], [], []
    for v, b, out in outputs:
        feat = out["feat"][0]  # (L, d)
        L = feat.shape[0]
        unit = torch.nn.functional.normalize(feat, dim=-1)  # (L, d)
        spread = 1 - (unit @ unit.mean(0) / unit.mean(0).norm()).mean().item()
        c = int(np.argmax(v.labels))
        high, low = casl_features(out["feat"], casl_scores(out, cfg, c), b.mask)  # (1, 1, d)
        sep = cosine_distance(high[0, 0], low[0, 0])
        ent = float("nan")
        if "attn" in out:
            att = out["attn"][0]  # (L, L)
            ent = (-(att * att.clamp_min(1e-12).log()).sum(-1).mean() / math.log(L)).item()
        rows.append((ent, spread, sep))
        inside = instance_snippets(ds, v.vid, L)  # (L,)
        mu = out["mu"][0].numpy()  # (L,)
        mu_in.extend(mu[inside])
        mu_out.extend(mu[~inside])
    ent, spread, sep = np.mean(rows, axis=0)
    return {"entropy": ent, "spread": spread, "separation": sep,
            "mu_inside": float(np.mean(mu_in)), "mu_outside": float(np.mean(mu_out))}


def casl_scores(out: dict[str, torch.Tensor], cfg: Any, c: int) -> torch.Tensor:
    """(1, L, 1): what L_cas attends over time with for class c (loss.casl_scores)."""
    if cfg.loss.casl_scores == "prob":
        return out["log_p"][..., c + 1:c + 2]
    return out["h"][..., c:c + 1]


@torch.no_grad()
def casl_distances(run_dir: Path) -> dict[str, float]:
    """What L_cas sees with the best checkpoint, over every test video: for each pair of
    videos sharing their class, d(H_m, H_n) and d(H_m, L_n) (cosine distances of Eq. 10's
    features, centred when loss.casl_center) and the hinge; d(H_m, H_n) for pairs of
    different classes; and how much of a snippet's feature is its video's (norm of the
    video's mean minus the mean of all videos) against the snippet's own (norm of the
    snippet minus its video's mean)."""
    from avloc.losses import casl_features, center_over_time

    cfg, _, outputs = test_outputs(run_dir)
    per_class: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    video_means, within = [], []
    for v, b, out in outputs:
        feat = out["feat"]  # (1, L, d)
        video_means.append(feat[0].mean(0))  # (d,)
        within.append((feat[0] - video_means[-1]).norm(dim=-1).mean())
        if cfg.loss.casl_center:
            feat = center_over_time(feat, b.mask)
        c = int(np.argmax(v.labels))
        high, low = casl_features(feat, casl_scores(out, cfg, c), b.mask)  # (1, 1, d) each
        per_class.setdefault(c, []).append((high[0, 0], low[0, 0]))
    d = cosine_distance
    same = [(d(hm, hn), d(hm, ln)) for pairs in per_class.values()
            for i, (hm, _) in enumerate(pairs) for j, (hn, ln) in enumerate(pairs) if i != j]
    firsts = [pairs[0][0] for pairs in per_class.values()]
    means = torch.stack(video_means)  # (N, d)
    margin = cfg.loss.casl_margin
    return {"hh_same": float(np.mean([hh for hh, _ in same])),
            "hl_same": float(np.mean([hl for _, hl in same])),
            "hinge": float(np.mean([max(0.0, hh - hl + margin) for hh, hl in same])),
            "hh_other": float(np.mean([d(a, b) for a, b in itertools.pairwise(firsts)])),
            "video_vs_snippet": ((means - means.mean(0)).norm(dim=-1).mean()
                                 / torch.stack(within).mean()).item(),
            "pairs": len(same)}


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return 1 - torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def casl(args: argparse.Namespace, tmp: Path) -> None:
    print("| variant | test mAP | d(H_m, H_n) same class | d(H_m, L_n) same class | hinge "
          "| d(H_m, H_n) other class | video / snippet part of a feature | pairs |")
    print("|---|---|---|---|---|---|---|---|")
    for name, extra in selected(FUSION, args.only or CASL_DEFAULT):
        m = run(args.actions, fusion_overrides(args, extra, epochs=30), tmp)
        c = casl_distances(m["run"])
        print(f"| {name} | {m['test']['average_mAP']:.3f} | {c['hh_same']:.3f} | "
              f"{c['hl_same']:.3f} | {c['hinge']:.3f} | {c['hh_other']:.3f} | "
              f"{c['video_vs_snippet']:.2f} | {c['pairs']} |", flush=True)


def background(args: argparse.Namespace, tmp: Path) -> None:
    print("| variant | background videos | test accuracy | oracle | mu inside | mu outside "
          "| mu contrast | background found | best epoch | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, extra in selected(BACKGROUND, args.only):
        for n_bg in (178, 0):
            t0 = time.perf_counter()
            m = run("ave", [*BACKGROUND_BASE, f"data.synth_background_videos={n_bg}",
                            f"train.seed={args.seed}", *extra], tmp)
            t = m["test"]
            inside, outside = t["mu_inside_events"], t["mu_outside_events"]
            print(f"| {name} | {n_bg} | {t['accuracy']:.3f} | {t['oracle_accuracy']:.3f} | "
                  f"{inside:.3f} | {outside:.3f} | {inside - outside:+.3f} | "
                  f"{t['background_recall']:.3f} | {m['best_epoch']} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)


def fusion(args: argparse.Namespace, tmp: Path) -> None:
    print("| variant | test mAP | val peak (epoch) | val last | drop after peak | "
          + " | ".join(f"L_{k} first -> last" for k in LOSSES)
          + " | attention entropy | feature spread | CASL d(H, L) | mu inside / outside |")
    print("|---|---|---|---|---|" + "---|" * (len(LOSSES) + 4))
    for name, extra in selected(FUSION, args.only):
        m = run(args.actions, fusion_overrides(args, extra, epochs=30), tmp)
        val = [r.get("val_average_mAP", 0.0) for r in m["history"]]
        peak = max(range(len(val)), key=val.__getitem__)
        terms = " | ".join(f"{m['history'][0].get(f'loss_{k}', 0):.3f} -> "
                           f"{m['history'][-1].get(f'loss_{k}', 0):.3f}" for k in LOSSES)
        d = diagnose(m["run"])
        print(f"| {name} | {m['test']['average_mAP']:.3f} | {val[peak]:.3f} ({peak + 1}) | "
              f"{val[-1]:.3f} | {val[peak] - val[-1]:.3f} | {terms} | {d['entropy']:.3f} | "
              f"{d['spread']:.4f} | {d['separation']:.4f} | "
              f"{d['mu_inside']:.2f} / {d['mu_outside']:.2f} |", flush=True)


def fusion_overrides(args: argparse.Namespace, extra: list[str], epochs: int) -> list[str]:
    """A fusion variant's settings on the action data (fusion and trace train the same)."""
    return [*ACTIONS[args.actions], "data.batching=shortest", f"train.epochs={epochs}",
            f"train.seed={args.seed}", *weight_override(args), *extra]


def trace(args: argparse.Namespace, tmp: Path) -> None:
    """After every epoch, on the validation split: average mAP, the same with only the
    ground-truth class's segments (a class oracle: what is left is localization), the
    video-level top-1, mu inside / outside the instances (and outside them in the generated
    "static" videos, whose picture shows the class all along, against the rest), and how
    the class oracle's segments meet the instances: the share of instance snippets they
    cover and the share of their snippets inside instances. The run is trained one epoch
    at a time (`resume` with train.epochs one higher), each epoch scored with last.pt."""
    from avloc.checkpoint import load_model
    from avloc.scoring.evaluate import action_detections, action_metrics
    from avloc.scoring.predict import VideoPrediction, predict

    print("| variant | epoch | val mAP | class-oracle mAP | video top-1 | mu inside / outside "
          "| mu outside: static / other videos | instances covered | segments inside |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, extra in selected(FUSION, args.only):
        cfg = load_config(args.actions, [*fusion_overrides(args, extra, epochs=1),
                                     "train.progress=false"])
        ds, out = load_dataset(cfg.data, None), tmp / f"trace{len(list(tmp.iterdir()))}"
        videos = ds.splits["val"]
        for epoch in range(1, args.epochs + 1):
            with contextlib.redirect_stdout(io.StringIO()):
                if epoch == 1:
                    train(cfg, None, out, dataset=ds)
                else:
                    resume(out, dataset=ds, overrides=[f"train.epochs={epoch}"])
            model, run_cfg, _ = load_model(out / "last.pt")
            preds = predict(model, videos)
            oracle, top1 = [], []
            for v, p in zip(videos, preds, strict=True):
                c = int(np.argmax(v.labels))
                only_c = np.zeros_like(p.p)  # (T, C+1) the ground-truth class's column alone
                only_c[:, c + 1] = p.p[:, c + 1]
                oracle.append(VideoPrediction(p.vid, only_c, p.mu))
                top1.append(p.video_scores(run_cfg.loss.topk_divisor).argmax() == c)
            detections = action_detections(ds, oracle, run_cfg)
            mu_in, mu_out, hits = [], [], np.zeros(3)
            by_kind: dict[bool, list[float]] = {True: [], False: []}  # static video?
            for p in preds:
                inside = instance_snippets(ds, p.vid, len(p.mu))  # (T,)
                found = snippets_in_any((d["segment"] for d in detections[p.vid]), len(p.mu),
                                        ds.timing(p.vid))  # (T,) the oracle's segments
                mu_in.extend(p.mu[inside])
                mu_out.extend(p.mu[~inside])
                by_kind[ds.video_kinds[p.vid] == "static"].extend(p.mu[~inside])
                hits += (np.sum(found & inside), inside.sum(), found.sum())
            print(f"| {name} | {epoch} | "
                  f"{action_metrics(ds, preds, run_cfg, 'val')['average_mAP']:.3f} | "
                  f"{action_metrics(ds, oracle, run_cfg, 'val')['average_mAP']:.3f} | "
                  f"{np.mean(top1):.2f} | {np.mean(mu_in):.2f} / {np.mean(mu_out):.2f} | "
                  f"{mean_or_dash(by_kind[True])} / {mean_or_dash(by_kind[False])} | "
                  f"{hits[0] / hits[1]:.2f} | {hits[0] / max(hits[2], 1):.2f} |", flush=True)


def mean_or_dash(values: list[float]) -> str:
    """The mean to two places, or "-" for none (data.synth_static_share=0: no static video)."""
    return f"{np.mean(values):.2f}" if values else "-"


def instance_snippets(ds: Dataset, vid: str, length: int) -> np.ndarray:
    """(length,) bool: the snippets of video `vid` inside a ground-truth instance."""
    segments = ((seg.start, seg.end) for seg in ds.annotations[vid].segments)
    return snippets_in_any(segments, length, ds.timing(vid))


def epoch_crops(preset: str, overrides: list[str]) -> tuple[float, float]:
    """What one training epoch (seed 0, epoch 0) computes: snippets computed (padding
    included, crops excluded) / the snippets of the videos it draws (above 1 is padding,
    below 1 cropping), and the share of training crops that hold no snippet of an
    instance (their video-level label is then wrong for what the model sees)."""
    cfg = load_config(preset, overrides)
    ds = load_dataset(cfg.data, None)
    videos = ds.splits["train"]
    sampler = PairBatchSampler(videos, cfg.train.batch_size, cfg.train.similar_pairs, seed=0,
                               bucket=cfg.data.batching == "bucket")
    computed = real = empty = drawn = 0
    for groups in sampler.epoch(0):
        crop = crop_length(videos, groups, cfg.data.batching, cfg.data.max_seqlen)
        lengths = [videos[i].length for g in groups for i in g]
        computed += len(lengths) * min(max(lengths), crop)
        real += sum(lengths)
        for i in (int(i) for g in groups for i in g):  # the window training draws (load_share)
            window = crop_window(videos[i].length, crop, np.random.default_rng([0, 0, i]))
            empty += not instance_snippets(ds, videos[i].vid, videos[i].length)[window].any()
            drawn += 1
    return computed / real, empty / drawn


def scores(args: argparse.Namespace, tmp: Path) -> None:
    """Each variant trained as in `fusion` (selected by the max score), then its best
    checkpoint's validation and test average mAP with each segment score: W-TALC's max and
    the outer-inner contrast (`localize.segment_score=oic`), the same segments."""
    from dataclasses import replace

    from avloc.checkpoint import load_model
    from avloc.scoring.evaluate import action_metrics
    from avloc.scoring.predict import predict

    print("| variant | best epoch | val: max | val: oic | test: max | test: oic |")
    print("|---|---|---|---|---|---|")
    for name, extra in selected(FUSION, args.only):
        m = run(args.actions, fusion_overrides(args, extra, epochs=30), tmp)
        model, cfg, _ = load_model(m["run"])
        ds = load_dataset(cfg.data, None)
        cells = []
        for split in ("val", "test"):
            preds = predict(model, ds.splits[split])
            for score in ("max", "oic"):
                c = replace(cfg, localize=replace(cfg.localize, segment_score=score))
                cells.append(f"{action_metrics(ds, preds, c, split)['average_mAP']:.3f}")
        print(f"| {name} | {m['best_epoch']} | " + " | ".join(cells) + " |", flush=True)


def crops(args: argparse.Namespace, tmp: Path) -> None:
    """Each batching choice's first epoch, without training."""
    print("| batching | padded / real snippets | crops without an instance |")
    print("|---|---|---|")
    for name, extra in BATCHING.items():
        ratio, empty = epoch_crops(args.actions, [*ACTIONS[args.actions], *extra])
        print(f"| {name} | {ratio:.2f} | {empty:.3f} |", flush=True)


def batching(args: argparse.Namespace, tmp: Path) -> None:
    """pad trains --epochs epochs; every other choice trains for at least a third of pad's
    time (its epochs estimated from its computed snippets), the issue's goal being pad's
    best validation mAP in at most a third of pad's time."""
    rows = {}
    for name, extra in BATCHING.items():
        overrides = [*ACTIONS[args.actions], NORMALISED, f"train.seed={args.seed}",
                     *weight_override(args), *extra]
        ratio, _ = epoch_crops(args.actions, overrides)
        epochs = args.epochs
        if rows:  # pad's time per computed snippet, times this choice's snippets
            pad_curve, pad_ratio, _, _ = rows["pad"]
            per_epoch = pad_curve[-1][0] / len(pad_curve) * ratio / pad_ratio
            epochs = max(args.epochs, math.ceil(1.3 * pad_curve[-1][0] / 3 / per_epoch))
        m = run(args.actions, [*overrides, f"train.epochs={epochs}"], tmp)
        clock, curve = 0.0, []  # (training seconds so far, val mAP)
        for r in m["history"]:
            clock += r["seconds"]
            curve.append((clock, r.get("val_average_mAP", 0.0)))
        rows[name] = (curve, ratio, epochs, m["test"]["average_mAP"])
    pad_curve = rows["pad"][0]
    target, budget = max(v for _, v in pad_curve), pad_curve[-1][0] / 3
    print(f"target: pad's best validation mAP in {args.epochs} epochs, {target:.3f}; "
          f"budget: a third of pad's training time, {budget:.0f} s")
    print("| batching | s / epoch | padded / real snippets | epochs | best val mAP in the budget "
          "| seconds to the target | vs pad | test mAP (best epoch) |")
    print("|---|---|---|---|---|---|---|---|")
    pad_time = reach(pad_curve, target)
    for name, (curve, ratio, epochs, test) in rows.items():
        in_budget = max((v for t, v in curve if t <= budget), default=float("nan"))
        when = reach(curve, target)
        vs = f"{when / pad_time:.2f}x" if math.isfinite(when) else "not reached"
        print(f"| {name} | {curve[-1][0] / len(curve):.1f} | {ratio:.2f} | {epochs} | "
              f"{in_budget:.3f} | {when:.0f} | {vs} | {test:.3f} |", flush=True)


def reach(curve: list[tuple[float, float]], target: float) -> float:
    """Training seconds until validation mAP first reaches `target` (inf: never)."""
    return next((t for t, v in curve if v >= target - 1e-9), float("inf"))


def weight_override(args: argparse.Namespace) -> list[str]:
    """--background-weight as a setting (none: the preset's own)."""
    if args.background_weight is None:
        return []
    return [f"loss.background_weight={args.background_weight:g}"]


def selected(variants: dict[str, list[str]], only: list[str] | None):
    return [(k, v) for k, v in variants.items() if not only or k in only]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=("background", "fusion", "trace", "casl", "batching",
                                     "crops", "scores"))
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--background-weight", type=float, default=None,
                    help="the action parts: loss.background_weight of every "
                         "variant (default: the preset's)")
    ap.add_argument("--actions", choices=tuple(ACTIONS), default="anet12",
                    help="the action parts: the action preset and the data "
                         "laid out like its benchmark (data.synth_actions)")
    ap.add_argument("--epochs", type=int, default=12,
                    help="batching: pad's epochs (the others train at least as many); "
                         "trace: epochs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"python {sys.version.split()[0]}, one thread")
    with tempfile.TemporaryDirectory() as tmp:
        {"background": background, "fusion": fusion, "trace": trace, "casl": casl,
         "batching": batching, "crops": crops, "scores": scores}[args.part](
            args, Path(tmp))


if __name__ == "__main__":
    main()
