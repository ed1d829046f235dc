"""Eq. 1-5 against naive per-snippet references, masks, and the ablation variants."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from avloc.config import ModelConfig
from avloc.model import AVLocModel, CrossAttentionStage, openmax_probs

torch.manual_seed(0)


def naive_cross_attention(xu, xv, w, length, scale=1.0):
    """Eq. 1-2 with the paper's column convention, one snippet at a time.

    xu, xv (L, d) rows are snippets. Lambda[i, l] = x_u^i-hat . W x_v^l-hat; A_u is the
    column-wise soft-max of Lambda, A_v of Lambda^T; column l of X~_u = sum_i A_u[i, l] x_u^i.
    """
    L, d = xu.shape
    n = lambda x: x / x.norm()  # noqa: E731
    lam = torch.zeros(length, length, dtype=torch.float64)
    for i in range(length):
        for l in range(length):
            lam[i, l] = scale * n(xu[i]) @ w @ n(xv[l])
    a_u = torch.softmax(lam, dim=0)  # column-wise
    a_v = torch.softmax(lam.t(), dim=0)
    att_u = torch.zeros(length, d, dtype=torch.float64)
    att_v = torch.zeros(length, d, dtype=torch.float64)
    for l in range(length):
        for i in range(length):
            att_u[l] += a_u[i, l] * xu[i]
            att_v[l] += a_v[i, l] * xv[i]
    return att_u, att_v


@pytest.mark.parametrize("attention,scale", [("efficient", 1.0), ("explicit", 1.0),
                                             ("efficient", 10.0), ("explicit", 10.0)])
def test_cross_attention_matches_naive_eq_1_2(attention, scale):
    """scale: model.attention_scale, a temperature on Lambda (1 = Eq. 1 as printed)."""
    B, L, d = 2, 6, 5
    xu = torch.randn(B, L, d, dtype=torch.float64)
    xv = torch.randn(B, L, d, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(d, d, dtype=torch.float64))
    lengths = [6, 4]
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    stage = CrossAttentionStage(attention, False, w, scale)
    att_u, att_v, _ = stage(xu, xv, mask, return_attention=False)
    for b, n in enumerate(lengths):
        ref_u, ref_v = naive_cross_attention(xu[b, :n], xv[b, :n], w.detach(), n, scale)
        torch.testing.assert_close(att_u[b, :n], ref_u)
        torch.testing.assert_close(att_v[b, :n], ref_v)


def test_attention_map_columns_are_distributions_over_real_snippets():
    d, L = 4, 5
    w = torch.nn.Parameter(torch.randn(d, d))
    stage = CrossAttentionStage("explicit", False, w)
    mask = torch.tensor([[True, True, True, False, False]])
    _, _, a = stage(torch.randn(1, L, d), torch.randn(1, L, d), mask, return_attention=True)
    torch.testing.assert_close(a.sum(-1), torch.ones(1, L))
    assert torch.all(a[..., 3:] == 0)  # padded snippets get no attention weight


def naive_fusion(model, xu, xv):
    """Eq. 3-4: X_att^(t) = tanh(sum_{i<t} X_att^(i) + X~^(t)), then concatenation."""
    hist_u, hist_v = [xu], [xv]
    mask = torch.ones(xu.shape[:2], dtype=torch.bool)
    for stage in model.fusion.stages:
        att_u, att_v, _ = stage(hist_u[-1], hist_v[-1], mask, False)
        su = sum(hist_u)
        sv = sum(hist_v)
        hist_u.append(torch.tanh(su + att_u))
        hist_v.append(torch.tanh(sv + att_v))
    return torch.cat([hist_u[-1], hist_v[-1]], -1)


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_dense_skip_stages_match_eq_3_4(stages):
    cfg = ModelConfig(d_x=8, stages=stages, dropout=0.0)
    model = AVLocModel(cfg, 6, 7, 3).eval()
    xu, xv = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    fused, _ = model.fusion(xu, xv, mask)
    torch.testing.assert_close(fused, naive_fusion(model, xu, xv))
    assert len(model.fusion.ws) == stages  # one W per stage by default


def test_openmax_matches_eq_5_and_is_a_distribution():
    h, z = torch.randn(3, 4, 6), torch.randn(3, 4) * 5
    log_p, mu = openmax_probs(h, z)
    p = log_p.exp()
    ref_mu = torch.sigmoid(z)
    ref = torch.cat([(1 - ref_mu)[..., None], ref_mu[..., None] * torch.softmax(h, -1)], -1)
    torch.testing.assert_close(p, ref)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 4))
    assert torch.all((mu >= 0) & (mu <= 1))


def test_openmax_log_probs_finite_at_saturation():
    log_p, mu = openmax_probs(torch.tensor([[[1e4, -1e4]]]), torch.tensor([[1e4]]))
    assert torch.isfinite(log_p).all()
    assert mu.item() == 1.0


VARIANTS = {
    "full": {},
    "1-stage": {"stages": 1},
    "3-stage": {"stages": 3},
    "naive": {"stages": 0},
    "audio": {"modality": "audio", "stages": 0},
    "visual": {"modality": "visual", "stages": 0},
    "softmax": {"classifier": "softmax"},
    "shared-w": {"share_w": True},
}


def _batch(lengths, da=6, dv=7):
    L = max(lengths)
    audio, visual = torch.randn(len(lengths), L, da), torch.randn(len(lengths), L, dv)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    return audio, visual, mask


@pytest.mark.parametrize("name", VARIANTS)
def test_variable_lengths_give_the_same_outputs_as_alone(name):
    cfg = ModelConfig(d_x=16, **VARIANTS[name])
    model = AVLocModel(cfg, 6, 7, 4).eval()
    lengths = [7, 3, 5]
    audio, visual, mask = _batch(lengths)
    out = model(audio, visual, mask)
    assert out["log_p"].shape == (3, 7, 5)
    torch.testing.assert_close(out["log_p"].exp().sum(-1), torch.ones(3, 7))
    for b, n in enumerate(lengths):
        alone = model(audio[b:b + 1, :n], visual[b:b + 1, :n], mask[b:b + 1, :n])
        torch.testing.assert_close(out["log_p"][b, :n], alone["log_p"][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["mu"][b, :n], alone["mu"][0], atol=1e-5, rtol=1e-5)


def test_unimodal_models_ignore_the_other_modality():
    audio, visual, mask = _batch([5])
    a_model = AVLocModel(ModelConfig(d_x=8, modality="audio", stages=0), 6, 7, 3).eval()
    v_model = AVLocModel(ModelConfig(d_x=8, modality="visual", stages=0), 6, 7, 3).eval()
    torch.testing.assert_close(a_model(audio, visual, mask)["log_p"],
                               a_model(audio, torch.randn_like(visual), mask)["log_p"])
    torch.testing.assert_close(v_model(audio, visual, mask)["log_p"],
                               v_model(torch.randn_like(audio), visual, mask)["log_p"])
    assert a_model.f_v is None and v_model.f_u is None


def test_cross_attention_mixes_modalities():
    """With cross attention the audio stream depends on the visual input (and vice versa)."""
    audio, visual, mask = _batch([5])
    model = AVLocModel(ModelConfig(d_x=8, stages=1, dropout=0.0), 6, 7, 3).eval()
    xs = model.embed(audio, visual)
    fused, _ = model.fusion(xs[0], xs[1], mask)
    xs2 = model.embed(audio, torch.randn_like(visual))
    fused2, _ = model.fusion(xs2[0], xs2[1], mask)
    assert not torch.allclose(fused[..., :8], fused2[..., :8])  # audio half changed


def test_xavier_init_and_zero_bias():
    model = AVLocModel(ModelConfig(d_x=64), 32, 32, 5)
    bound = (6 / (32 + 64)) ** 0.5
    assert model.f_u.weight.abs().max() <= bound
    assert torch.all(model.f_u.bias == 0)


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_importing_avloc_puts_large_tensors_on_huge_pages_unless_told_not_to(preset, expected):
    """THP_MEM_ALLOC_ENABLE (read by torch at its first allocation) defaults to 1."""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    code = "import os, avloc; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == expected
