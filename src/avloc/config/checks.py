"""Checking settings: which values each may take (`CHOICES`) and which work together
(`validate`), each refusal one line naming the setting."""

from __future__ import annotations

import re
from typing import Any

from avloc.config.formats import FORMATS
from avloc.config.protocols import PROTOCOLS
from avloc.config.sections import (
    Config,
    DataConfig,
    LocalizeConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from avloc.config.values import PARSING_METRICS, parse_tiou
from avloc.util.errors import AvlocError

CHOICES = {
    "data.format": tuple(FORMATS),
    "data.feature_protocol": ("", *PROTOCOLS),
    "data.batching": ("pad", "bucket", "shortest"),
    "train.dtype": ("float32", "float64"),
    "data.synth_events": ("uniform", "ave"),
    "data.synth_actions": ("anet12", "thumos14"),
    "data.synth_task": ("event", "action"),
    "model.modality": ("av", "audio", "visual"),
    "model.attention": ("efficient", "explicit"),
    "model.classifier": ("openmax", "softmax"),
    "model.head": ("fused", "parsing"),
    "model.parsing_pool": ("attention", "topk"),
    "data.llp_visual": ("res152+r2plus1d_18", "res152", "r2plus1d_18"),
    "data.llp_features": ("auto", "release", "extract"),
    "data.missing_features": ("error", "skip_train", "skip"),
    "loss.casl_scores": ("prob", "logit"),
    "train.label_refinement": ("none", "ma"),
    "train.select_metric": ("auto", "accuracy", "accuracy_separated", "average_mAP",
                             *PARSING_METRICS),
    "localize.class_filter": ("mean", "none"),
    "localize.segment_score": ("max", "oic"),
    "eval.ties": ("official", "stable"),
}


def validate(cfg: Config) -> Config:
    """Reject settings that cannot work, alone or together, naming the setting in one line.

    The one place settings are checked: every way of loading them (a preset, a YAML file,
    KEY=VALUE overrides, a run's config.yaml, a checkpoint's settings) ends here, so a bad
    value fails before anything runs, not at the first use. Only what depends on the
    machine (train.device=cuda without a GPU) is found when training starts.
    """
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise AvlocError(f"setting {key}={value!r}: expected one of {', '.join(allowed)}")
    _check_data(cfg.data)
    _check_model_and_loss(cfg.model, cfg.loss)
    _check_train(cfg.train)
    _check_localize(cfg.localize)
    _check_recipes(cfg)
    parse_tiou(cfg.eval.tiou)
    return cfg


def _need(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise AvlocError(f"setting {key}={value!r}: {rule}")


def _at_least(section: str, values: Any, lowest: dict[str, float]) -> None:
    for name, low in lowest.items():
        _need(getattr(values, name) >= low, f"{section}.{name}", getattr(values, name),
              f"must be >= {low}")


def _check_data(d: DataConfig) -> None:
    _need(d.snippet_seconds > 0, "data.snippet_seconds", d.snippet_seconds, "must be > 0")
    _need(0 <= d.val_fraction < 1, "data.val_fraction", d.val_fraction, "must be in [0, 1)")
    _at_least("data", d, {"max_seqlen": 1, "length_tolerance": 0, "feat_stride": 1,
                          "num_frames": 1, "downsample": 1, "synth_classes": 1,
                          "synth_videos": 1, "synth_background_videos": 0, "synth_audio_dim": 1,
                          "synth_visual_dim": 1, "synth_length": 2, "synth_noise": 0})
    _need(d.default_fps >= 0, "data.default_fps", d.default_fps, "must be >= 0 (0: per video)")
    _need(0 <= d.synth_groups <= d.synth_classes, "data.synth_groups", d.synth_groups,
          "must be in [0, data.synth_classes]")
    _need(0 <= d.synth_group_share <= 1, "data.synth_group_share", d.synth_group_share,
          "must be in [0, 1]")
    _need(0 <= d.synth_static_share <= 1, "data.synth_static_share", d.synth_static_share,
          "must be in [0, 1]")
    _need(0 <= d.synth_noise_corr < 1, "data.synth_noise_corr", d.synth_noise_corr,
          "must be in [0, 1)")


def _check_model_and_loss(m: ModelConfig, lo: LossConfig) -> None:
    _at_least("model", m, {"d_x": 1, "stages": 0})
    _need(m.attention_scale > 0, "model.attention_scale", m.attention_scale, "must be > 0")
    _need(m.modality == "av" or m.stages == 0, "model.stages", m.stages,
          f"cross attention needs model.modality=av (got {m.modality}); use model.stages=0 "
          "for uni-modal models")
    _need(m.classifier == "openmax" or lo.beta == 0, "loss.beta", lo.beta,
          "the foreground continuity loss needs the open-max classifier's foreground "
          "reliability; set loss.beta=0 with model.classifier=softmax (paper, Sec. 4.3)")
    _need(0 <= m.dropout < 1, "model.dropout", m.dropout, "must be in [0, 1)")
    _at_least("loss", lo, {"alpha": 0, "beta": 0, "gamma": 0, "background_weight": 0,
                           "cont_sigma": 0, "topk_divisor": 1,
                           "background_divisor": 0})
    _need(lo.cont_window >= 0 and lo.cont_window % 2 == 0, "loss.cont_window", lo.cont_window,
          "B must be even and >= 0")
    _need(lo.pseudo_neighbors >= 0 and lo.pseudo_neighbors % 2 == 0, "loss.pseudo_neighbors",
          lo.pseudo_neighbors, "N must be even and >= 0")
    _need(0 <= lo.pseudo_relative <= 0.5, "loss.pseudo_relative", lo.pseudo_relative,
          "must be in [0, 0.5] (0: Eq. 9's absolute tau; t: below min + t (max - min) is "
          "background, above min + (1 - t)(max - min) the class)")
    _need(lo.pseudo_video_classes or not lo.pseudo_renormalize, "loss.pseudo_renormalize",
          lo.pseudo_renormalize, "renormalises over the video's classes: needs "
          "loss.pseudo_video_classes=true (over all classes q already sums to 1)")
    _check_parsing(m, lo)


def _check_parsing(m: ModelConfig, lo: LossConfig) -> None:
    _need(m.head == "fused" or m.parsing_mu or lo.beta == 0, "loss.beta", lo.beta,
          "the foreground continuity loss needs each stream's foreground reliability; set "
          "loss.beta=0 with model.parsing_mu=false")
    _need(m.head == "fused" or not lo.pseudo_relative, "loss.pseudo_relative",
          lo.pseudo_relative, "relative pseudo labels are the fused head's (Eq. 9); the "
          "parsing head's, per stream, have none: set loss.pseudo_relative=0")
    _at_least("loss", lo, {"parsing_modality_weight": 0})
    for name in ("parsing_smooth_audio", "parsing_smooth_visual"):
        value = getattr(lo, name)
        _need(0 <= value <= 1, f"loss.{name}", value, "must be in [0, 1]")


def _check_train(t: TrainConfig) -> None:
    _at_least("train", t, {"epochs": 1, "batch_size": 1, "eval_every": 1, "weight_decay": 0,
                           "threads": 0,
                           "similar_pairs": 0, "checkpoint_every": 0, "progress_minutes": 0})
    _need(t.lr > 0, "train.lr", t.lr, "must be > 0")
    _need(0 <= t.select_separation <= 1, "train.select_separation", t.select_separation,
          "must be in [0, 1] (mean mu inside events minus outside them)")
    _need(re.fullmatch(r"auto|cpu|cuda(:\d+)?", t.device) is not None, "train.device", t.device,
          "expected auto, cpu, cuda or cuda:N")


def _check_recipes(cfg: Config) -> None:
    t, m = cfg.train, cfg.model
    _need(t.self_training_rounds >= 0, "train.self_training_rounds", t.self_training_rounds,
          "must be >= 0")
    _need(0 < t.self_training_threshold <= 1, "train.self_training_threshold",
          t.self_training_threshold, "must be in (0, 1]")
    _need(t.ma_ratio >= 0, "train.ma_ratio", t.ma_ratio, "must be >= 0")
    _need(cfg.loss.self_training_weight >= 0, "loss.self_training_weight",
          cfg.loss.self_training_weight, "must be >= 0")
    _need(t.self_training_rounds == 0 or m.head == "fused", "train.self_training_rounds",
          t.self_training_rounds, "self-training labels snippets of the fused head (event and "
          "action data); for parsing use train.label_refinement=ma")
    _need(t.label_refinement == "none" or (m.head == "parsing" and m.modality == "av"),
          "train.label_refinement", t.label_refinement, "modality-aware refinement needs the "
          "parsing head's two streams (model.head=parsing model.modality=av)")


def _check_localize(c: LocalizeConfig) -> None:
    _need(0 <= c.act_threshold < 1, "localize.act_threshold", c.act_threshold,
          "must be in [0, 1)")
    _need(0 <= c.nms_iou < 1, "localize.nms_iou", c.nms_iou, "must be in [0, 1)")
    _need(c.oic_inflation >= 0, "localize.oic_inflation", c.oic_inflation, "must be >= 0")
    _at_least("localize", c, {"act_threshold_step": 0, "smooth": 1, "min_snippets": 1})
    for name in ("parsing_video_threshold", "parsing_audio_threshold",
                 "parsing_visual_threshold"):
        value = getattr(c, name)
        _need(0 < value <= 1, f"localize.{name}", value, "must be in (0, 1]")
