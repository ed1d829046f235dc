"""Memory-efficient cross attention (SDPA) against the explicit L x L form.

Both forms compute Eq. 1-2; the efficient one must agree to float tolerance (values
and gradients, with padding masks), never allocate an L x L buffer, and count_flops
must match what torch's own FLOP counter sees.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from avloc.config import ModelConfig
from avloc.model import (
    AVLocModel,
    CrossAttentionStage,
    cross_attention_efficient,
    cross_attention_explicit,
)
from avloc.util.profiling import count_flops, cpu_peak_bytes


def padding_mask(lengths: list[int], L: int) -> torch.Tensor:
    return torch.arange(L)[None] < torch.tensor(lengths)[:, None]  # (B, L)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_efficient_matches_explicit_with_masks(dtype):
    torch.manual_seed(0)
    B, L, d = 4, 9, 16
    lengths = [9, 5, 1, 7]
    mask = padding_mask(lengths, L)
    q, k, v = (torch.randn(B, L, d, dtype=dtype, requires_grad=True) for _ in range(3))
    eff = cross_attention_efficient(q, k, v, mask)
    exp, attn = cross_attention_explicit(q, k, v, mask)
    torch.testing.assert_close(eff, exp)
    assert torch.all(attn[~mask[:, None, :].expand_as(attn)] == 0)  # padded keys unused
    g = torch.randn_like(eff)
    grads_eff = torch.autograd.grad(eff, (q, k, v), g)
    grads_exp = torch.autograd.grad(exp, (q, k, v), g)
    for a, b in zip(grads_eff, grads_exp, strict=True):
        torch.testing.assert_close(a, b)


def test_efficient_ignores_whatever_sits_in_padding():
    """Real snippets' outputs do not depend on the padded snippets' contents."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 8, 6) for _ in range(3))
    mask = padding_mask([8, 3], 8)
    out = cross_attention_efficient(q, k, v, mask)
    k2, v2 = k.clone(), v.clone()
    k2[1, 3:] = 1e3
    v2[1, 3:] = -1e3
    out2 = cross_attention_efficient(q, k2, v2, mask)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(out[1], cross_attention_efficient(q[1:], k[1:, :3], v[1:, :3],
                                                                 mask[1:, :3])[0])


@pytest.mark.parametrize("normalized", [False, True])
def test_stage_and_model_agree_across_forms(normalized):
    """Whole model, both forms, same weights: outputs and weight gradients agree."""
    torch.manual_seed(2)
    cfgs = [ModelConfig(d_x=16, stages=2, dropout=0.0, attention=a,
                        attend_normalized=normalized) for a in ("efficient", "explicit")]
    eff, exp = (AVLocModel(c, 6, 10, 4) for c in cfgs)
    exp.load_state_dict(eff.state_dict())
    audio, visual = torch.randn(3, 7, 6), torch.randn(3, 7, 10)
    mask = padding_mask([7, 4, 2], 7)
    outs = [m(audio, visual, mask) for m in (eff, exp)]
    for key in ("log_p", "mu", "feat"):
        torch.testing.assert_close(outs[0][key], outs[1][key])
    for o in outs:
        (o["log_p"] * mask[..., None]).sum().backward()
    for (name, a), (_, b) in zip(eff.named_parameters(), exp.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    # the map for plots comes from the efficient model too, and equals the explicit one
    a_eff = eff(audio, visual, mask, return_attention=True)["attn"]
    a_exp = exp(audio, visual, mask, return_attention=True)["attn"]
    torch.testing.assert_close(a_eff, a_exp)


def test_stage_reuses_one_projection_for_both_directions():
    """Eq. 1 against the paper's formula written out: Lambda = X_u-hat^T W X_v-hat."""
    torch.manual_seed(3)
    d, L = 5, 4
    w = torch.nn.Parameter(torch.randn(d, d, dtype=torch.float64))
    xu, xv = torch.randn(1, L, d, dtype=torch.float64), torch.randn(1, L, d, dtype=torch.float64)
    stage = CrossAttentionStage("efficient", False, w)
    att_u, att_v, _ = stage(xu, xv, torch.ones(1, L, dtype=torch.bool), False)
    un, vn = xu[0] / xu[0].norm(dim=1, keepdim=True), xv[0] / xv[0].norm(dim=1, keepdim=True)
    lam = un @ w.detach() @ vn.t()  # (L, L) Lambda[i, l]
    torch.testing.assert_close(att_u[0], lam.softmax(0).t() @ xu[0])  # column-wise soft-max
    torch.testing.assert_close(att_v[0], lam.t().softmax(0).t() @ xv[0])


@pytest.mark.parametrize("train", [False, True])
def test_efficient_attention_never_allocates_an_L_by_L_matrix(train):
    """Peak memory stays far below one (B, L, L) float matrix, forward and backward;
    the explicit form's peak is above it (the measurement itself works)."""
    torch.manual_seed(4)
    B, L, d = 2, 2048, 32
    q, k, v = (torch.randn(B, L, d, requires_grad=train) for _ in range(3))
    mask = padding_mask([L, 1500], L)
    matrix = B * L * L * 4

    def run(fn):
        with torch.set_grad_enabled(train):
            out = fn(q, k, v, mask)
            if train:
                out.sum().backward()

    efficient = cpu_peak_bytes(lambda: run(cross_attention_efficient))
    explicit = cpu_peak_bytes(lambda: run(lambda *a: cross_attention_explicit(*a)[0]))
    assert explicit >= matrix
    assert efficient < matrix / 4, f"{efficient / matrix:.2f} of an L x L matrix"


@pytest.mark.parametrize("stages,modality", [(2, "av"), (1, "av"), (0, "av"), (0, "audio")])
def test_count_flops_matches_torch_flop_counter(stages, modality):
    """count_flops (forward, and forward + backward) equals torch's FLOP counter on the
    explicit model, whose every FLOP is a plain matmul."""
    cfg = ModelConfig(d_x=16, stages=stages, modality=modality, attention="explicit",
                      dropout=0.0)
    da, dv, C, B, L = 6, 10, 4, 3, 7
    model = AVLocModel(cfg, da, dv, C)
    audio, visual = torch.randn(B, L, da), torch.randn(B, L, dv)
    mask = torch.ones(B, L, dtype=torch.bool)
    with FlopCounterMode(display=False) as fwd:
        out = model(audio, visual, mask)
    assert fwd.get_total_flops() == B * count_flops(cfg, da, dv, C, L)
    with FlopCounterMode(display=False) as both:
        model(audio, visual, mask)["log_p"].sum().backward()
    assert both.get_total_flops() == B * count_flops(cfg, da, dv, C, L, backward=True)
    assert out["log_p"].shape == (B, L, C + 1)
