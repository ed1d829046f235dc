"""The four losses (Eq. 6-10, Appendix C) against naive per-snippet loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avloc.config import LossConfig
from avloc.data.base import Video
from avloc.data.batching import collate
from avloc.losses import (
    casl_loss,
    foreground_continuity_loss,
    gaussian_window,
    mil_loss,
    pseudo_labels,
    pseudo_localization_loss,
    total_loss,
)

torch.manual_seed(0)
C = 4


def random_batch(lengths, classes=C, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L = len(lengths), max(lengths)
    h = torch.randn(B, L, classes, generator=g, dtype=torch.float64)
    z = torch.randn(B, L, generator=g, dtype=torch.float64)
    mu = torch.sigmoid(z)
    p = torch.cat([(1 - mu)[..., None], mu[..., None] * torch.softmax(h, -1)], -1)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    labels = torch.zeros(B, classes, dtype=torch.float64)
    return p.log(), mu, h, mask, labels


def with_labels(labels, rows):
    for b, cs in enumerate(rows):
        for c in cs:
            labels[b, c] = 1.0
    return labels


# ---- MIL ---------------------------------------------------------------------------------
def naive_mil(p, mask, labels, cfg):
    total = 0.0
    for b in range(p.shape[0]):
        n = int(mask[b].sum())
        k = max(1, math.ceil(n / cfg.topk_divisor))
        bg_only = labels[b].sum() == 0
        pos, neg = [], []
        for c in range(p.shape[2]):
            values = sorted((float(p[b, t, c]) for t in range(n)), reverse=True)
            kc = n if (c == 0 and bg_only) else k
            if c == 0 and not bg_only and cfg.background_divisor:
                kc = max(1, math.ceil(n / cfg.background_divisor))
            s = sum(values[:kc]) / kc
            y = 1.0 if c == 0 else float(labels[b, c - 1])
            if c == 0 and not cfg.background_topk and not bg_only:
                continue
            weight = cfg.background_weight if c == 0 and not bg_only else 1.0
            (pos if y > 0 else neg).append((s, weight))
        pos_term = -sum(w * math.log(s) for s, w in pos) / max(len(pos), 1)
        neg_term = -sum(math.log(1 - s) for s, _ in neg) / max(len(neg), 1)
        total += pos_term + neg_term
    return total / p.shape[0]


@pytest.mark.parametrize("background_topk,background_weight,background_divisor",
                         [(True, 1.0, 0), (False, 1.0, 0), (True, 0.3, 0), (True, 0.0, 0),
                          (True, 0.3, 3), (True, 1.0, 1)])
def test_mil_matches_naive(background_topk, background_weight, background_divisor):
    log_p, mu, h, mask, labels = random_batch([9, 17, 4])
    labels = with_labels(labels, [[1], [0, 3], []])  # the third video is background only
    cfg = LossConfig(background_topk=background_topk, background_weight=background_weight,
                     background_divisor=background_divisor)
    got = mil_loss(log_p, mask, labels, cfg)
    assert got.item() == pytest.approx(naive_mil(log_p.exp(), mask, labels, cfg), rel=1e-9)


def test_mil_ignores_padding_values():
    log_p, mu, h, mask, labels = random_batch([5, 3])
    labels = with_labels(labels, [[0], [2]])
    cfg = LossConfig()
    a = mil_loss(log_p, mask, labels, cfg)
    log_p2 = log_p.clone()
    log_p2[1, 3:] = 0.0  # padded snippets claim probability 1 everywhere
    assert mil_loss(log_p2, mask, labels, cfg).item() == pytest.approx(a.item())


# ---- CASL --------------------------------------------------------------------------------
def naive_casl(feat, scores, mask, labels, margin):
    def cos_d(a, b):
        return 1 - float(a @ b / (a.norm() * b.norm()))

    hs, ls = {}, {}
    B = feat.shape[0]
    for b in range(B):
        n = int(mask[b].sum())
        for c in range(labels.shape[1]):
            a = torch.softmax(scores[b, :n, c], 0)
            hs[b, c] = sum(a[t] * feat[b, t] for t in range(n))
            ls[b, c] = sum((1 - a[t]) * feat[b, t] for t in range(n)) / max(n - 1, 1)
    total, count = 0.0, 0
    for c in range(labels.shape[1]):
        for m in range(B):
            for k in range(B):
                if m == k or not (labels[m, c] and labels[k, c]):
                    continue
                dhh = cos_d(hs[m, c], hs[k, c])
                total += 0.5 * (max(0, dhh - cos_d(hs[m, c], ls[k, c]) + margin)
                                + max(0, dhh - cos_d(ls[m, c], hs[k, c]) + margin))
                count += 1
    return total / count if count else 0.0


def test_casl_matches_naive():
    _, _, h, mask, labels = random_batch([6, 8, 5, 7])
    labels = with_labels(labels, [[0, 2], [0], [2, 3], [3]])
    feat = torch.randn(4, 8, 10, dtype=torch.float64)
    got = casl_loss(feat, h, mask, labels, 0.5)
    assert got.item() == pytest.approx(naive_casl(feat, h, mask, labels, 0.5), rel=1e-9)


def test_casl_centred_is_casl_of_centred_features_and_its_closed_form():
    """loss.casl_center: W-TALC's hinge on x minus each video's mean over its real snippets
    (padding must not enter the mean), which reduces to max(0, margin - 2 cos(H_m, H_n))."""
    _, _, h, mask, labels = random_batch([6, 8, 5, 7])
    labels = with_labels(labels, [[0, 2], [0], [2, 3], [3]])
    feat = torch.randn(4, 8, 10, dtype=torch.float64)
    centred = feat.clone()
    for b in range(4):
        n = int(mask[b].sum())
        centred[b, :n] -= feat[b, :n].mean(0)
    got = casl_loss(feat, h, mask, labels, 0.5, center=True)
    assert got.item() == pytest.approx(naive_casl(centred, h, mask, labels, 0.5), rel=1e-9)
    total, count = 0.0, 0
    for c in range(labels.shape[1]):
        hs = {}
        for b in range(4):
            n = int(mask[b].sum())
            hs[b] = torch.softmax(h[b, :n, c], 0) @ centred[b, :n]  # (F,)
        for m in range(4):
            for k in range(4):
                if m != k and labels[m, c] and labels[k, c]:
                    cos = float(hs[m] @ hs[k] / (hs[m].norm() * hs[k].norm()))
                    total, count = total + max(0.0, 0.5 - 2 * cos), count + 1
    assert got.item() == pytest.approx(total / count, rel=1e-6)
    assert got.item() != pytest.approx(casl_loss(feat, h, mask, labels, 0.5).item(), rel=1e-3)


def test_casl_on_the_shared_classes_only_is_the_same_loss_and_gradient():
    """What the trainer passes (Batch.casl_classes, from collate) changes the cost only."""
    _, _, h, mask, labels = random_batch([6, 8, 5, 7])
    labels = with_labels(labels, [[0, 2], [0, 1], [2, 3], [3]])
    videos = [Video(f"v{i}", np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
                    labels[i].numpy().astype(np.float32)) for i in range(4)]
    shared = collate(videos).casl_classes
    assert shared.tolist() == [0, 2, 3]  # class 1: one video only
    base = torch.randn(4, 8, 10, dtype=torch.float64)
    losses, grads = [], []
    for classes in (None, shared):
        feat = base.clone().requires_grad_()
        losses.append(casl_loss(feat, h, mask, labels, 0.5, classes))
        grads.append(torch.autograd.grad(losses[-1], feat)[0])
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(grads[0], grads[1])
    none = casl_loss(torch.randn(4, 8, 10, dtype=torch.float64), h, mask, labels, 0.5,
                     torch.zeros(0, dtype=torch.long))
    assert none.item() == 0.0


def test_casl_is_zero_without_shared_classes():
    _, _, h, mask, labels = random_batch([6, 8])
    labels = with_labels(labels, [[0], [1]])
    feat = torch.randn(2, 8, 10, dtype=torch.float64, requires_grad=True)
    loss = casl_loss(feat, h, mask, labels, 0.5)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(feat.grad).all()


# ---- foreground continuity (Eq. 6-8) ----------------------------------------------------
def naive_smooth(x, n, l, window, sigma):
    """1/(B+1) sum_{i=-B/2}^{B/2} G(i) x^{l-i}, over neighbours inside the video."""
    half = window // 2
    g = {i: math.exp(-i * i / (2 * sigma * sigma)) for i in range(-half, half + 1)}
    num = sum(g[i] * float(x[l - i]) for i in g if 0 <= l - i < n)
    den = sum(g[i] for i in g if 0 <= l - i < n)
    return num / den


def naive_continuity(p, mu, mask, labels, cfg):
    total = 0.0
    for b in range(p.shape[0]):
        n = int(mask[b].sum())
        classes = [c for c in range(labels.shape[1]) if labels[b, c]]
        p_hat = [max((float(p[b, t, c + 1]) for c in classes), default=0.0) for t in range(n)]
        s = 0.0
        for t in range(n):
            mu_ag = naive_smooth(mu[b], n, t, cfg.cont_window, cfg.cont_sigma)  # Eq. 6
            s += abs(float(mu[b, t]) - mu_ag)
            if classes:
                mu_sp = naive_smooth(p_hat, n, t, cfg.cont_window, cfg.cont_sigma)  # Eq. 7
                s += abs(float(mu[b, t]) - mu_sp)
        total += s / n  # Eq. 8
    return total / p.shape[0]


def test_gaussian_window_is_an_average_with_eq6_scaling():
    g = gaussian_window(5, 1.0)
    assert g.numel() == 5 and g.sum().item() == pytest.approx(5.0)
    assert g[2] == g.max() and g[0] == pytest.approx(g[4].item())


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_continuity_matches_naive(sigma):
    log_p, mu, h, mask, labels = random_batch([10, 7, 3, 1])
    labels = with_labels(labels, [[1], [0, 2], [], [3]])
    cfg = LossConfig(cont_sigma=sigma)
    got = foreground_continuity_loss(log_p, mu, mask, labels, cfg)
    ref = naive_continuity(log_p.exp(), mu, mask, labels, cfg)
    assert got.item() == pytest.approx(ref, rel=1e-9)


def test_continuity_class_term_detached_teaches_mu_only():
    """loss.cont_detach_class: same value; no gradient reaches the action logits h through
    L_cont (the class term is a target), while mu's gradient is still there."""
    _, _, h0, mask, labels = random_batch([10, 7, 3])
    labels = with_labels(labels, [[1], [0, 2], [3]])
    z0 = torch.randn(3, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    values, grads = [], []
    for detach in (False, True):
        h, z = h0.clone().requires_grad_(), z0.clone().requires_grad_()
        mu = torch.sigmoid(z)
        log_p = torch.cat([F.logsigmoid(-z)[..., None],
                           F.logsigmoid(z)[..., None] + h.log_softmax(-1)], -1)
        loss = foreground_continuity_loss(log_p, mu, mask, labels,
                                          LossConfig(cont_detach_class=detach))
        values.append(loss.item())
        grads.append(torch.autograd.grad(loss, (h, z), allow_unused=True))
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert grads[0][0].abs().max() > 1e-3 and grads[1][0] is None  # h: not in the graph
    assert grads[1][1].abs().max() > 1e-3  # z, the mu logit
    assert not torch.allclose(grads[0][1], grads[1][1])


# ---- pseudo localization (Eq. 9) --------------------------------------------------------
def naive_pseudo(p, mask, labels, cfg):
    total = 0.0
    for b in range(p.shape[0]):
        n = int(mask[b].sum())
        allowed = [0] + [c + 1 for c in range(labels.shape[1]) if labels[b, c]]
        if not cfg.pseudo_video_classes:
            allowed = list(range(p.shape[2]))
        half = cfg.pseudo_neighbors // 2
        qs = []
        for t in range(n):
            near = [i for i in range(t - half, t + half + 1) if 0 <= i < n]
            q = {c: sum(float(p[b, i, c]) for i in near) / len(near) for c in allowed}
            if cfg.pseudo_renormalize:
                q = {c: v / sum(q.values()) for c, v in q.items()}
            qs.append(q)
        own = [c + 1 for c in range(labels.shape[1]) if labels[b, c]]
        s = 0.0
        for t in range(n):
            if cfg.pseudo_relative and own:  # per own class: min + t' (max - min) of its q
                r = cfg.pseudo_relative
                lo = {c: min(q[c] for q in qs) for c in own}
                span = {c: max(q[c] for q in qs) - lo[c] for c in own}
                above = [c for c in own if qs[t][c] > lo[c] + (1 - r) * span[c]]
                if above:
                    s += -math.log(float(p[b, t, max(above, key=lambda c: qs[t][c])]))
                elif all(qs[t][c] < lo[c] + r * span[c] for c in own):
                    s += -math.log(float(p[b, t, 0]))
                continue
            c_hat = max(allowed, key=lambda c: qs[t][c])
            if qs[t][c_hat] >= cfg.pseudo_tau:
                s += -math.log(float(p[b, t, c_hat]))
        total += s / n
    return total / p.shape[0]


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("restrict", [True, False])
@pytest.mark.parametrize("tau", [0.2, 0.4])
def test_pseudo_matches_naive(restrict, tau, renormalize):
    log_p, mu, h, mask, labels = random_batch([10, 7, 3])
    labels = with_labels(labels, [[1], [0, 2], []])
    cfg = LossConfig(pseudo_tau=tau, pseudo_neighbors=4, pseudo_video_classes=restrict,
                     pseudo_renormalize=renormalize)
    got = pseudo_localization_loss(log_p, mask, labels, cfg)
    assert got.item() == pytest.approx(naive_pseudo(log_p.exp(), mask, labels, cfg), rel=1e-9)
    assert got.item() > 0  # some snippets pass tau at these settings


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("relative", [0.25, 0.5])
def test_relative_pseudo_labels_match_naive(relative, renormalize):
    log_p, mu, h, mask, labels = random_batch([12, 9, 4])
    labels = with_labels(labels, [[1], [0, 2], []])  # the last: Eq. 9's labels stay
    cfg = LossConfig(pseudo_tau=0.3, pseudo_neighbors=2, pseudo_relative=relative,
                     pseudo_renormalize=renormalize)
    got = pseudo_localization_loss(log_p, mask, labels, cfg)
    assert got.item() == pytest.approx(naive_pseudo(log_p.exp(), mask, labels, cfg), rel=1e-9)
    assert got.item() != pytest.approx(
        pseudo_localization_loss(log_p, mask, labels, LossConfig(
            pseudo_tau=0.3, pseudo_neighbors=2, pseudo_renormalize=renormalize)).item())


def test_relative_pseudo_labels_mark_a_flat_high_video_by_its_own_range():
    # mu 0.90 outside and 0.99 inside snippets 3-5: Eq. 9 (tau 0.8) calls all of it the
    # class; relative to the video's own range, the outside is background
    mu = torch.tensor([0.90, 0.90, 0.91, 0.99, 0.99, 0.99, 0.90, 0.90])[None]  # (1, 8)
    p = torch.stack([1 - mu, mu], dim=-1)  # (1, 8, 2): one class, its soft-max is 1
    mask, labels = torch.ones(1, 8, dtype=torch.bool), torch.ones(1, 1)
    absolute = pseudo_labels(p.log(), mask, labels, LossConfig(pseudo_neighbors=0))
    assert absolute[1].all() and (absolute[0] == 1).all()
    c_hat, keep = pseudo_labels(p.log(), mask, labels,
                                LossConfig(pseudo_neighbors=0, pseudo_relative=0.25))
    assert keep.all()
    assert c_hat[0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]


def test_renormalized_pseudo_labels_find_background_the_class_softmax_finds():
    # mu = 0.7 but a flat class soft-max: the AVE decision (argmax of p) says background
    # (0.3 > 0.7 / 6); raw, no probability reaches tau, renormalised over background and
    # the video's class, background does (0.3 / (0.3 + 0.7 / 6) = 0.72).
    p = torch.cat([torch.full((1, 5, 1), 0.3), torch.full((1, 5, 6), 0.7 / 6)], -1)
    mask, labels = torch.ones(1, 5, dtype=torch.bool), torch.eye(6)[None, 2]
    for renormalize, kept in [(False, 0), (True, 5)]:
        cfg = LossConfig(pseudo_tau=0.7, pseudo_renormalize=renormalize)
        c_hat, keep = pseudo_labels(p.log(), mask, labels, cfg)
        assert int(keep.sum()) == kept and (c_hat == 0).all()


# ---- Eq. 10 and switches ------------------------------------------------------------------
def test_total_loss_weights_and_switches():
    log_p, mu, h, mask, labels = random_batch([6, 6, 5])
    labels = with_labels(labels, [[1], [1], [2]])
    out = {"log_p": log_p, "mu": mu, "h": h, "feat": torch.randn(3, 6, 8, dtype=torch.float64)}
    cfg = LossConfig(pseudo_tau=0.3)
    loss, parts = total_loss(out, mask, labels, cfg)
    expected = parts["mil"] + 0.8 * parts["cas"] + 0.8 * parts["cont"] + 1.0 * parts["pseu"]
    assert loss.item() == pytest.approx(expected.item())
    _, off = total_loss(out, mask, labels, LossConfig(alpha=0, beta=0, gamma=0))
    assert set(off) == {"mil"}
