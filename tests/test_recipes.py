"""The recipes' mechanics (avloc.train.recipes): modality-aware label refinement keeps each
clip's label set, self-training labels only among a video's own classes, and neither reads
an annotation, a validation or a test clip while making its targets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from avloc.config import load_config
from avloc.data import Video, load_dataset
from avloc.data.batching import collate
from avloc.losses import parsing_mil_loss, self_training_loss
from avloc.runs.layout import read_log, read_run_config
from avloc.scoring.predict import predict
from avloc.train import recipes
from avloc.train.distributed import Dist
from avloc.train.loop import Trainer
from avloc.util.errors import AvlocError

RNG = np.random.default_rng(0)
CPU = torch.device("cpu")


class Untouchable(list):
    """A split no recipe may read: any access fails the test."""

    def _fail(self, *_a, **_k):
        raise AssertionError("a recipe read a validation or test clip")

    __iter__ = __getitem__ = __len__ = __bool__ = __contains__ = _fail


class Sealed(dict):
    """Annotations no recipe may read."""

    def _fail(self, *_a, **_k):
        raise AssertionError("a recipe read an annotation")

    __getitem__ = get = __iter__ = __len__ = __contains__ = items = values = keys = _fail


def sealed(ds):
    """`ds` with its validation and test splits and its annotations untouchable."""
    return dataclasses.replace(ds, annotations=Sealed(), splits={
        "train": ds.splits["train"], "val": Untouchable(), "test": Untouchable()})


def prepared(cfg, ds, out):
    """A trainer of `cfg` on `ds` after the recipe's teachers (`recipes.prepare`)."""
    torch.manual_seed(0)
    trainer = Trainer(cfg, ds, out, torch.device("cpu"), Dist())
    recipes.prepare(trainer)
    return trainer


# ---- modality-aware label refinement ------------------------------------------------------
def test_ma_refine_keeps_each_clips_label_set():
    labels = (RNG.random((200, 6)) < 0.3).astype(np.float32)
    probs = RNG.random((200, 3, 2, 6))
    thresholds = RNG.random((2, 6)) * 0.5
    refined = recipes.ma_refine(probs, labels, thresholds)  # (N, 2, C)
    assert refined.shape == (200, 2, 6)
    assert np.all(refined <= labels[:, None, :])  # each stream's set is a subset
    for i, c in zip(*np.nonzero(labels), strict=True):  # Wu and Yang's estimate_label
        gone_v = probs[i, 2, 0, c] < thresholds[1, c] and probs[i, 2, 1, c] < thresholds[1, c]
        gone_a = probs[i, 1, 0, c] < thresholds[0, c] and probs[i, 1, 1, c] < thresholds[0, c]
        assert refined[i, 1, c] == (not gone_v)
        assert refined[i, 0, c] == (not gone_a)
    assert (refined[:, 0] < labels).any() and (refined[:, 1] < labels).any()


def test_ma_refine_judges_each_stream_on_its_own():
    labels = np.array([[1, 1, 1, 0, 1]], dtype=np.float32)
    thresholds = np.full((2, 5), 0.3)
    probs = np.full((1, 3, 2, 5), 0.9)  # (N, passes, streams, C): all found in every pass
    probs[0, 2, :, 0] = 0.1  # class 0 gone from both streams with its own visual: not seen
    probs[0, 1, :, 1] = 0.1  # class 1 gone with its own audio: not heard
    probs[0, 1:, :, 2] = 0.1  # class 2 gone in both passes: leaves both, as in their code
    probs[0, 1:, :, 3] = 0.1  # class 3 is no label: 0 whatever the passes say
    probs[0, 2, 1, 4] = 0.1  # class 4: the audio stream still finds it: kept
    refined = recipes.ma_refine(probs, labels, thresholds)[0]  # (2, C)
    assert refined.tolist() == [[1, 0, 0, 0, 1], [0, 1, 0, 0, 1]]


def test_ma_thresholds_are_the_scaled_class_error_rates():
    own = RNG.random((50, 2, 4))
    labels = (RNG.random((50, 4)) < 0.5).astype(np.float32)
    own[:, 1, 3] = labels[:, 3]  # the visual stream never errs on class 3
    got = recipes.ma_thresholds(own, labels)
    for m in range(2):
        err = [np.mean([(own[i, m, c] > 0.5) != (labels[i, c] > 0) for i in range(50)])
               for c in range(4)]
        assert got[m] == pytest.approx(0.5 * np.array(err) / max(err))
    assert got[1, 3] == 0  # a class the stream never gets wrong keeps every label


def test_ma_partners_share_no_label():
    labels = (RNG.random((80, 5)) < 0.4).astype(np.float32)
    labels[0] = 1  # shares a label with every clip that has one
    partners = recipes.ma_partners(labels, seed=0)
    for i, j in enumerate(partners):
        if j >= 0:
            assert j != i and not np.any((labels[i] > 0) & (labels[j] > 0))
        else:
            assert all(np.any((labels[i] > 0) & (labels[k] > 0)) for k in range(80) if k != i)
    assert partners[0] == -1 or not labels[partners[0]].any()


def test_refined_labels_lower_only_their_streams_target():
    B, C = 3, 5
    out = {"video": torch.rand(B, C), "stream": torch.rand(B, 2, C)}
    labels = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 1]], dtype=torch.float)
    modality = labels[:, None, :].repeat(1, 2, 1)
    modality[0, 1, 1] = 0  # clip 0's class 1: not seen
    modality[2, 0, 4] = 0  # clip 2's class 4: not heard
    modality[1, :, 2] = 0  # clip 1's class 2: neither; the pooled prediction still learns it
    cfg = load_config("llp_demo").loss

    def bce(p, t):
        return -(t * p.clamp(1e-7).log() + (1 - t) * (1 - p).clamp(1e-7).log()).mean()

    target_a, target_v = labels.clone(), 0.9 * labels + 0.05
    target_v[0, 1], target_a[2, 4], target_a[1, 2], target_v[1, 2] = 0, 0, 0, 0
    want = bce(out["video"], labels) + bce(out["stream"][:, 0], target_a) + bce(
        out["stream"][:, 1], target_v)
    assert parsing_mil_loss(out, labels, cfg, modality) == pytest.approx(float(want), rel=1e-5)
    unchanged = parsing_mil_loss(out, labels, cfg, labels[:, None, :].repeat(1, 2, 1))
    assert unchanged == pytest.approx(float(parsing_mil_loss(out, labels, cfg)), rel=1e-6)


SMALL_LLP = ["data.synth_videos=160", "model.d_x=32", "train.epochs=2", "train.progress=false",
             "train.threads=1", "train.label_refinement=ma"]


def test_ma_targets_come_from_training_clips_alone(tmp_path):
    cfg = load_config("llp_demo", SMALL_LLP)
    ds = load_dataset(cfg.data, None)
    trainer = prepared(cfg, sealed(ds), tmp_path / "run")
    train = trainer.ds.splits["train"]
    assert isinstance(trainer.ds.splits["val"], Untouchable)  # carried over, never read
    refined = np.stack([v.modality_labels for v in train])  # (N, 2, C)
    labels = np.stack([v.labels for v in train])
    assert np.all(refined <= labels[:, None, :])
    assert np.array_equal(labels, np.stack([v.labels for v in ds.splits["train"]]))  # weak kept
    assert (tmp_path / "run" / "teacher0" / "last.pt").exists()
    # the same targets from the teacher's weights and the training clips by hand
    model = recipes.fit_teacher(recipes.teacher_config(cfg, 0), recipes.training_view(ds),
                                tmp_path / "run" / "teacher0", torch.device("cpu"),
                                Dist())  # finished: loaded, not trained again
    again = recipes.modality_aware_labels(model, ds.splits["train"], cfg.train.seed, "cpu")
    assert np.array_equal(np.stack(again), refined)
    batch = collate(train[:4])
    assert batch.modality_labels.shape == (4, 2, ds.num_classes)


# ---- self-training --------------------------------------------------------------------------
def test_self_training_loss_is_the_mean_nll_over_labelled_snippets():
    log_p = torch.randn(2, 4, 3).log_softmax(-1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    targets = torch.tensor([[0, -1, 2, -1], [1, 1, -1, 0]])
    want = np.mean([(-log_p[0, 0, 0] - log_p[0, 2, 2]) / 3,
                    (-log_p[1, 0, 1] - log_p[1, 1, 1] - log_p[1, 3, 0]) / 4])
    assert self_training_loss(log_p, mask, targets) == pytest.approx(float(want), rel=1e-6)


class GivenCAS(torch.nn.Module):
    """A teacher whose open-max probabilities (N, T, C + 1), background first, are given."""

    def __init__(self, p: torch.Tensor):
        super().__init__()
        self.p, self.seen = p, 0
        self.unused = torch.nn.Parameter(torch.zeros(1))  # gives the recipe a dtype

    def forward(self, audio, visual, mask):
        b, length = mask.shape
        p = self.p[self.seen:self.seen + b, :length]  # (b, L, C + 1)
        self.seen += b
        return {"log_p": p.log()}


def test_pseudo_labels_pick_among_background_and_the_videos_own_classes():
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32)  # (N, C)
    videos = [Video(f"v{i}", np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32), y)
              for i, y in enumerate(labels)]
    p = torch.tensor([[[0.1, 0.2, 0.7, 0.0]] * 4,  # a foreign class (2) likeliest
                      [[0.1, 0.6, 0.2, 0.1], [0.1, 0.3, 0.2, 0.4], [0.4, 0.5, 0.05, 0.05],
                       [0.3, 0.1, 0.35, 0.25]],
                      [[0.2, 0.5, 0.2, 0.1]] * 4])  # (N, T, C + 1)
    got = recipes.snippet_pseudo_labels(GivenCAS(p), videos, 0.3, torch.device("cpu"))
    # video 0 may say background or class 0 (index 1) alone: 0.2 at best, under 0.3
    assert [g.tolist() for g in got] == [[-1, -1, -1, -1], [-1, 3, 0, 2], [-1, -1, -1, -1]]
    got = recipes.snippet_pseudo_labels(GivenCAS(p), videos, 0.15, torch.device("cpu"))
    assert [g.tolist() for g in got] == [[1, 1, 1, 1], [2, 3, 0, 2], [0, 0, 0, 0]]


SMALL_EVENT = ["data.synth_videos=120", "data.synth_background_videos=12", "model.d_x=32",
               "train.epochs=4", "train.batch_size=8", "train.lr=3e-3", "train.progress=false",
               "train.threads=1",
               "train.self_training_rounds=1", "train.self_training_threshold=0.3"]


def test_pseudo_labels_come_from_training_videos_and_the_teacher_alone(tmp_path):
    cfg = load_config("demo", SMALL_EVENT)
    ds = load_dataset(cfg.data, None)
    trainer = prepared(cfg, sealed(ds), tmp_path / "run")
    train = trainer.ds.splits["train"]
    model = recipes.fit_teacher(recipes.teacher_config(cfg, 0), recipes.training_view(ds),
                                tmp_path / "run" / "teacher0", torch.device("cpu"), Dist())
    for v, pred in zip(train, predict(model, ds.splits["train"]), strict=True):
        allowed = np.concatenate([[True], v.labels > 0])  # background and its own classes
        p = np.where(allowed, pred.p, -1.0)
        want = np.where(p.max(1) >= 0.3, p.argmax(1), -1)
        assert np.array_equal(v.snippet_targets, want)
        assert set(v.snippet_targets[v.snippet_targets > 0] - 1) <= set(np.flatnonzero(v.labels))
    kept = np.concatenate([v.snippet_targets for v in train])
    assert (kept > 0).any()  # some snippets labelled as a class, not all background
    batch = collate(train[:3], max_len=4, rngs=[np.random.default_rng(i) for i in range(3)])
    assert batch.snippet_targets.shape == batch.mask.shape
    assert torch.all(batch.snippet_targets[~batch.mask] == -1)


def test_each_round_learns_from_the_previous_rounds_student(tmp_path):
    cfg = load_config("demo", [*SMALL_EVENT, "train.self_training_rounds=2"])
    ds = load_dataset(cfg.data, None)
    trainer = prepared(cfg, sealed(ds), tmp_path / "run")
    teachers = [tmp_path / "run" / f"teacher{r}" for r in range(2)]
    assert [read_run_config(t).train.self_training_rounds for t in teachers] == [0, 1]
    first, last = (recipes.snippet_pseudo_labels(recipes.fit_teacher(  # finished: loaded
        recipes.teacher_config(cfg, r), recipes.training_view(ds), teachers[r], CPU, Dist()),
        ds.splits["train"], 0.3, CPU) for r in range(2))
    got = trainer.ds.splits["train"]
    assert all(np.array_equal(v.snippet_targets, w) for v, w in zip(got, last, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, last, strict=True))


def test_a_resumed_run_keeps_its_teachers_epochs_and_targets(tmp_path):
    cfg = load_config("demo", SMALL_EVENT)
    ds = sealed(load_dataset(cfg.data, None))
    first = prepared(cfg, ds, tmp_path / "run").ds.splits["train"]
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=6))
    again = prepared(longer, ds, tmp_path / "run").ds.splits["train"]  # as --resume does
    assert len(read_log(tmp_path / "run" / "teacher0")) == cfg.train.epochs
    assert all(np.array_equal(a.snippet_targets, b.snippet_targets)
               for a, b in zip(first, again, strict=True))


def test_recipes_are_off_by_default_and_refused_on_the_wrong_head():
    cfg = load_config("demo")
    assert cfg.train.label_refinement == "none" and cfg.train.self_training_rounds == 0
    with pytest.raises(AvlocError, match="train.label_refinement"):
        load_config("demo", ["train.label_refinement=ma"])
    with pytest.raises(AvlocError, match="train.self_training_rounds"):
        load_config("llp_demo", ["train.self_training_rounds=1"])
