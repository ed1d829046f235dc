"""The model: modality embeddings, multi-stage cross attention, open-max classifier.

References
- The paper: "Cross-attentional audio-visual fusion for weakly-supervised action
  localization", Sec. 3.1 (Eq. 1-4) and Sec. 3.2 (Eq. 5).
- Dense skip connections: Huang et al., "Densely connected convolutional networks", 2017.
- Open set recognition: Bendale & Boult, "Towards open set deep networks", 2016.
- Audio-visual video parsing (the parsing head): Tian, Li and Xu, "Unified Multisensory
  Perception: Weakly-Supervised Audio-Visual Video Parsing", ECCV 2020 (HAN, its attentive
  MMIL pooling over time and modality).

Notation: B videos, L snippets, d_x embedding size, C action classes. The paper
writes features as columns (d x L); here they are rows, (B, L, d), so Eq. 1's
Lambda = X_u^T W X_v is `xu_hat @ W @ xv_hat^T`, and the column-wise soft-max of
Lambda becomes a soft-max over the audio axis for each visual snippet.

Padding: `mask` (B, L) is True on real snippets. Padded snippets are never attended
to (their keys are masked out); their outputs exist but every loss and pooling
ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from avloc.config import ModelConfig
from avloc.util.errors import AvlocError

NEG_INF = float("-inf")  # masked scores: weight exp(-inf) = 0 (attention, the losses' top-k)


def cross_attention_explicit(
    query: torch.Tensor, key: torch.Tensor, values: torch.Tensor, key_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-2 for one direction, with the L x L attention matrix materialised.

    scores[b, l, i] = query_l . key_i; row l of A = softmax_i(scores) is column l of the
    paper's A_u (or A_v); padded keys (key_mask False) get weight 0. Memory grows as
    L^2: only for when the map itself is wanted (plots). Returns (attended, A).
    """
    scores = query @ key.transpose(1, 2)  # (B, Lq, Lk)
    scores = scores.masked_fill(~key_mask[:, None, :], NEG_INF)
    attn = scores.softmax(dim=-1)  # (B, Lq, Lk)  each row sums to 1 over real keys
    return attn @ values, attn  # (B, Lq, d), (B, Lq, Lk)


def cross_attention_efficient(
    query: torch.Tensor, key: torch.Tensor, values: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """Eq. 1-2 via scaled_dot_product_attention: same result, memory linear in L.

    No 1/sqrt(d) scaling (scale=1): the features are l2-normalised and W is learned.
    One head of size d_x. On CPU PyTorch's flash kernel takes it (boolean mask
    included; tests/test_attention.py checks that no L x L buffer is allocated);
    on CUDA the memory-efficient kernel does (flash kernels stop at head size 256).
    """
    mask = key_mask[:, None, None, :]  # (B, 1, 1, Lk) True = attend
    out = F.scaled_dot_product_attention(
        query[:, None], key[:, None], values[:, None], attn_mask=mask, scale=1.0
    )  # (B, 1, Lq, d)
    return out[:, 0]


class CrossAttentionStage(nn.Module):
    """One stage of Eq. 1-3: cross-correlate, attend each modality with the other's guidance."""

    def __init__(self, attention: str, attend_normalized: bool, w: nn.Parameter,
                 scale: float = 1.0):
        super().__init__()
        self.attention = attention
        self.attend_normalized = attend_normalized
        self.w = w  # (d_x, d_x), possibly shared between stages
        self.scale = scale  # Lambda = scale * X_u-hat^T W X_v-hat (model.attention_scale)

    def forward(
        self, xu: torch.Tensor, xv: torch.Tensor, mask: torch.Tensor, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(B, L, d) audio and visual in; attended audio and visual (X~_u, X~_v) out."""
        xu_hat = F.normalize(xu, dim=-1)  # (B, L, d) l2-normalised snippets (Sec. 3.1)
        xv_hat = F.normalize(xv, dim=-1)  # (B, L, d)
        vu = xu_hat if self.attend_normalized else xu  # values of Eq. 2
        vv = xv_hat if self.attend_normalized else xv
        # Eq. 1: Lambda[i, l] = x_u^i-hat . W x_v^l-hat = (x_u^i-hat W) . x_v^l-hat, so one
        # projection P = X_u-hat W serves both directions. Audio attended for each visual
        # snippet l (A_u): query x_v^l-hat, keys P. Visual attended for each audio snippet
        # (A_v, soft-max of Lambda^T): query P^l, keys x_v-hat.
        p = (xu_hat @ self.w) * self.scale  # (B, L, d)
        if self.attention == "explicit" or return_attention:
            att_u, a_u = cross_attention_explicit(xv_hat, p, vu, mask)
        else:
            att_u, a_u = cross_attention_efficient(xv_hat, p, vu, mask), None
        if self.attention == "explicit":
            att_v, _ = cross_attention_explicit(p, xv_hat, vv, mask)
        else:
            att_v = cross_attention_efficient(p, xv_hat, vv, mask)
        return att_u, att_v, a_u


class MultiStageCrossAttention(nn.Module):
    """Eq. 3-4: t_e stages with dense skip connections and tanh, then concatenation."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = 1 if cfg.share_w else cfg.stages
        self.ws = nn.ParameterList(nn.Parameter(torch.empty(cfg.d_x, cfg.d_x)) for _ in range(n))
        self.stages = nn.ModuleList(
            CrossAttentionStage(cfg.attention, cfg.attend_normalized,
                                self.ws[0 if cfg.share_w else t], cfg.attention_scale)
            for t in range(cfg.stages)
        )

    def forward(
        self, xu: torch.Tensor, xv: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x_u, x_v, attn = self.streams(xu, xv, mask, return_attention)
        return torch.cat([x_u, x_v], dim=-1), attn  # (B, L, 2d) Eq. 4

    def streams(
        self, xu: torch.Tensor, xv: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Eq. 3 alone: the last stage's attended audio and visual streams, before Eq. 4."""
        x_u, x_v = xu, xv  # X_att^(0) = X (Eq. 3)
        sum_u, sum_v = xu, xv  # the dense skips sum_{i<t} X_att^(i), kept as running sums
        attn = None
        for t, stage in enumerate(self.stages):
            last = t == len(self.stages) - 1
            att_u, att_v, attn = stage(x_u, x_v, mask, return_attention and last)
            x_u = torch.tanh(sum_u + att_u)  # (B, L, d) Eq. 3
            x_v = torch.tanh(sum_v + att_v)  # (B, L, d)
            if not last:
                sum_u, sum_v = sum_u + x_u, sum_v + x_v
        return x_u, x_v, attn  # (B, L, d) X_att,u^(t_e), X_att,v^(t_e)


@dataclass
class ModelOutput:
    """What the model gives for a padded batch, whichever its head; a field the head does
    not make is None. Read as attributes or by name (`out["log_p"]`, `"attn" in out`).

    fused head (model.head=fused):
      log_p  (B, L, C+1)   log open-max (or soft-max) probabilities, index 0 = background
      mu     (B, L)        foreground reliability (1 - p_bg for the soft-max classifier)
      h      (B, L, C)     action logits (the first C+1 logits' action part for soft-max)
    parsing head (model.head=parsing; M = 2 streams, 1 for a uni-modal model):
      frame  (B, L, M, C)  per-segment event probabilities of each stream
      mu     (B, L, M)     each stream's foreground reliability (max_c p without mu)
      video  (B, C)        video-level event probabilities, pooled over time and streams
      stream (B, M, C)     each stream's video-level probabilities (pooled over time)
    both:
      feat   (B, L, F)     what CASL compares: the fused feature (parsing: the streams
                           concatenated), after dropout
      attn   (B, L, L)     with return_attention only: the last stage's audio attention A_u
    """

    mu: torch.Tensor
    feat: torch.Tensor
    log_p: torch.Tensor | None = None
    h: torch.Tensor | None = None
    frame: torch.Tensor | None = None
    video: torch.Tensor | None = None
    stream: torch.Tensor | None = None
    attn: torch.Tensor | None = None

    @property
    def parsing(self) -> bool:
        return self.frame is not None

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: str) -> bool:
        return getattr(self, name, None) is not None and name in self.__dataclass_fields__

    def full_precision(self) -> ModelOutput:
        """Every tensor in float32 (or float64) even under bf16 autocast: the losses' inputs."""
        return replace(self, **{f.name: full_precision(getattr(self, f.name))
                                for f in fields(self) if getattr(self, f.name) is not None})


DTYPES = {"float32": torch.float32, "float64": torch.float64}  # setting train.dtype


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 (autocast) -> float32; float32 and float64 (train.dtype) as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def openmax_probs(h: torch.Tensor, mu_logit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5: p = [1 - mu; mu * softmax(h)] over C + 1 classes, computed in log space.

    Returns (log p (B, L, C+1), mu (B, L)). log(1 - mu) = logsigmoid(-z) stays finite
    for mu -> 0 or 1, so -log p never overflows.
    """
    log_mu = F.logsigmoid(mu_logit)  # (B, L)
    log_bg = F.logsigmoid(-mu_logit)  # (B, L)  log(1 - mu)
    log_ac = log_mu[..., None] + h.log_softmax(dim=-1)  # (B, L, C)
    return torch.cat([log_bg[..., None], log_ac], dim=-1), log_mu.exp()


class StreamHead(nn.Module):
    """The parsing head of one modality's stream: which events occur in each segment.

    Multi-label, so each class gets a sigmoid, not Eq. 5's soft-max over classes; Eq. 5's
    foreground reliability carries over as a class-agnostic gate (`parsing_mu`):
    p(c) = mu * sigmoid(h(c)), with 1 - mu the probability that nothing happens in this
    modality here. With attentive pooling, two more layers give HAN's per-class attention
    logits over time and over modality.
    """

    def __init__(self, d: int, num_classes: int, mu: bool, attention: bool):
        super().__init__()
        self.events = nn.Linear(d, num_classes)  # h: C event logits
        self.fg = nn.Linear(d, 1) if mu else None  # mu: foreground reliability
        self.time_att = nn.Linear(d, num_classes) if attention else None
        self.modality_att = nn.Linear(d, num_classes) if attention else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, L, d) -> p (B, L, C), mu (B, L) and, when attentive, logits (B, L, C)."""
        h = self.events(x).float()  # (B, L, C) float32 even under bf16 autocast
        mu = torch.sigmoid(self.fg(x)[..., 0].float()) if self.fg is not None else None  # (B, L)
        p = torch.sigmoid(h) * (mu[..., None] if mu is not None else 1.0)  # (B, L, C)
        out = {"p": p, "mu": mu if mu is not None else p.amax(-1)}
        if self.time_att is not None:
            out["time_att"] = self.time_att(x).float()  # (B, L, C)
            out["modality_att"] = self.modality_att(x).float()  # (B, L, C)
        return out


def parsing_pool(
    heads: list[dict[str, torch.Tensor]], mask: torch.Tensor, pool: str, topk_divisor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-segment probabilities of M streams -> (video (B, C), per stream (B, M, C)).

    attention (HAN): per stream and class a soft-max over real segments of its attention
    logits weights p; the stream's video-level probability is that weighted sum, and the
    video's is their mix by a per-segment soft-max over the streams. topk (the paper's
    MIL): each stream's mean of its top k = ceil(L / divisor) segments, then the max over
    streams (an event is in the video when it is heard or seen).
    """
    p = torch.stack([h["p"] for h in heads], dim=2)  # (B, L, M, C)
    real = mask[:, :, None, None]  # (B, L, 1, 1)
    if pool == "attention":
        t_logit = torch.stack([h["time_att"] for h in heads], dim=2)  # (B, L, M, C)
        t_att = t_logit.masked_fill(~real, NEG_INF).softmax(dim=1)  # (B, L, M, C) over time
        m_att = torch.stack([h["modality_att"] for h in heads], dim=2).softmax(dim=2)
        weighted = t_att * p  # (B, L, M, C)
        return (weighted * m_att).sum(dim=(1, 2)), weighted.sum(dim=1)  # (B, C), (B, M, C)
    k = topk_count(mask.sum(1), topk_divisor)  # (B,)
    top = p.masked_fill(~real, -1.0).sort(dim=1, descending=True).values  # (B, L, M, C)
    rank = torch.arange(p.shape[1], device=p.device)[None, :, None, None]  # (1, L, 1, 1)
    keep = rank < k[:, None, None, None]  # (B, L, 1, 1)
    per_stream = (top * keep).sum(1) / k[:, None, None]  # (B, M, C)
    return per_stream.amax(dim=1), per_stream


class AVLocModel(nn.Module):
    """Embeddings (f_u, f_v) -> fusion (0..t_e cross-attention stages) -> classifier."""

    def __init__(self, cfg: ModelConfig, audio_dim: int, visual_dim: int, num_classes: int,
                 topk_divisor: int = 8):
        """topk_divisor: the parsing head's top-k pooling (loss.topk_divisor of the run)."""
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.topk_divisor = topk_divisor
        self.f_u = nn.Linear(audio_dim, cfg.d_x) if cfg.modality in ("av", "audio") else None
        self.f_v = nn.Linear(visual_dim, cfg.d_x) if cfg.modality in ("av", "visual") else None
        self.fusion = MultiStageCrossAttention(cfg) if cfg.stages > 0 else None
        fused = 2 * cfg.d_x if cfg.modality == "av" else cfg.d_x
        self.dropout = nn.Dropout(cfg.dropout)
        self.stream_heads = None
        if cfg.head == "parsing":  # one head per stream; a uni-modal model has one stream
            streams = 2 if cfg.modality == "av" else 1
            self.stream_heads = nn.ModuleList(
                StreamHead(cfg.d_x, num_classes, cfg.parsing_mu, cfg.parsing_pool == "attention")
                for _ in range(streams))
            self.action_head = self.fg_head = None
        elif cfg.classifier == "openmax":
            self.action_head = nn.Linear(fused, num_classes)  # h: C action classes
            self.fg_head = nn.Linear(fused, 1)  # mu: foreground reliability
        else:
            self.action_head = nn.Linear(fused, num_classes + 1)  # soft-max over C + 1
            self.fg_head = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier init for every weight matrix (Sec. 4.2), zero biases."""
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)

    def embed(self, audio: torch.Tensor, visual: torch.Tensor) -> list[torch.Tensor]:
        act = lambda x: F.leaky_relu(x, self.cfg.leaky_slope)  # noqa: E731
        out = []
        if self.f_u is not None:
            out.append(act(self.f_u(audio)))  # (B, L, d_x) X_u
        if self.f_v is not None:
            out.append(act(self.f_v(visual)))  # (B, L, d_x) X_v
        return out

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, mask: torch.Tensor,
        return_attention: bool = False,
    ) -> ModelOutput:
        """audio (B, L, D_a), visual (B, L, D_v), mask (B, L) bool -> per-snippet outputs
        (`ModelOutput`); the parsing head's come from `parse`."""
        if self.stream_heads is not None:
            return self.parse(audio, visual, mask, return_attention)
        xs = self.embed(audio, visual)
        attn = None
        if self.fusion is not None:
            x_att, attn = self.fusion(xs[0], xs[1], mask, return_attention)  # (B, L, 2d)
        else:
            x_att = torch.cat(xs, dim=-1)  # (B, L, 2d) naive fusion, or (B, L, d) uni-modal
        x_att = self.dropout(x_att)
        if self.fg_head is not None:
            # probabilities in float32 (or float64) even under bf16 autocast: log p feeds
            # every loss
            h = full_precision(self.action_head(x_att))  # (B, L, C)
            log_p, mu = openmax_probs(h, full_precision(self.fg_head(x_att)[..., 0]))
        else:
            logits = full_precision(self.action_head(x_att))  # (B, L, C+1)
            log_p = logits.log_softmax(dim=-1)
            mu = 1 - log_p[..., 0].exp()
            h = logits[..., 1:]
        return ModelOutput(mu=mu, feat=x_att, log_p=log_p, h=h, attn=attn)

    def parse(
        self, audio: torch.Tensor, visual: torch.Tensor, mask: torch.Tensor,
        return_attention: bool = False,
    ) -> ModelOutput:
        """The parsing head: audio events from the attended audio stream, visual events from
        the attended visual stream (Eq. 3 without Eq. 4's concatenation; 0 stages: the
        embeddings X_u, X_v themselves). M = 2 streams, or 1 for a uni-modal model, whose
        one stream stands for both modalities (`predict` copies it)."""
        xs = self.embed(audio, visual)
        attn = None
        if self.fusion is not None:
            x_u, x_v, attn = self.fusion.streams(xs[0], xs[1], mask, return_attention)
            xs = [x_u, x_v]  # (B, L, d) each
        xs = [self.dropout(x) for x in xs]
        heads = [head(x) for head, x in zip(self.stream_heads, xs, strict=True)]
        video, stream = parsing_pool(heads, mask, self.cfg.parsing_pool, self.topk_divisor)
        return ModelOutput(
            mu=torch.stack([h["mu"] for h in heads], dim=2),  # (B, L, M)
            feat=torch.cat(xs, dim=-1),  # (B, L, M d)
            frame=torch.stack([h["p"] for h in heads], dim=2),  # (B, L, M, C)
            video=video, stream=stream, attn=attn)


def build_model(
    cfg: ModelConfig, audio_dim: int, visual_dim: int, num_classes: int, topk_divisor: int = 8
) -> AVLocModel:
    """The model for features of these sizes; audio_dim 0 (no audio) only for visual-only.
    topk_divisor: loss.topk_divisor, for the parsing head's top-k pooling."""
    for name, dim, used in (("audio", audio_dim, ("av", "audio")),
                            ("visual", visual_dim, ("av", "visual"))):
        if cfg.modality in used and dim < 1:
            raise AvlocError(f"setting model.modality={cfg.modality}: the features have no "
                             f"{name} (D = {dim}); use model.modality=visual model.stages=0")
    return AVLocModel(cfg, audio_dim, visual_dim, num_classes, topk_divisor)


def topk_count(lengths: torch.Tensor, divisor: int) -> torch.Tensor:
    """k = ceil(L / divisor) per video (W-TALC), at least 1, at most L."""
    return torch.clamp(torch.ceil(lengths.float() / divisor), min=1).long()


__all__ = ["AVLocModel", "DTYPES", "ModelOutput", "build_model",
           "full_precision", "openmax_probs", "topk_count"]
