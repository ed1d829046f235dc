"""Two training recipes in which a trained model (the teacher) makes targets for the model
that is then trained (the student), from the training split alone.

- Modality-aware label refinement (`train.label_refinement=ma`; parsing): Wu and Yang,
  "Exploring Heterogeneous Clues for Weakly-Supervised Audio-Visual Video Parsing", CVPR
  2021 (github.com/Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing, steps 1-3). A teacher is
  trained on the weak labels (`fit_teacher`); every training clip gets a partner clip that
  shares none of its labels (`ma_partners`); the teacher predicts each clip as it is, with
  its visual track replaced by the partner's, and with its audio track replaced
  (`swapped_stream_probs`); per class, how often each stream's prediction at 0.5 disagrees
  with the weak labels sets how far a probability must fall to count as gone
  (`ma_thresholds`); a label that neither stream still predicts once the clip's own audio
  is all that is left (another clip's visual) is judged not heard, once its own visual is
  all that is left not seen, each stream on its own (`ma_refine`). The student's audio
  (visual) stream learns 0 for a label not heard (seen); its pooled prediction, every label.
- Self-training rounds (`train.self_training_rounds=R`; event and action data): after
  ASM-Loc (He, Yang, Kang, Cheng, Zhou and Shrivastava, "ASM-Loc: Action-aware Segment
  Modeling for Weakly-Supervised Temporal Action Localization", CVPR 2022, its pseudo-label
  rounds) and FuSTAL (Feng et al., "Full-Stage Pseudo Label Quality Enhancement for
  Weakly-supervised Temporal Action Localization", 2024): the trained model's
  activation sequences on the training videos become snippet pseudo labels
  (`snippet_pseudo_labels`) for a model trained anew with a snippet-level loss on them
  (losses.self_training_loss); R rounds, each round's student the next round's teacher.

Nothing here reads an annotation, a validation or a test video: the teachers train on a
view of the dataset that holds the training split alone (no validation: a teacher's model
is its last epoch), and the targets are functions of the training videos (features and
weak labels) and the teacher's weights. The teachers are runs in RUN/teacher0,
RUN/teacher1, ... (their config.yaml: the same settings with the recipe's earlier rounds),
resumed with the run (with the epoch count they started with). docs/paper-notes.md
("Recipes") maps each step to these functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from avloc.config import Config
from avloc.data import Dataset, Video
from avloc.data.batching import collate
from avloc.model import AVLocModel
from avloc.runs.layout import CONFIG, read_run_config
from avloc.runs.state import rng_state, seed_generators, set_rng_state
from avloc.scoring.predict import length_batches
from avloc.train.distributed import Dist
from avloc.train.loop import Trainer
from avloc.util.errors import AvlocError

CHUNK = 64  # clips per forward pass while judging modalities (LLP clips: one length)


def rounds(cfg: Config) -> int:
    """How many teachers the run trains before its own model (0: no recipe)."""
    if cfg.train.label_refinement == "ma":
        return 1
    return cfg.train.self_training_rounds


def teacher_config(cfg: Config, r: int) -> Config:
    """Teacher r's settings: the run's, with r rounds of its recipe (so teacher 0 is the
    plain model). It has no validation split: its last epoch is its model."""
    train = dataclasses.replace(cfg.train, tensorboard=False,
                                label_refinement="none",
                                self_training_rounds=min(r, cfg.train.self_training_rounds))
    return dataclasses.replace(cfg, train=train)


def prepare(trainer: Trainer, data_root: str | Path | None = None) -> None:
    """Train (or resume, or load finished) the run's teachers and give `trainer` the
    training videos with their targets. Every random generator is as it was before, so the
    run's own training draws what it would have drawn without a recipe."""
    cfg = trainer.cfg
    if not rounds(cfg):
        return
    if trainer.dist.world > 1:
        raise AvlocError("train.label_refinement / train.self_training_rounds: the recipes "
                         "train their teachers in one process; run without torchrun")
    saved = rng_state()
    ds = training_view(trainer.ds)
    for r in range(rounds(cfg)):
        teacher = fit_teacher(teacher_config(cfg, r), ds, trainer.out / f"teacher{r}",
                              trainer.device, trainer.dist, data_root)
        ds = with_targets(ds, teacher, cfg, trainer.device)
    trainer.ds = dataclasses.replace(trainer.ds, splits={**trainer.ds.splits,
                                                         "train": ds.splits["train"]})
    set_rng_state(saved)


def training_view(ds: Dataset) -> Dataset:
    """What a teacher sees: `ds` with its training split alone (no validation or test clip)
    and no annotation."""
    return dataclasses.replace(ds, splits={"train": ds.splits["train"]}, annotations={})


def fit_teacher(cfg: Config, ds: Dataset, out: Path, device: torch.device, dist: Dist,
                data_root: str | Path | None = None) -> AVLocModel:
    """Teacher run `out` trained to its last epoch (resumed from its last.pt, or nothing to
    do when finished); its model at the last epoch. Its initial weights are those of a run
    with the same seed. A teacher started before keeps its epoch count: `--resume RUN
    train.epochs=N` trains the run's own model longer on the same targets."""
    if (out / CONFIG).is_file():
        epochs = read_run_config(out).train.epochs
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
    out.mkdir(parents=True, exist_ok=True)
    seed_generators(cfg.train.seed)
    teacher = Trainer(cfg, ds, out, device, dist)
    with teacher.folder.lock():
        if not teacher.restore():
            teacher.folder.start(cfg, data_root)
        if dist.main and teacher.progress.epoch < cfg.train.epochs:
            print(f"avloc: training teacher {out.name} ({cfg.train.epochs} epochs)", flush=True)
        teacher.fit()
    return teacher.model


def with_targets(ds: Dataset, teacher: AVLocModel, cfg: Config, device: torch.device
                 ) -> Dataset:
    """`ds` with its training videos carrying the teacher's targets (other splits as they
    are; `prepare` gives it the training split alone)."""
    videos = ds.splits["train"]
    if cfg.train.label_refinement == "ma":
        refined = modality_aware_labels(teacher, videos, cfg.train.seed, device,
                                        cfg.train.ma_ratio)
        new = [dataclasses.replace(v, modality_labels=m) for v, m in zip(videos, refined,
                                                                         strict=True)]
    else:
        pseudo = snippet_pseudo_labels(teacher, videos, cfg.train.self_training_threshold,
                                       device)
        new = [dataclasses.replace(v, snippet_targets=t) for v, t in zip(videos, pseudo,
                                                                         strict=True)]
    return dataclasses.replace(ds, splits={**ds.splits, "train": new})


# ---- modality-aware label refinement (Wu and Yang 2021) -----------------------------------
def ma_partners(labels: np.ndarray, seed: int) -> np.ndarray:
    """(N,) for each clip a random other clip sharing none of its labels (their step 2
    draws one per clip); -1 when no clip qualifies. labels (N, C) multi-hot."""
    rng = np.random.default_rng([seed, 28])
    pos = labels > 0
    out = np.full(len(labels), -1, dtype=np.int64)
    for i in range(len(labels)):
        ok = ~(pos[:, pos[i]].any(axis=1))  # (N,) no label of clip i
        ok[i] = False
        if ok.any():
            out[i] = rng.choice(np.flatnonzero(ok))
    return out


def _swap(video: Video, partner: Video, track: str) -> Video:
    """`video` with its audio or visual features replaced by `partner`'s, cut or repeated
    to its length."""
    idx = np.arange(video.length) % partner.length
    return dataclasses.replace(video, **{track: getattr(partner, track)[idx]})


@torch.inference_mode()
def swapped_stream_probs(model: AVLocModel, videos: Sequence[Video], partners: np.ndarray,
                         device: torch.device) -> np.ndarray:
    """(N, 3, 2, C) each stream's video-level probabilities (audio, visual) for each clip as
    it is, with the partner's visual track (its own audio left), and with the partner's
    audio track (its own visual left). A clip without partner keeps its own tracks."""
    model.eval()
    dtype = next(model.parameters()).dtype
    rows = []
    for start in range(0, len(videos), CHUNK):
        part = []
        for i in range(start, min(start + CHUNK, len(videos))):
            v, j = videos[i], int(partners[i])
            other = videos[j] if j >= 0 else v
            part.append((v, _swap(v, other, "visual"), _swap(v, other, "audio")))
        passes = []
        for k in range(3):
            batch = collate([p[k] for p in part]).to(device, dtype)
            stream = model(batch.audio, batch.visual, batch.mask)["stream"]  # (b, 2, C)
            passes.append(stream.float())
        rows.append(torch.stack(passes, dim=1).cpu().numpy())  # (b, 3, 2, C)
    return np.concatenate(rows)


def ma_thresholds(own: np.ndarray, labels: np.ndarray, ratio: float = 0.5) -> np.ndarray:
    """(2, C) per stream and class: `ratio` (train.ma_ratio) x the class's error rate over
    the training clips (the stream's video-level prediction at 0.5 against the weak label,
    every clip and class), scaled by the stream's largest. A class the stream never gets
    wrong has 0: none of its labels is removed. own (N, 2, C), labels (N, C)."""
    err = ((own > 0.5) != (labels[:, None, :] > 0)).mean(axis=0)  # (2, C)
    top = err.max(axis=1, keepdims=True)  # (2, 1)
    return ratio * np.divide(err, top, out=np.zeros_like(err), where=top > 0)


def ma_refine(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, 2, C) the labels each stream keeps: heard (row 0) and seen (row 1); their
    step 2's `estimate_label`. probs (N, 3, 2, C) from `swapped_stream_probs`. Not seen:
    with its own visual and another clip's audio, both streams' probabilities of the label
    are below the visual threshold; not heard: with its own audio and another clip's
    visual, both below the audio threshold. Each stream is judged on its own, as in their
    code, so a label can leave both (the teacher finds it only with both tracks); the
    pooled prediction still learns it (`losses.parsing_mil_loss`). Each row is a subset of
    the clip's labels."""
    y = labels > 0  # (N, C)
    own_visual, own_audio = probs[:, 2], probs[:, 1]  # (N, 2, C) each: both streams
    not_seen = (own_visual < thresholds[1]).all(axis=1)  # (N, C)
    not_heard = (own_audio < thresholds[0]).all(axis=1)  # (N, C)
    return np.stack([y & ~not_heard, y & ~not_seen], axis=1).astype(np.float32)  # (N, 2, C)


def modality_aware_labels(model: AVLocModel, videos: Sequence[Video], seed: int,
                          device: torch.device, ratio: float = 0.5) -> list[np.ndarray]:
    """Step 2 of Wu and Yang on the training clips: (2, C) refined labels per clip."""
    labels = np.stack([v.labels for v in videos])
    probs = swapped_stream_probs(model, videos, ma_partners(labels, seed), device)
    refined = ma_refine(probs, labels, ma_thresholds(probs[:, 0], labels, ratio))
    _say_refined(refined, labels)
    return list(refined)


def _say_refined(refined: np.ndarray, labels: np.ndarray) -> None:
    y = labels > 0  # (N, C)
    total = max(int(y.sum()), 1)
    gone = y[:, None, :] & (refined == 0)  # (N, 2, C) not heard, not seen
    heard, seen, both = int(gone[:, 0].sum()), int(gone[:, 1].sum()), int(gone.all(1).sum())
    print(f"avloc: modality-aware labels: {heard} of {total} training labels judged not "
          f"heard ({100 * heard / total:.1f} %), {seen} not seen ({100 * seen / total:.1f} %), "
          f"{both} neither", flush=True)


# ---- self-training (ASM-Loc, FuSTAL) -------------------------------------------------------
@torch.inference_mode()
def snippet_pseudo_labels(model: AVLocModel, videos: Sequence[Video], threshold: float,
                          device: torch.device) -> list[np.ndarray]:
    """(T,) per training video: at each snippet the teacher's likeliest of background and
    the video's own classes (0 background, c + 1 class c), where that open-max probability
    is at least `threshold`; -1 elsewhere (no label)."""
    model.eval()
    dtype = next(model.parameters()).dtype
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(videos)
    for idx in length_batches([v.length for v in videos]):  # long videos: bounded padding
        batch = collate([videos[i] for i in idx]).to(device, dtype)
        p = model(batch.audio, batch.visual, batch.mask)["log_p"].float().exp()  # (b, L, C+1)
        allowed = torch.cat([torch.ones_like(batch.labels[:, :1]), batch.labels], 1) > 0  # (b, C+1)
        p = p.masked_fill(~allowed[:, None, :], -1.0).cpu().numpy()
        for j, i in enumerate(idx):
            n = videos[i].length
            best, label = p[j, :n].max(-1), p[j, :n].argmax(-1)
            out[i] = np.where(best >= threshold, label, -1).astype(np.int64)
    kept = np.concatenate(out) if out else np.zeros(0)
    print(f"avloc: self-training: {100 * (kept >= 0).mean():.1f} % of training snippets "
          f"labelled, {100 * (kept > 0).mean():.1f} % as a class", flush=True)
    return out
