"""Run a trained model over videos and keep the per-snippet outputs as NumPy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from avloc.data.base import Video
from avloc.data.batching import collate
from avloc.model import AVLocModel, ModelOutput


@dataclass
class VideoPrediction:
    vid: str
    # (T, C+1) open-max probabilities, index 0 = background. Parsing models: column c + 1 is
    # the probability of event c in either modality (the larger), column 0 its complement
    p: np.ndarray
    mu: np.ndarray  # (T,) foreground reliability (parsing: the larger of the two streams')
    # parsing models only (model.head=parsing): per-segment probabilities that each event is
    # heard (audio) and seen (visual), (T, C) each, and video-level probabilities (C,). A
    # uni-modal model's one stream stands for both modalities
    audio: np.ndarray | None = None
    visual: np.ndarray | None = None
    video: np.ndarray | None = None

    @property
    def cas(self) -> np.ndarray:
        """(T, C) class activation sequence: p of each action class over time."""
        return self.p[:, 1:]

    def video_scores(self, topk_divisor: int) -> np.ndarray:
        """(C,) video-level class scores: mean of the top k = ceil(T / divisor) activations."""
        from avloc.scoring.segments import video_class_scores

        return video_class_scores(self.cas, topk_divisor)


# A batch's padded size, videos x its longest length L: its attention within B x L^2 <=
# ATTENTION_BUDGET (2**22: 32 videos of 362 snippets, one of 2048; a longer video runs
# alone), its features within B x L <= SNIPPET_BUDGET (at 2048-d inputs, 256 MiB). Cross
# attention costs L^2 a video: batched by length under these bounds, the padded work stays
# near the sum of L^2 however long and varied the videos are
ATTENTION_BUDGET = 2**22
SNIPPET_BUDGET = 2**15


def length_batches(lengths: Sequence[int], attention: int = ATTENTION_BUDGET,
                   snippets: int = SNIPPET_BUDGET) -> list[list[int]]:
    """Indices batched by length, shortest first: each batch as many videos as keep
    count x longest^2 within `attention` and count x longest within `snippets`, at least
    one."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        n, longest = len(batches[-1]) + 1 if batches else 0, max(lengths[i], 1)
        if batches and n * longest**2 <= attention and n * longest <= snippets:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.inference_mode()
def predict(
    model: AVLocModel, videos: Sequence[Video], device: torch.device | str = "cpu",
    amp: bool = False, attention: int = ATTENTION_BUDGET,
) -> list[VideoPrediction]:
    """Whole videos (no cropping), batched by length within `attention` (padded B x L^2)
    and SNIPPET_BUDGET (`length_batches`); model put in eval mode."""
    model.eval()
    results: dict[int, VideoPrediction] = {}
    dev = torch.device(device)
    for idx in length_batches([v.length for v in videos], attention):
        batch = collate([videos[i] for i in idx]).to(dev, next(model.parameters()).dtype)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = model(batch.audio, batch.visual, batch.mask)
        if out.parsing:
            for j, i in enumerate(idx):
                results[i] = _parsing_prediction(videos[i], out, j)
            continue
        p = out["log_p"].float().exp().cpu().numpy()  # (B, L, C+1)
        mu = out["mu"].float().cpu().numpy()  # (B, L)
        for j, i in enumerate(idx):
            n = videos[i].length
            results[i] = VideoPrediction(videos[i].vid, p[j, :n], mu[j, :n])
    return [results[i] for i in range(len(videos))]


def _parsing_prediction(video: Video, out: ModelOutput, j: int) -> VideoPrediction:
    """Video j of a parsing batch, cut to its length; one stream stands for both modalities."""
    n = video.length
    frame = out["frame"][j, :n].float().cpu().numpy()  # (T, M, C)
    audio, visual = frame[:, 0], frame[:, -1]  # (T, C) each; the same stream when M = 1
    either = np.maximum(audio, visual)  # (T, C)
    p = np.concatenate([1 - either.max(axis=1, keepdims=True), either], axis=1)  # (T, C+1)
    mu = out["mu"][j, :n].float().amax(dim=-1).cpu().numpy()  # (T,)
    video_p = out["video"][j].float().cpu().numpy()  # (C,)
    return VideoPrediction(video.vid, p, mu, audio, visual, video_p)
