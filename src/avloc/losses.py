"""Training losses (Sec. 3.3, Eq. 6-10, Appendix C).

References
- MIL with top-k pooling and the co-activity similarity loss (CASL): Paul, Roy and
  Roy-Chowdhury, "W-TALC: Weakly-supervised temporal activity localization and
  classification", ECCV 2018.
- Foreground continuity (Eq. 6-8) and pseudo localization (Eq. 9): the paper, Sec. 3.3.
- The parsing losses (`parsing_*`, LLP): multi-label MIL with HAN's guided per-modality
  learning and label smoothing (Tian, Li and Xu, ECCV 2020), and Eq. 6-9 carried over to
  each stream's multi-label probabilities.

Every loss takes the model outputs for a padded batch and `mask` (B, L), True on real
snippets; padded snippets contribute nothing. Losses are means over videos. Inputs:
  log_p  (B, L, C+1)  log open-max probabilities, index 0 = background
  mu     (B, L)       foreground reliability
  labels (B, C)       video-level multi-hot; an all-zero row is a background-only video
docs/paper-notes.md explains each choice the paper leaves open.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avloc.config import LossConfig
from avloc.model import NEG_INF, ModelOutput, topk_count

EPS = 1e-6


def _video_mean(per_snippet: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L) values -> mean over each video's real snippets -> mean over videos."""
    per_video = (per_snippet * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B,)
    return per_video.mean()


def mil_targets(labels: torch.Tensor, background_topk: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-level targets over C + 1 classes and which of them MIL scores.

    Background (class 0) is a positive for background-only videos and, with
    `background_topk`, for every video (untrimmed videos hold background somewhere);
    otherwise it is left out of the loss for videos with actions.
    """
    bg_only = labels.sum(1) == 0  # (B,)
    y = torch.cat([torch.ones_like(labels[:, :1]), labels], dim=1)  # (B, C+1)
    used = torch.ones_like(y, dtype=torch.bool)
    if not background_topk:
        used[:, 0] = bg_only
    return y, used


def topk_pool_log(log_p: torch.Tensor, mask: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """log of the mean of the top-k probabilities over time, per video and class.

    log_p (B, L, K), mask (B, L), k (B, K) -> (B, K). Done in log space
    (logsumexp - log k) so that tiny probabilities never underflow to log 0.
    """
    masked = log_p.masked_fill(~mask[..., None], NEG_INF)  # (B, L, K)
    top, _ = masked.sort(dim=1, descending=True)  # (B, L, K)
    rank = torch.arange(log_p.shape[1], device=log_p.device)[None, :, None]  # (1, L, 1)
    top = top.masked_fill(rank >= k[:, None, :], NEG_INF)  # keep the k largest
    return torch.logsumexp(top, dim=1) - torch.log(k.to(log_p.dtype))  # (B, K)


def mil_loss(
    log_p: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """L_mil (Appendix C): top-k temporal pooling of p, then balanced binary cross-entropy.

    Class score s(c) = mean of the top k = ceil(L/8) values of p^l(c). For a
    background-only video every snippet is background, so its background score pools
    all L snippets; in other videos it pools ceil(L / background_divisor) when that is
    set. Loss per video = mean over positive classes of -log s(c) + mean over negative
    classes of -log(1 - s(c)).
    """
    lengths = mask.sum(1)  # (B,)
    y, used = mil_targets(labels, cfg.background_topk)  # (B, C+1)
    k = topk_count(lengths, cfg.topk_divisor)[:, None].expand_as(y).clone()  # (B, C+1)
    bg_only = labels.sum(1) == 0  # (B,)
    if cfg.background_divisor:
        k[:, 0] = topk_count(lengths, cfg.background_divisor)
    k[:, 0] = torch.where(bg_only, lengths, k[:, 0])  # no boolean indexing: no device sync
    log_s = topk_pool_log(log_p, mask, k)  # (B, C+1)
    log_not_s = torch.log1p(-log_s.exp().clamp(max=1 - EPS))  # (B, C+1)
    pos = (y > 0) & used
    neg = (y == 0) & used
    # the background positive of a video with actions weighs loss.background_weight: most
    # such AVE videos are event all along, so its top-k snippets are often event snippets
    w = torch.ones_like(y)  # (B, C+1)
    w[:, 0] = torch.where(bg_only, w[:, 0], torch.full_like(w[:, 0], cfg.background_weight))
    pos_term = -(log_s * pos * w).sum(1) / pos.sum(1).clamp(min=1)  # (B,)
    neg_term = -(log_not_s * neg).sum(1) / neg.sum(1).clamp(min=1)  # (B,)
    return (pos_term + neg_term).mean()


def casl_features(
    feat: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The features L_cas compares: per video and class, H = sum_t a_t x_t (the class's
    region, a = soft-max over time of the scores) and L = sum_t (1 - a_t) x_t / (L - 1)
    (the rest). feat (B, L, F), scores (B, L, C), mask (B, L) -> H, L (B, C, F) each."""
    lengths = mask.sum(1).float()  # (B,)
    att = scores.masked_fill(~mask[..., None], NEG_INF).softmax(dim=1)  # (B, L, C)
    att = att.nan_to_num(0.0)  # a fully padded row cannot occur, but stay finite
    rest = (1 - att) * mask[..., None] / (lengths - 1).clamp(min=1)[:, None, None]  # (B, L, C)
    # H and L in one product: feat's gradient, (B, L, F), is then written once, not twice
    weights = torch.cat([att, rest], dim=-1)  # (B, L, 2C)
    high, low = torch.einsum("blk,blf->bkf", weights, feat).chunk(2, dim=1)  # (B, C, F) each
    return high, low


def center_over_time(feat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """feat (B, L, F) minus each video's mean over its real snippets -> (B, L, F)."""
    mean = (feat * mask[..., None]).sum(1) / mask.sum(1).clamp(min=1)[:, None]  # (B, F)
    return feat - mean[:, None, :]


def casl_loss(
    feat: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
    margin: float, classes: torch.Tensor | None = None, center: bool = False,
) -> torch.Tensor:
    """L_cas (W-TALC): videos sharing a class have similar high-attention features.

    feat (B, L, F) fused features; scores (B, L, C) per-class activations whose soft-max
    over time is the attention. For class c and video m: H_m and L_m of
    `casl_features`. For every ordered
    pair (m, n), m != n, both labelled c, with cosine distance d:
      0.5 * (max(0, d(H_m, H_n) - d(H_m, L_n) + margin)
             + max(0, d(H_m, H_n) - d(L_m, H_n) + margin)).
    The mean over all such (m, n, c); 0 when no two videos share a class.

    `classes` (K,), optional: score only these; a class fewer than two videos hold adds
    no pair, so passing the shared ones (Batch.casl_classes) gives the same loss with
    K instead of C class features (C = 100 on ActivityNet; K is a handful per batch).
    `center`: x_t minus its video's mean over real snippets (then L_m = -H_m / (L - 1) and
    the hinge reads max(0, margin - 2 cos(H_m, H_n)): the class regions' departures from
    their videos' means agree).
    """
    if center:
        feat = center_over_time(feat, mask)
    if classes is not None:
        scores, labels = scores[..., classes], labels[:, classes]  # (B, L, K), (B, K)
    high, low = casl_features(feat, scores, mask)  # (B, C, F) each
    hn, ln = F.normalize(high, dim=-1, eps=EPS), F.normalize(low, dim=-1, eps=EPS)
    d_hh = 1 - torch.einsum("mcf,ncf->cmn", hn, hn)  # (C, B, B) d(H_m, H_n)
    d_hl = 1 - torch.einsum("mcf,ncf->cmn", hn, ln)  # (C, B, B) d(H_m, L_n)
    d_lh = d_hl.transpose(1, 2)  # (C, B, B) d(L_m, H_n)
    pair = labels.t()[:, :, None] * labels.t()[:, None, :]  # (C, B, B) both have class c
    pair = pair * (1 - torch.eye(labels.shape[0], device=feat.device))[None]
    hinge = 0.5 * (F.relu(d_hh - d_hl + margin) + F.relu(d_hh - d_lh + margin))  # (C, B, B)
    # no pair sharing a class gives 0 (not NaN), without a host-device sync
    return (hinge * pair).sum() / pair.sum().clamp(min=1)


def gaussian_window(width: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """G(i) for i = -B/2 .. B/2 (width = B + 1 taps), scaled to sum to B + 1.

    With this scaling Eq. 6's 1/(B+1) * sum_i G(i) mu^{l-i} is a weighted average.
    """
    i = torch.arange(width, device=device, dtype=torch.float64) - (width - 1) / 2
    g = torch.exp(-(i**2) / (2 * sigma**2)) if sigma > 0 else (i == 0).float()
    return g / g.sum() * width


def temporal_smooth(x: torch.Tensor, mask: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """1/(B+1) sum_i G(i) x^{l-i} over real neighbours only: x (B, L, K) -> (B, L, K).

    At video ends and next to padding the missing neighbours are dropped and the
    remaining weights renormalised, so padding never leaks into a real snippet.
    """
    B, L, K = x.shape
    w = taps.to(x.dtype)[None, None, :]  # (1, 1, width) symmetric, so conv == correlation
    pad = (taps.numel() - 1) // 2
    xm = (x * mask[..., None]).permute(0, 2, 1).reshape(B * K, 1, L)  # (B*K, 1, L)
    num = F.conv1d(xm, w, padding=pad).reshape(B, K, L).permute(0, 2, 1)  # (B, L, K)
    den = F.conv1d(mask[:, None].to(x.dtype), w, padding=pad)[:, 0]  # (B, L)
    return num / den.clamp(min=EPS)[..., None]


def foreground_continuity_loss(
    log_p: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
    cfg: LossConfig,
) -> torch.Tensor:
    """L_cont (Eq. 6-8): mu agrees with its smoothed self and with the smoothed p(c-hat).

    mu_ag (Eq. 6) smooths mu; mu_sp (Eq. 7) smooths the open-max probability of the
    video's ground-truth class c-hat (for a video with several classes, the one with
    the highest p at that snippet). Background-only videos have no c-hat: only the
    class-agnostic term counts for them.
    """
    taps = gaussian_window(cfg.cont_window + 1, cfg.cont_sigma, mu.device)
    mu_ag = temporal_smooth(mu[..., None], mask, taps)[..., 0]  # (B, L) Eq. 6
    p_gt = log_p[..., 1:].exp().masked_fill(labels[:, None, :] == 0, 0.0)  # (B, L, C)
    p_hat = p_gt.max(dim=-1).values  # (B, L) p^l(c-hat)
    if cfg.cont_detach_class:
        p_hat = p_hat.detach()
    mu_sp = temporal_smooth(p_hat[..., None], mask, taps)[..., 0]  # (B, L) Eq. 7
    has_class = (labels.sum(1) > 0).float()[:, None]  # (B, 1)
    per_snippet = (mu - mu_ag).abs() + has_class * (mu - mu_sp).abs()  # (B, L) Eq. 8
    return _video_mean(per_snippet, mask)


def pseudo_labels(
    log_p: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """q^l = mean of p over snippet l and its N neighbours; c-hat^l = argmax q^l (Eq. 9).

    Returns (c-hat (B, L) long, keep (B, L) bool: max q >= tau). With
    `pseudo_video_classes` the argmax runs over background and the video's own classes
    only: a weak label already rules the others out; with `pseudo_renormalize` their q is
    renormalised to sum to 1 before the tau test.
    """
    with torch.no_grad():
        box = torch.ones(cfg.pseudo_neighbors + 1, device=log_p.device, dtype=torch.float64)
        q = temporal_smooth(log_p.exp(), mask, box)  # (B, L, C+1)
        if cfg.pseudo_video_classes:
            allowed = torch.cat([torch.ones_like(labels[:, :1]), labels], dim=1) > 0  # (B, C+1)
            if cfg.pseudo_renormalize:
                q = q * allowed[:, None, :]  # (B, L, C+1)
                q = q / q.sum(-1, keepdim=True).clamp(min=EPS)
            q = q.masked_fill(~allowed[:, None, :], -1.0)
        q_max, c_hat = q.max(dim=-1)  # (B, L)
        keep = (q_max >= cfg.pseudo_tau) & mask
        if cfg.pseudo_relative:
            return relative_pseudo_labels(q, mask, labels, cfg.pseudo_relative, c_hat, keep)
    return c_hat, keep


def relative_pseudo_labels(q: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, t: float,
                           c_hat: torch.Tensor, keep: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """loss.pseudo_relative = t: q (B, L, C+1) above hi = min + (1 - t)(max - min) of q(c) over
    the video for an own class c: the likeliest such class; below lo = min + t (max - min) for
    every own class: background; else none. Videos without a class keep Eq. 9's labels."""
    own = (labels > 0)[:, None, :]  # (B, 1, C)
    qc = q[..., 1:]  # (B, L, C)
    lo_q = qc.masked_fill(~mask[..., None], float("inf")).amin(dim=1, keepdim=True)  # (B, 1, C)
    span = qc.masked_fill(~mask[..., None], -1.0).amax(dim=1, keepdim=True) - lo_q  # (B, 1, C)
    above = (qc > lo_q + (1 - t) * span) & own  # (B, L, C)
    below = ((qc < lo_q + t * span) | ~own).all(dim=-1)  # (B, L)
    fg = above.any(dim=-1)  # (B, L)
    rel_hat = torch.where(fg, qc.masked_fill(~above, -1.0).argmax(dim=-1) + 1, 0)  # (B, L)
    has_class = own.any(dim=-1)  # (B, 1)
    return (torch.where(has_class, rel_hat, c_hat),
            torch.where(has_class, (fg | below) & mask, keep))


def pseudo_localization_loss(
    log_p: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """L_pseu (Eq. 9): 1/L sum_l 1(max q^l >= tau) * -log p^l(c-hat^l)."""
    c_hat, keep = pseudo_labels(log_p, mask, labels, cfg)
    nll = -log_p.gather(-1, c_hat[..., None])[..., 0]  # (B, L)
    return _video_mean(nll * keep, mask)


def self_training_loss(log_p: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor
                       ) -> torch.Tensor:
    """The student's term of self-training (ASM-Loc's pseudo-label supervision): per video
    the sum over its snippets with a teacher's pseudo label (`targets` (B, L) long, -1 on
    the others and on padding) of -log p^l(target), over its length L; mean over videos."""
    keep = (targets >= 0) & mask  # (B, L)
    nll = -log_p.gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (B, L)
    return _video_mean(nll * keep, mask)


def total_loss(
    out: dict[str, torch.Tensor], mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig,
    casl_classes: torch.Tensor | None = None, snippet_targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
    """Eq. 10: L = L_mil + alpha L_cas + beta L_cont + gamma L_pseu. A weight of 0 skips a term.

    casl_classes: optional, see casl_loss (the same value, cheaper). snippet_targets (B, L):
    a teacher's pseudo labels (self-training), weighted by loss.self_training_weight."""
    log_p = out["log_p"]
    parts: dict[str, torch.Tensor] = {"mil": mil_loss(log_p, mask, labels, cfg)}
    if cfg.alpha:
        scores = log_p[..., 1:] if cfg.casl_scores == "prob" else out["h"]
        parts["cas"] = casl_loss(out["feat"], scores, mask, labels, cfg.casl_margin,
                                 casl_classes, cfg.casl_center)
    if cfg.beta:
        parts["cont"] = foreground_continuity_loss(log_p, out["mu"], mask, labels, cfg)
    if cfg.gamma:
        parts["pseu"] = pseudo_localization_loss(log_p, mask, labels, cfg)
    if snippet_targets is not None and cfg.self_training_weight:
        parts["self"] = self_training_loss(log_p, mask, snippet_targets)
    weights = {"mil": 1.0, "cas": cfg.alpha, "cont": cfg.beta, "pseu": cfg.gamma,
               "self": cfg.self_training_weight}
    loss = sum(weights[name] * value for name, value in parts.items())
    return loss, parts


# ---- audio-visual video parsing (model.head=parsing) ----------------------------------------
# Inputs: the parsing head's outputs (model.AVLocModel.parse): frame (B, L, M, C) per-segment
# event probabilities of M streams (audio, visual; one for uni-modal models), mu (B, L, M),
# video (B, C) and stream (B, M, C) video-level probabilities; labels (B, C) the weak labels.
def _bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of probabilities, clamped as HAN clamps them (1e-7)."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(target * p.log() + (1 - target) * (1 - p).log())


def parsing_mil_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, cfg: LossConfig,
                     modality_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label MIL on the weak labels: BCE of the video-level probabilities pooled over
    time and modality, plus, with two streams, HAN's guided learning: each stream's own
    video-level probabilities learn the labels smoothed towards 0.5 (a y + (1 - a) / 2;
    HAN: a = 1 for audio, 0.9 for visual, since a labelled event is more often heard than
    seen), weighted by loss.parsing_modality_weight. Means over classes and videos.
    `modality_labels` (B, 2, C), modality-aware label refinement (Wu and Yang 2021): a
    label missing from stream m's row is a target of 0 for that stream (not smoothed, as
    their retraining sets it); the pooled prediction still learns every label."""
    loss = _bce(out["video"], labels).mean()
    stream = out["stream"]  # (B, M, C)
    if stream.shape[1] == 2 and cfg.parsing_modality_weight:
        for m, a in enumerate((cfg.parsing_smooth_audio, cfg.parsing_smooth_visual)):
            target = a * labels + (1 - a) * 0.5  # (B, C)
            if modality_labels is not None:
                target = target.masked_fill((labels > 0) & (modality_labels[:, m] == 0), 0.0)
            loss = loss + cfg.parsing_modality_weight * _bce(stream[:, m], target).mean()
    return loss


def parsing_continuity_loss(out: dict[str, torch.Tensor], mask: torch.Tensor,
                            labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """Eq. 6-8 on each stream: mu agrees with its Gaussian-smoothed self and with the
    smoothed probability of the video's likeliest labelled event there (c-hat per segment);
    a video without labels has only the first term. The mean over streams."""
    taps = gaussian_window(cfg.cont_window + 1, cfg.cont_sigma, mask.device)
    has_class = (labels.sum(1) > 0).float()[:, None]  # (B, 1)
    frame, mu = out["frame"], out["mu"]  # (B, L, M, C), (B, L, M)
    mu_ag = temporal_smooth(mu, mask, taps)  # (B, L, M) Eq. 6
    p_hat = frame.masked_fill(labels[:, None, None, :] == 0, 0.0).amax(-1)  # (B, L, M)
    mu_sp = temporal_smooth(p_hat, mask, taps)  # (B, L, M) Eq. 7
    per = (mu - mu_ag).abs() + has_class[..., None] * (mu - mu_sp).abs()  # (B, L, M) Eq. 8
    return _video_mean(per.mean(-1), mask)


def parsing_pseudo_loss(out: dict[str, torch.Tensor], mask: torch.Tensor,
                        labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """Eq. 9 on each stream's multi-label probabilities: q = the mean of p over a segment
    and its N neighbours (no gradient); for each of the video's labels, a segment with
    q >= tau is a pseudo positive, one with q <= 1 - tau a pseudo negative (the event is not
    there in this modality), others are left out; BCE of p against them. Per video the sum
    over segments, streams and labels over L x M x (labels), then the mean over videos."""
    frame = out["frame"]  # (B, L, M, C)
    B, L, M, C = frame.shape
    with torch.no_grad():
        box = torch.ones(cfg.pseudo_neighbors + 1, device=frame.device, dtype=torch.float64)
        q = temporal_smooth(frame.reshape(B, L, M * C), mask, box).reshape(B, L, M, C)
        own = (labels > 0)[:, None, None, :] & mask[:, :, None, None]  # (B, L, 1, C)
        pos, neg = (q >= cfg.pseudo_tau) & own, (q <= 1 - cfg.pseudo_tau) & own
    bce = _bce(frame, pos.to(frame.dtype))  # (B, L, M, C)
    per_video = (bce * (pos | neg)).sum(dim=(1, 2, 3))  # (B,)
    norm = mask.sum(1) * M * labels.sum(1).clamp(min=1)  # (B,)
    return (per_video / norm.clamp(min=1)).mean()


def parsing_total_loss(
    out: dict[str, torch.Tensor], mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig,
    casl_classes: torch.Tensor | None = None, modality_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
    """Eq. 10 for the parsing head: L = L_mil + alpha L_cas + beta L_cont + gamma L_pseu with
    the parsing forms above; L_cas compares the concatenated streams, attended over time by
    the log of each event's probability in either stream. A weight of 0 skips a term.
    modality_labels (B, 2, C): refined per-modality labels (`parsing_mil_loss`)."""
    parts: dict[str, torch.Tensor] = {"mil": parsing_mil_loss(out, labels, cfg,
                                                              modality_labels)}
    if cfg.alpha:
        either = out["frame"].amax(dim=2).clamp(min=1e-7).log()  # (B, L, C)
        parts["cas"] = casl_loss(out["feat"], either, mask, labels, cfg.casl_margin,
                                 casl_classes)
    if cfg.beta:
        parts["cont"] = parsing_continuity_loss(out, mask, labels, cfg)
    if cfg.gamma:
        parts["pseu"] = parsing_pseudo_loss(out, mask, labels, cfg)
    weights = {"mil": 1.0, "cas": cfg.alpha, "cont": cfg.beta, "pseu": cfg.gamma}
    loss = sum(weights[name] * value for name, value in parts.items())
    return loss, parts


def training_loss(
    out: ModelOutput, mask: torch.Tensor, labels: torch.Tensor, cfg: LossConfig,
    casl_classes: torch.Tensor | None = None, modality_labels: torch.Tensor | None = None,
    snippet_targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
    """Eq. 10 for the head that made `out`: `total_loss` (fused) or `parsing_total_loss`,
    with the recipes' targets when a batch carries them (avloc.train.recipes)."""
    if out.parsing:
        return parsing_total_loss(out, mask, labels, cfg, casl_classes, modality_labels)
    return total_loss(out, mask, labels, cfg, casl_classes, snippet_targets)


__all__ = [
    "casl_loss", "foreground_continuity_loss", "gaussian_window", "mil_loss",
    "parsing_continuity_loss", "parsing_mil_loss", "parsing_pseudo_loss", "parsing_total_loss",
    "pseudo_labels", "pseudo_localization_loss", "self_training_loss", "temporal_smooth",
    "topk_pool_log",
    "total_loss", "training_loss",
]
