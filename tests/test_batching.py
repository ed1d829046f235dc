"""Training batches: the three batching choices, and padding that never changes a result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.config import load_config
from avloc.data import load_dataset
from avloc.data.base import Video
from avloc.data.batching import PairBatchSampler, collate, crop_length, load_share
from avloc.losses import total_loss
from avloc.model import build_model
from avloc.scoring.predict import ATTENTION_BUDGET, SNIPPET_BUDGET, length_batches, predict
from avloc.train import Dist, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def action_videos(n: int = 120) -> list[Video]:
    """ActivityNet-like lengths (4..373 snippets), 20 classes."""
    cfg = load_config("anet12", ["data.format=synthetic", "data.synth_task=action",
                                 "data.synth_classes=20", f"data.synth_videos={n}",
                                 "data.synth_background_videos=0", "data.synth_audio_dim=4",
                                 "data.synth_visual_dim=4"])
    return load_dataset(cfg.data, None).splits["train"]


def computed_over_real(videos: list[Video], sampler: PairBatchSampler, batching: str) -> float:
    computed = real = 0
    for groups in sampler.epoch(0):
        lengths = np.array([videos[i].length for i in groups[0]])
        crop = crop_length(videos, groups, batching, 10_000)
        computed += len(lengths) * min(lengths.max(), crop)
        real += lengths.sum()
    return computed / real


def test_bucketed_batches_hold_similar_lengths_and_keep_their_pairs():
    videos = action_videos()
    pad = PairBatchSampler(videos, 12, 3, seed=0)
    bucket = PairBatchSampler(videos, 12, 3, seed=0, bucket=True)
    assert computed_over_real(videos, bucket, "bucket") < 0.8 * computed_over_real(
        videos, pad, "pad")
    seen = set()
    for groups in bucket.epoch(1):
        batch = groups[0]
        for a, b in batch[:6].reshape(3, 2):  # the first 2P videos are P same-class pairs
            assert a != b and (videos[a].labels @ videos[b].labels) > 0
        seen.update(batch[6:].tolist())
    assert seen == set(range(len(videos)))  # every video once per epoch besides the pairs
    assert [g[0].tolist() for g in bucket.epoch(1)] == [g[0].tolist() for g in bucket.epoch(1)]


def test_shortest_crops_every_video_of_the_global_batch_alike():
    videos = action_videos()
    sampler = PairBatchSampler(videos, 6, 1, seed=0, groups=2)
    groups = sampler.epoch(0)[0]
    crop = crop_length(videos, groups, "shortest", 750)
    assert crop == min(videos[i].length for g in groups for i in g)
    assert crop_length(videos, groups, "shortest", 3) == 3  # data.max_seqlen still caps it
    assert crop_length(videos, groups, "pad", 750) == 750
    for mine in groups:  # each process: no padding at all, the same length on both
        batch = load_share(videos, mine, seed=0, epoch=0, max_len=crop)
        assert batch.mask.all() and batch.audio.shape[1] == crop
    assert computed_over_real(videos, sampler, "shortest") < 0.3


@pytest.mark.parametrize("preset", ["demo", "anet12"])  # raw and normalised X attended
def test_padding_never_changes_a_videos_outputs_or_the_loss(preset):
    """The same batch padded to its longest video or far beyond, with garbage in the padding:
    every real snippet's outputs and every loss term are equal (float64, dropout off)."""
    cfg = load_config(preset, ["model.d_x=16", "model.dropout=0", "train.dtype=float64"])
    torch.manual_seed(0)
    videos = action_videos(24)[:8]
    model = build_model(cfg.model, 4, 4, 20).double()
    tight = collate(videos).to("cpu", torch.float64)
    extra = 37
    loose = tight.map(lambda t: t)
    loose.audio = torch.cat([tight.audio, torch.randn(8, extra, 4, dtype=torch.float64) * 1e3], 1)
    loose.visual = torch.cat([tight.visual, torch.full((8, extra, 4), 7.0, dtype=torch.float64)], 1)
    loose.mask = torch.cat([tight.mask, torch.zeros(8, extra, dtype=torch.bool)], 1)
    out_t = model(tight.audio, tight.visual, tight.mask)
    out_l = model(loose.audio, loose.visual, loose.mask)
    real = tight.mask
    for key in ("log_p", "mu", "h", "feat"):
        torch.testing.assert_close(out_l[key][:, : real.shape[1]][real], out_t[key][real],
                                   rtol=1e-12, atol=1e-12)
    loss_t, parts_t = total_loss(out_t, tight.mask, tight.labels, cfg.loss, tight.casl_classes)
    loss_l, parts_l = total_loss(out_l, loose.mask, loose.labels, cfg.loss, loose.casl_classes)
    assert set(parts_t) == {"mil", "cas", "cont", "pseu"}
    for name in parts_t:
        torch.testing.assert_close(parts_l[name], parts_t[name], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss_l, loss_t, rtol=1e-12, atol=1e-12)


def padded_attention(lengths: list[int], batches: list[list[int]]) -> float:
    """Each batch's videos x its longest length squared, over the sum of L^2."""
    pad = sum(len(b) * max(lengths[i] for i in b) ** 2 for b in batches)
    return pad / sum(n * n for n in lengths)


def test_prediction_batches_keep_padded_attention_near_the_sum_of_squares():
    """400 videos of long, varied lengths (log-normal, 10 to 3134 snippets): predict's
    batches pad attention by under 20 % (measured 7 %; batches of 32 by length: 88 %),
    and none exceeds either budget unless it is one video."""
    lengths = np.clip(np.random.default_rng(0).lognormal(5.5, 1.0, 400), 10, 3134)
    lengths = lengths.astype(int).tolist()
    batches = length_batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert padded_attention(lengths, batches) < 1.2
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) == 1 or (len(b) * longest**2 <= ATTENTION_BUDGET
                               and len(b) * longest <= SNIPPET_BUDGET)
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    by_count = [order[i:i + 32] for i in range(0, len(order), 32)]
    assert padded_attention(lengths, by_count) > 1.5  # what the budgets avoid


def test_batched_predictions_equal_each_videos_alone():
    """Varied lengths under a small budget (several batches of several videos, padded):
    every prediction equals the video's predicted alone, within 1e-5."""
    cfg = load_config("anet12", ["model.d_x=16", "model.dropout=0"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 4, 4, 20)
    rng = np.random.default_rng(1)
    videos = [Video(f"v{i}", rng.normal(size=(n, 4)).astype(np.float32),
                    rng.normal(size=(n, 4)).astype(np.float32), np.zeros(20, np.float32))
              for i, n in enumerate([700, 3, 45, 50, 51, 200, 190, 9, 640, 120, 130, 1])]
    batched = predict(model, videos, attention=2**17)
    assert max(map(len, length_batches([v.length for v in videos], 2**17))) > 2
    for v, got in zip(videos, batched, strict=True):
        alone = predict(model, [v])[0]
        assert got.vid == v.vid and got.p.shape == (v.length, 21)
        np.testing.assert_allclose(got.p, alone.p, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got.mu, alone.mu, rtol=0, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_without_casl_an_epoch_is_one_pass_over_the_training_split(tmp_path, alpha):
    """loss.alpha=0: each training video once an epoch, batch_size at a time; with CASL on,
    its pairs add clips to every batch."""
    cfg = load_config("demo", ["data.synth_videos=40", "data.synth_background_videos=8",
                               "model.d_x=16", "train.batch_size=8", f"loss.alpha={alpha}"])
    ds = load_dataset(cfg.data, None)
    batches = Trainer(cfg, ds, tmp_path, torch.device("cpu"), Dist()).sampler.epoch(0)
    seen = [int(i) for (group,) in batches for i in group]
    n = len(ds.splits["train"])
    if alpha:
        assert len(seen) == n + 6 * len(batches)  # 3 pairs a batch
    else:
        assert sorted(seen) == list(range(n)) and len(batches) == -(-n // 8)
