"""Numerical hygiene: losses and gradients stay finite at the edges; a non-finite loss or
gradient stops training with an error naming the step and batch, after saving the last
good checkpoint.

The edges: p -> 0 and 1 (logits up to 1e30; float32 itself overflows near 3e38), mu at 0
or 1, videos of one snippet, k larger than L, batches where no two videos share a class
(CASL must be 0, not NaN), background-only batches, a single video, huge features.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avloc.checkpoint import read_checkpoint
from avloc.config import LossConfig, ModelConfig, load_config
from avloc.data.batching import PairBatchSampler
from avloc.data.synthetic import make_synthetic
from avloc.losses import (
    casl_loss,
    foreground_continuity_loss,
    mil_loss,
    pseudo_localization_loss,
    topk_pool_log,
    total_loss,
)
from avloc.model import AVLocModel, openmax_probs
from avloc.train import train
from avloc.util.errors import AvlocError

C = 4
LABELS = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])  # (B, C)


def mask_of(lengths: list[int], L: int | None = None) -> torch.Tensor:
    L = L or max(lengths)
    return torch.arange(L)[None] < torch.tensor(lengths)[:, None]  # (B, L)


def loss_and_grads(
    h: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
    cfg: LossConfig | None = None, feat: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict, list[torch.Tensor]]:
    """total_loss of open-max outputs built from logits h (B, L, C) and z (B, L)."""
    cfg = cfg or LossConfig()
    h, z = h.clone().requires_grad_(), z.clone().requires_grad_()
    feat = (feat if feat is not None else torch.randn(*z.shape, 8)).clone().requires_grad_()
    log_p, mu = openmax_probs(h, z)
    loss, parts = total_loss({"log_p": log_p, "mu": mu, "h": h, "feat": feat}, mask, labels, cfg)
    loss.backward()
    return loss.detach(), {k: v.detach() for k, v in parts.items()}, [h.grad, z.grad, feat.grad]


def assert_all_finite(loss: torch.Tensor, parts: dict, grads: list[torch.Tensor]) -> None:
    assert torch.isfinite(loss), f"loss {loss}"
    for name, value in parts.items():
        assert torch.isfinite(value), f"{name} = {value}"
    for g in grads:
        assert g is not None and torch.isfinite(g).all()


@pytest.mark.parametrize("scale", [1.0, 80.0, 1e4, 1e30])
@pytest.mark.parametrize("casl_scores", ["prob", "logit"])
def test_losses_finite_as_p_goes_to_0_and_1(scale, casl_scores):
    """Logits scaled up push every p and mu to 0 or 1 (in float32, exp underflows to 0
    at |logit| > 104); losses are computed in log space and stay finite, as do gradients."""
    g = torch.Generator().manual_seed(0)
    lengths = [6, 1, 3, 6]
    h = torch.randn(4, 6, C, generator=g) * scale
    z = torch.randn(4, 6, generator=g) * scale
    cfg = LossConfig(casl_scores=casl_scores)
    loss, parts, grads = loss_and_grads(h, z, mask_of(lengths), LABELS, cfg)
    assert_all_finite(loss, parts, grads)
    if scale >= 1e4:
        assert loss > 100  # confidently wrong somewhere: large, yet finite


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_continuity_finite_with_mu_exactly_0_or_1(value):
    """mu from the model never reaches 0 or 1 exactly, but a saturated sigmoid comes close."""
    mu = torch.full((4, 5), value, requires_grad=True)
    log_p = torch.log_softmax(torch.randn(4, 5, C + 1), -1).requires_grad_()
    loss = foreground_continuity_loss(log_p, mu, mask_of([5, 1, 3, 5]), LABELS, LossConfig())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(mu.grad).all()
    assert torch.isfinite(log_p.grad).all()


def test_videos_of_one_snippet():
    """L = 1 for every video: the smoothing windows, CASL's 1 / (L - 1) and top-k all
    meet their smallest case."""
    loss, parts, grads = loss_and_grads(torch.randn(4, 1, C), torch.randn(4, 1),
                                        mask_of([1, 1, 1, 1]), LABELS)
    assert_all_finite(loss, parts, grads)


def test_k_larger_than_L():
    """top-k pooling with k beyond the video's length pools what there is, divided by k."""
    log_p = torch.log_softmax(torch.randn(2, 4, 3), -1).requires_grad_()
    mask = mask_of([4, 1])
    k = torch.tensor([[10, 10, 10], [7, 7, 7]])
    pooled = topk_pool_log(log_p, mask, k)  # (B, K)
    pooled.sum().backward()
    assert torch.isfinite(pooled).all() and torch.isfinite(log_p.grad).all()
    want = torch.stack([torch.logsumexp(log_p[0], 0) - math.log(10), log_p[1, 0] - math.log(7)])
    torch.testing.assert_close(pooled, want)
    for divisor in (1, 1000):  # k = L and k = 1 (ceil(L / 1000)), through mil_loss
        labels = torch.tensor([[1.0, 0], [0, 0]])
        loss = mil_loss(log_p, mask, labels, LossConfig(topk_divisor=divisor))
        assert torch.isfinite(loss)


@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]),  # three different classes
        torch.zeros(3, C),  # background only
        torch.tensor([[1.0, 1, 0, 0]]),  # one video
    ],
    ids=["distinct-classes", "background-only", "single-video"],
)
def test_casl_without_a_shared_class_is_zero_not_nan(labels):
    B = labels.shape[0]
    feat = torch.randn(B, 5, 8, requires_grad=True)
    scores = torch.randn(B, 5, C, requires_grad=True)
    loss = casl_loss(feat, scores, mask_of([5] * B), labels, margin=0.5)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(feat.grad, torch.zeros_like(feat))
    assert scores.grad is None or torch.equal(scores.grad, torch.zeros_like(scores))  # no pull
    total, parts, grads = loss_and_grads(torch.randn(B, 5, C), torch.randn(B, 5),
                                         mask_of([5] * B), labels)
    assert parts["cas"].item() == 0.0
    assert_all_finite(total, parts, grads)


def test_casl_with_all_zero_features_is_finite():
    """Zero vectors have no direction: the cosine distances must not divide by zero."""
    loss, parts, grads = loss_and_grads(torch.randn(4, 5, C), torch.randn(4, 5),
                                        mask_of([5, 5, 2, 5]), LABELS, feat=torch.zeros(4, 5, 8))
    assert_all_finite(loss, parts, grads)


def test_pseudo_labels_finite_when_every_snippet_is_confident():
    """Every snippet above tau: the pseudo loss takes -log p of saturated probabilities."""
    h = torch.full((4, 5, C), -1e4)
    h[..., 0] = 1e4
    log_p, _ = openmax_probs(h, torch.full((4, 5), 1e4))
    loss = pseudo_localization_loss(log_p, mask_of([5, 1, 3, 5]), LABELS, LossConfig())
    assert torch.isfinite(loss)


@pytest.mark.parametrize("classifier", ["openmax", "softmax"])
@pytest.mark.parametrize("scale", [1.0, 1e4, 1e20])
def test_model_with_huge_features_gives_finite_loss_and_gradients(classifier, scale):
    """Un-normalised features from a foreign extractor: the model normalises before
    attention and the losses stay finite (NaN/Inf features are refused by the readers)."""
    torch.manual_seed(0)
    beta = 0.8 if classifier == "openmax" else 0.0
    model = AVLocModel(ModelConfig(d_x=16, classifier=classifier), 6, 7, C)
    mask = mask_of([5, 1, 3, 5])
    out = model(torch.randn(4, 5, 6) * scale, torch.randn(4, 5, 7) * scale, mask)
    loss, parts = total_loss(out, mask, LABELS, LossConfig(beta=beta))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---- a non-finite loss or gradient stops the run -------------------------------------------
SMALL = ["model.d_x=16", "data.synth_videos=24", "data.synth_background_videos=4",
         "train.epochs=2", "train.progress=false"]


@pytest.fixture
def one_thread():
    """Tiny models train many times faster on one thread when other processes share the
    cores (no timing is asserted; this only keeps the suite quick)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def last_seen_video(cfg) -> tuple[int, int]:
    """(video index, batch) such that epoch 1 first meets that video in that batch, as
    late as possible: the run has good steps to save before it."""
    videos = make_synthetic(cfg.data).splits["train"]
    sampler = PairBatchSampler(videos, cfg.train.batch_size, cfg.train.similar_pairs,
                               cfg.train.seed)
    first: dict[int, int] = {}
    for b, groups in enumerate(sampler.epoch(0)):
        for i in groups[0]:
            first.setdefault(int(i), b + 1)
    index = max(first, key=first.get)
    return index, first[index]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_feature_is_refused_before_training_starts(bad, tmp_path):
    """The whole input is checked before the first step, also for a Dataset built in
    Python; nothing is written."""
    cfg = load_config("demo", SMALL)
    ds = make_synthetic(cfg.data)
    ds.splits["test"][3].audio[2, 1] = bad  # not even a training video
    with pytest.raises(AvlocError, match=r"test video test_00003: audio features contain NaN"):
        train(cfg, None, tmp_path / "run", dataset=ds)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "breakage, phrase",
    [
        (lambda v: setattr(v, "audio", v.audio[0]), "(T, D) float array"),
        (lambda v: setattr(v, "visual", v.visual[:0]), "T >= 1"),
        (lambda v: setattr(v, "audio", v.audio.astype(np.int64)), "float array"),
        (lambda v: setattr(v, "visual", v.visual[:-1]), "audio but"),
        (lambda v: setattr(v, "audio", v.audio[:, :-1]), "feature dims differ"),
        (lambda v: setattr(v, "labels", v.labels[:-1]), "labels must be"),
        (lambda v: setattr(v, "labels", v.labels * 0.5), "labels must be"),
    ],
    ids=["1-d", "empty", "int", "length", "dims", "label-count", "label-value"],
)
def test_malformed_python_dataset_is_refused_before_training(breakage, phrase, tmp_path):
    cfg = load_config("demo", SMALL)
    ds = make_synthetic(cfg.data)
    breakage(ds.splits["train"][5])
    with pytest.raises(AvlocError, match="train video train_00005") as err:
        train(cfg, None, tmp_path / "run", dataset=ds)
    assert phrase in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_feature_stops_with_step_batch_and_video(bad, tmp_path, one_thread,
                                                           monkeypatch):
    """The last line of defence, with the up-front check switched off: the step that meets
    the bad video stops the run, naming it, after saving the last good state."""
    import avloc.train.start as tr

    monkeypatch.setattr(tr, "check_training_data", lambda ds: None)
    cfg = load_config("demo", [*SMALL, "train.batch_size=10"])
    ds = make_synthetic(cfg.data)
    index, batch = last_seen_video(cfg)
    ds.splits["train"][index].visual[3, 7] = bad
    step = batch  # in epoch 1
    assert step > 2  # there are good steps before it
    with pytest.raises(AvlocError) as err:
        train(cfg, None, tmp_path / "run", dataset=ds)
    message = str(err.value)
    assert "\n" not in message
    vid = ds.splits["train"][index].vid
    assert f"non-finite loss at step {step} (epoch 1, batch {batch}; NaN/Inf features in {vid})"\
        in message
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")  # loads: checksum and finite weights
    assert ckpt["progress"]["step"] == step - 1 and ckpt["progress"]["batch"] == batch - 1
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_nonfinite_gradient_with_finite_loss_stops_before_the_weights_change(
    tmp_path, monkeypatch, one_thread
):
    """sqrt at 0 has an infinite derivative: the loss is finite, the gradient is not. The
    weights saved are those before that step, bit for bit."""
    import avloc.losses as lo
    import avloc.train.loop as tr

    cfg = load_config("demo", SMALL)
    calls = {"n": 0}
    original = lo.total_loss

    def poisoned(out, mask, labels, loss_cfg, *rest):
        loss, parts = original(out, mask, labels, loss_cfg, *rest)
        calls["n"] += 1
        if calls["n"] == 3:
            loss = loss + torch.sqrt((out["mu"] * 0).sum())  # + 0, with gradient NaN
        return loss, parts

    monkeypatch.setattr(lo, "total_loss", poisoned)
    with pytest.raises(AvlocError, match=r"non-finite gradient at step 3 \(epoch 2, batch 1;"):
        train(cfg, None, tmp_path / "bad", dataset=make_synthetic(cfg.data))
    stopped = read_checkpoint(tmp_path / "bad" / "last.pt")
    assert stopped["progress"]["step"] == 2

    monkeypatch.setattr(lo, "total_loss", original)
    clean = load_config("demo", [*SMALL, "train.checkpoint_every=2"])
    steps = {"n": 0}
    real_step = tr.Trainer.train_step

    def two_steps(self, *a):  # the clean run's state after 2 steps, then stop
        steps["n"] += 1
        if steps["n"] == 3:
            raise KeyboardInterrupt
        return real_step(self, *a)

    monkeypatch.setattr(tr.Trainer, "train_step", two_steps)
    with pytest.raises(KeyboardInterrupt):
        train(clean, None, tmp_path / "good", dataset=make_synthetic(clean.data))
    good = read_checkpoint(tmp_path / "good" / "last.pt")
    assert good["progress"]["step"] == 2
    for name, weight in good["model"].items():
        assert torch.equal(weight, stopped["model"][name]), name
    assert np.isfinite([float(v.abs().sum()) for v in stopped["model"].values()]).all()


def test_float64_trains_like_float32_and_evaluates(tmp_path):
    """train.dtype=float64 (to debug numerics): weights and arithmetic in float64 from the
    same initial weights, the first epoch's losses equal float32's to float32 precision, and
    evaluation loads the float64 checkpoint as float64."""
    from avloc.checkpoint import load_model
    from avloc.cli import main

    runs = {}
    for dtype in ("float32", "float64"):
        out = tmp_path / dtype
        assert main(["train", "--config", "demo", "--out", str(out), *SMALL, "train.epochs=1",
                     "train.progress=false", f"train.dtype={dtype}"]) == 0
        runs[dtype] = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    for key in ("loss_mil", "loss_cas", "loss_cont", "loss_pseu"):
        assert runs["float64"][key] == pytest.approx(runs["float32"][key], rel=1e-3), key
    model, cfg, _ = load_model(tmp_path / "float64")
    assert cfg.train.dtype == "float64"
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert main(["eval", str(tmp_path / "float64"), "--split", "test", "--json",
                 str(tmp_path / "m.json")]) == 0
    assert 0 <= json.loads((tmp_path / "m.json").read_text())["accuracy"] <= 1
