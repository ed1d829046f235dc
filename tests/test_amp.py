"""The GPU training paths, exercised on the CPU: bf16 autocast, deferred non-finite
checks with rollback, batches prepared by a helper thread.

On CUDA the trainer checks for NaN/Inf every `train.finite_check_every` steps instead of after
every step (each check waits for the device); a non-finite step must still be reported
by step and batch, with the last good state saved, exactly as the per-step check does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.checkpoint import read_checkpoint
from avloc.config import ModelConfig, load_config
from avloc.data import load_dataset
from avloc.model import AVLocModel
from avloc.runs.state import seed_generators
from avloc.scoring.predict import predict
from avloc.train import Dist, FiniteChecks, Trainer
from avloc.util.errors import AvlocError

TINY = ["data.synth_videos=40", "data.synth_background_videos=8", "model.d_x=32",
        "train.batch_size=8", "train.epochs=2", "train.eval_every=100", "train.progress=false"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread


def fit(tmp_path, name, overrides=(), check_every=1, threaded=False, poison=None):
    """Train a tiny run; returns (trainer, error message or None)."""
    cfg = load_config("demo", [*TINY, *overrides])
    ds = load_dataset(cfg.data, None)
    if poison is not None:  # NaN features in one training video
        ds.splits["train"][poison].audio[:] = np.nan
    out = tmp_path / name
    out.mkdir()
    seed_generators(cfg.train.seed)  # as train() does: the same initial weights every time
    trainer = Trainer(cfg, ds, out, torch.device("cpu"), Dist(),
                      finite=FiniteChecks(every=check_every), prefetch=threaded)
    try:
        trainer.fit()
    except AvlocError as e:
        return trainer, str(e)
    return trainer, None


def test_bf16_autocast_forward_on_cpu():
    """Under autocast the matmuls and attention run in bf16; the probabilities come out
    in float32, finite, close to the float32 model's."""
    torch.manual_seed(0)
    model = AVLocModel(ModelConfig(d_x=32, dropout=0.0), 16, 24, 5).eval()
    audio, visual = torch.randn(3, 12, 16), torch.randn(3, 12, 24)
    mask = torch.arange(12)[None] < torch.tensor([12, 7, 1])[:, None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(audio, visual, mask)
    ref = model(audio, visual, mask)
    assert out["feat"].dtype == torch.bfloat16  # the bf16 path really ran
    assert out["log_p"].dtype == torch.float32
    assert torch.isfinite(out["log_p"]).all()
    torch.testing.assert_close(out["log_p"].exp().sum(-1), torch.ones(3, 12))
    torch.testing.assert_close(out["log_p"], ref["log_p"], atol=0.05, rtol=0.05)
    assert not torch.equal(out["log_p"], ref["log_p"])


def test_bf16_training_on_cpu_has_no_nans(tmp_path):
    trainer, error = fit(tmp_path, "amp", ["train.amp=true"])
    assert error is None
    losses = [v for r in trainer.progress.history for k, v in r.items() if k.startswith("loss")]
    assert losses and all(np.isfinite(losses))
    weights = trainer.model.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())
    plain, _ = fit(tmp_path, "fp32")
    assert any(not torch.equal(w, plain.model.state_dict()[k]) for k, w in weights.items())
    preds = predict(trainer.model, trainer.ds.splits["val"][:4], amp=True)
    for p in preds:
        assert np.isfinite(p.p).all()
        np.testing.assert_allclose(p.p.sum(1), 1, atol=1e-5)


def test_deferred_checks_and_helper_thread_change_nothing(tmp_path):
    """Checking every 3 steps (with snapshots) and prefetching in a thread gives the
    same weights, bit for bit, as checking every step inline."""
    strict, _ = fit(tmp_path, "strict")
    deferred, _ = fit(tmp_path, "deferred", check_every=3, threaded=True)
    for k, w in strict.model.state_dict().items():
        assert torch.equal(w, deferred.model.state_dict()[k]), k
    assert strict.progress.history == [
        {**r, "seconds": s["seconds"]} for r, s in
        zip(deferred.progress.history, strict.progress.history, strict=True)]


def test_deferred_check_still_names_the_bad_step_and_saves_the_last_good_state(tmp_path):
    """A NaN found at a deferred check rolls back and replays: the error and last.pt are
    those of the per-step check."""
    cfg = load_config("demo", TINY)
    ds = load_dataset(cfg.data, None)
    trainer = Trainer(cfg, ds, tmp_path, torch.device("cpu"), Dist())
    batches = trainer.sampler.epoch(0)
    first = {}  # video -> the first batch that holds it
    for index, (group,) in enumerate(batches):
        for v in group:
            first.setdefault(int(v), index)
    poison = max(first, key=first.get)  # the video seen last: deep into the epoch
    bad = first[poison]
    assert bad >= 8  # at least two deferred checks pass before it
    runs = {}
    for name, every in (("strict", 1), ("deferred", 4)):
        trainer, error = fit(tmp_path, name, check_every=every, threaded=every > 1,
                             poison=poison)
        assert error is not None
        runs[name] = (error, read_checkpoint(tmp_path / name / "last.pt"))
    error, ckpt = runs["deferred"]
    assert f"at step {bad + 1} (epoch 1, batch {bad + 1};" in error
    assert ds.splits["train"][poison].vid in error  # names the video with NaN features
    assert error.split("; last good")[0] == runs["strict"][0].split("; last good")[0]
    assert ckpt["progress"]["step"] == ckpt["progress"]["batch"] == bad
    for k, w in runs["strict"][1]["model"].items():
        assert torch.equal(w, ckpt["model"][k]), k
        assert torch.isfinite(w).all()
