"""Settings as dataclasses, YAML presets and `key=value` overrides.

A run is fully described by one `Config`. Presets live in `avloc/configs/*.yaml`
(`ave`, `anet12`, `thumos14`, `demo`); `load_config("ave", ["model.stages=1"])` reads a preset
or a YAML path and applies dotted overrides. Every field is documented where it is
declared; docs/paper-notes.md says which ones the paper fixes and why the others
have the defaults they have.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from avloc.errors import AvlocError, first_line

PRESET_DIR = Path(__file__).parent / "configs"
# the numbers of a parsing evaluation (avloc.metrics.parsing.METRIC_NAMES), selectable
PARSING_METRICS = tuple(f"{level}.{name}" for level in ("segment_level", "event_level")
                        for name in ("audio", "visual", "audio_visual", "type_av", "event_av"))


@dataclass
class DataConfig:
    # synthetic | ave | anet12 | generic | thumos14 (ActionFormer's JSON + <video>.npy) |
    # thumos14_wtalc (W-TALC's Thumos14reduced .npy files) | llp (Look, Listen and Parse:
    # AVVP CSVs + feats/ or features/) | llp_synthetic (generated, LLP's structure)
    format: str = "synthetic"
    # AVE: 1 s; ActivityNet and THUMOS'14 in the W-TALC layout: 16 frames at 25 fps = 0.64 s
    snippet_seconds: float = 1.0
    max_seqlen: int = 750  # training crops longer videos to this many snippets (W-TALC)
    # training batches: pad (to the batch's longest video) | bucket (similar lengths
    # together) | shortest (every video cropped to the batch's shortest: no padding)
    batching: str = "pad"
    val_fraction: float = 0.1  # held out of train when a layout has no validation split
    use_background_videos: bool = True  # AVE background-only ("noisy") videos join training
    # generic layout: path of the ActivityNet-style JSON (default: DIR/annotations.json);
    # thumos14: path of ActionFormer's thumos14.json (default: DIR/annotations/thumos14.json
    # or DIR/thumos14.json)
    annotations: str = ""
    # seeds the held-out val split (anet12, thumos14; generic without validation)
    split_seed: int = 0
    # thumos14 (ActionFormer's I3D features; docs/datasets.md):
    feat_stride: int = 4  # frames from one feature to the next
    num_frames: int = 16  # frames each feature was computed from
    default_fps: float = 0.0  # > 0: every video's frame rate; 0: each video's fps in the JSON
    downsample: int = 1  # keep every k-th feature (ActionFormer's downsample_rate)
    # snippets by which a video's feature count may miss duration / snippet_seconds beyond
    # floor/ceil rounding (extractors count the last partial snippet differently)
    length_tolerance: int = 1
    # llp (docs/datasets.md): the visual features of the release's feats/ folder to use,
    # pooled to one per second and concatenated: res152 (2048-d, 8 fps) and/or r2plus1d_18
    # (512-d), as the HAN baseline fuses both
    llp_visual: str = "res152+r2plus1d_18"
    # llp: auto (feats/ when the folder has one, else features/) | release (feats/vggish,
    # feats/res152, feats/r2plus1d_18 .npy) | extract (features/<clip>.npz, `avloc extract`)
    llp_features: str = "auto"
    # llp: clips without feature files (a YouTube dataset is never complete): error (stop at
    # the first) | skip_train (leave out training clips without them and say how many; the
    # evaluation lists must be complete) | skip (validation and test too: their scores are
    # then over the clips present, not the full lists; said per split)
    missing_features: str = "error"
    # synthetic generator (the embedded demo dataset)
    synth_classes: int = 8
    synth_videos: int = 600  # train videos; val and test get a quarter each
    synth_background_videos: int = 60
    synth_audio_dim: int = 128
    synth_visual_dim: int = 256
    synth_length: int = 10
    synth_task: str = "event"  # event (AVE-like) | action (untrimmed, mAP: synth_actions)
    synth_events: str = "uniform"  # event task's times: uniform | ave (the real AVE's)
    synth_actions: str = "anet12"  # action task's lengths and instances: anet12 | thumos14
    synth_groups: int = 0  # hard mode: classes in this many groups sharing looks, sounds, scene
    synth_group_share: float = 0.7  # hard mode: how much of a class is its group's prototype
    synth_noise_corr: float = 0.0  # AR(1) coefficient of the noise over time (0: independent)
    synth_noise: float = 0.8
    synth_seed: int = 0


@dataclass
class ModelConfig:
    modality: str = "av"  # av | audio | visual (uni-modal ablations of Table 1)
    d_x: int = 1024  # embedding size of f_u, f_v
    stages: int = 2  # t_e; 0 = naive fusion by concatenation (Table 1)
    share_w: bool = False  # one W for all stages instead of one per stage
    attend_normalized: bool = False  # attend the l2-normalised X instead of the raw X (Eq. 2)
    attention_scale: float = 1.0  # s in Lambda = s X_u-hat^T W X_v-hat (1: Eq. 1 as printed)
    attention: str = "efficient"  # efficient (SDPA, memory linear in L) | explicit (L x L matrix)
    classifier: str = "openmax"  # openmax (Eq. 5) | softmax (one FC over C + 1 classes)
    dropout: float = 0.7  # on the fused feature X_att
    leaky_slope: float = 0.01  # LeakyReLU of f_u, f_v (PyTorch default; the paper gives none)
    # fused: one classifier on X_att (Eq. 4-5, model.classifier) | parsing: multi-label event
    # heads on the last stage's attended audio and visual streams (LLP video parsing)
    head: str = "fused"
    parsing_mu: bool = True  # parsing: gate each stream's events by its foreground reliability mu
    # parsing: attention (HAN's attentive MMIL pooling over time and modality) | topk (the
    # paper's top-k mean over time per stream, then the max over the two streams)
    parsing_pool: str = "attention"


@dataclass
class LossConfig:
    topk_divisor: int = 8  # MIL pools the top k = ceil(L / topk_divisor) snippets (W-TALC)
    # MIL: every video also holds background (in its k most background-like snippets)
    background_topk: bool = True
    # weight of that background term in videos with actions (1: as W-TALC; below 1 lets mu
    # stay high on videos that are event all along, docs/paper-notes.md)
    background_weight: float = 1.0
    # the background term's own pool in videos with actions: k = ceil(L / background_divisor)
    # of the most background-like snippets (0: the classes' k), for data where most of a
    # video is background; a third or half did not help on THUMOS-structured data
    # (docs/paper-notes.md, "Why localization decayed")
    background_divisor: int = 0
    alpha: float = 0.8  # weight of L_cas (Eq. 10)
    beta: float = 0.8  # weight of L_cont (Eq. 10)
    gamma: float = 1.0  # weight of L_pseu (Eq. 10)
    casl_margin: float = 0.5  # delta of the CASL hinge (W-TALC)
    casl_scores: str = "prob"  # attention over time from p (open-max prob) | the action logit h
    # compare H and L after subtracting each video's mean feature (what is constant over a
    # video, its scene or class, then no longer makes H and L alike; docs/paper-notes.md)
    casl_center: bool = False
    cont_window: int = 4  # B: the Gaussian window has B + 1 taps (Eq. 6-7)
    cont_sigma: float = 1.0  # std of the Gaussian window, in snippets
    # L_cont's class term (Eq. 7-8) as a target for mu only: no gradient into p(c-hat)
    # through it (the paper does not say; docs/paper-notes.md)
    cont_detach_class: bool = False
    pseudo_neighbors: int = 2  # N: q averages N + 1 snippets (Eq. 9)
    # tau: keep pseudo labels with max q >= tau (Eq. 9); must exceed p_bg at init (0.5)
    pseudo_tau: float = 0.8
    # pseudo labels only among background and the video's own classes
    pseudo_video_classes: bool = True
    # ... and tau compares q renormalised over them, so a snippet whose class soft-max is
    # flat becomes a background pseudo label: mu then separates without background-only
    # videos, at a cost in AVE accuracy (docs/paper-notes.md, "Background without ...")
    pseudo_renormalize: bool = False
    # parsing head (HAN's guided learning): each stream's video-level prediction also learns
    # the weak labels, smoothed towards 0.5 as a * y + (1 - a) / 2 (HAN: audio 1.0, visual 0.9)
    parsing_modality_weight: float = 1.0  # 0: only the fused video-level prediction learns
    parsing_smooth_audio: float = 1.0
    parsing_smooth_visual: float = 0.9


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 30
    lr: float = 1e-4
    weight_decay: float = 0.0
    similar_pairs: int = 3  # pairs of videos sharing a class placed in each batch (for CASL)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CPU threads of torch (0: the CPUs this process may use: affinity, cgroup quota,
    # OMP_NUM_THREADS; avloc.cpus); on a machine other jobs share, 1 can be much faster
    threads: int = 0
    amp: bool = False  # bf16 autocast
    dtype: str = "float32"  # weights and arithmetic: float32 | float64 (to debug numerics)
    compile: bool = False  # torch.compile the model
    eval_every: int = 1  # epochs between validations
    checkpoint_every: int = 0  # also save last.pt every N steps inside an epoch (0 = per epoch)
    finite_check_every: int = 50  # CUDA: steps between NaN/Inf checks (each one syncs); CPU: 1
    # accuracy (event) | average_mAP (action) | LEVEL.NAME (parsing, e.g. segment_level.type_av,
    # the official code's choice) | auto
    select_metric: str = "auto"
    # progress bars on a terminal; when stdout or stderr is not one (a log file, a cluster
    # job), no bars: a line per epoch and, inside long epochs, one every progress_minutes
    progress: bool = True
    progress_minutes: float = 5.0  # 0: no lines inside epochs
    # TensorBoard events in RUN/tensorboard: losses per step, learning rate, validation
    # metrics and CAS figures of fixed validation videos (pip install -e '.[tensorboard]')
    tensorboard: bool = False


@dataclass
class LocalizeConfig:
    """Snippets to segments for action localization (W-TALC two-stage thresholding).

    Defaults are W-TALC's ActivityNet recipe; docs/evaluation.md explains each one.
    """

    class_filter: str = "mean"  # keep classes with video score >= mean over classes | "none"
    act_threshold: float = 0.5  # relative threshold: min + t * (max - min) of the class sequence
    act_threshold_step: float = 0.0  # > 0: also threshold at t + step, t + 2 step, ... < 1
    smooth: int = 1  # moving-average window (snippets) applied before thresholding; 1 = none
    min_snippets: int = 2  # drop runs shorter than this (W-TALC: 2 snippets = 1.28 s on ANet)
    score_weight: float = 0.7  # segment score = max activation inside + weight * video class score
    nms_iou: float = 0.0  # 0 = no NMS; else suppress same-class segments with tIoU above this
    # parsing (LLP): an event is in segment t of a modality when the video-level probability
    # >= parsing_video_threshold and the stream's probability at t >= its threshold; what
    # `avloc localize` decides at (the LLP numbers are always at the protocol's 0.5 each).
    # parsing_tune: also choose the three on the validation split (its selection metric):
    # reported beside the protocol's numbers as "tuned", used by localize; never on test
    parsing_video_threshold: float = 0.5
    parsing_audio_threshold: float = 0.5
    parsing_visual_threshold: float = 0.5
    parsing_tune: bool = True


@dataclass
class EvalConfig:
    """How detections are scored (docs/evaluation.md)."""

    # tIoU thresholds: START:STOP:STEP (STOP included) or a comma list. ActivityNet
    # 0.5:0.95:0.05 (official); THUMOS'14 papers print 0.1:0.7:0.1
    tiou: str = "0.5:0.95:0.05"
    # equal scores and equal tIoU: ordered as the official code orders them (NumPy's
    # default argsort, reversed) | stable (file order; the same on every machine)
    ties: str = "official"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    localize: LocalizeConfig = field(default_factory=LocalizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CHOICES = {
    "data.format": ("synthetic", "ave", "anet12", "generic", "thumos14", "thumos14_wtalc", "llp",
                    "llp_synthetic"),
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
    "train.select_metric": ("auto", "accuracy", "average_mAP", *PARSING_METRICS),
    "localize.class_filter": ("mean", "none"),
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
    from avloc.metrics import parse_tiou  # avloc.metrics imports avloc.data, which imports this

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
    _need(lo.pseudo_video_classes or not lo.pseudo_renormalize, "loss.pseudo_renormalize",
          lo.pseudo_renormalize, "renormalises over the video's classes: needs "
          "loss.pseudo_video_classes=true (over all classes q already sums to 1)")
    _check_parsing(m, lo)


def _check_parsing(m: ModelConfig, lo: LossConfig) -> None:
    _need(m.head == "fused" or m.parsing_mu or lo.beta == 0, "loss.beta", lo.beta,
          "the foreground continuity loss needs each stream's foreground reliability; set "
          "loss.beta=0 with model.parsing_mu=false")
    _at_least("loss", lo, {"parsing_modality_weight": 0})
    for name in ("parsing_smooth_audio", "parsing_smooth_visual"):
        value = getattr(lo, name)
        _need(0 <= value <= 1, f"loss.{name}", value, "must be in [0, 1]")


def _check_train(t: TrainConfig) -> None:
    _at_least("train", t, {"epochs": 1, "batch_size": 1, "eval_every": 1, "weight_decay": 0,
                           "threads": 0,
                           "similar_pairs": 0, "checkpoint_every": 0, "progress_minutes": 0})
    _need(t.lr > 0, "train.lr", t.lr, "must be > 0")
    _need(re.fullmatch(r"auto|cpu|cuda(:\d+)?", t.device) is not None, "train.device", t.device,
          "expected auto, cpu, cuda or cuda:N")


def _check_localize(c: LocalizeConfig) -> None:
    _need(0 <= c.act_threshold < 1, "localize.act_threshold", c.act_threshold,
          "must be in [0, 1)")
    _need(0 <= c.nms_iou < 1, "localize.nms_iou", c.nms_iou, "must be in [0, 1)")
    _at_least("localize", c, {"act_threshold_step": 0, "smooth": 1, "min_snippets": 1})
    for name in ("parsing_video_threshold", "parsing_audio_threshold",
                 "parsing_visual_threshold"):
        value = getattr(c, name)
        _need(0 < value <= 1, f"localize.{name}", value, "must be in (0, 1]")


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _as_float(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _set(cfg: Config, key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or not hasattr(cfg, parts[0]) or not is_dataclass(getattr(cfg, parts[0])):
        raise AvlocError(
            f"{source}: unknown setting {key!r} (expected SECTION.NAME, e.g. model.stages)"
        )
    section = getattr(cfg, parts[0])
    types = {f.name: f.type for f in fields(section)}
    if parts[1] not in types:
        known = ", ".join(sorted(types))
        raise AvlocError(f"{source}: unknown setting {key!r}; {parts[0]} has: {known}")
    current = getattr(section, parts[1])
    if isinstance(value, str) and isinstance(current, float):
        value = _as_float(value)  # YAML 1.1 reads "3e-3" as a string
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # e.g. eval.tiou=0.5, which YAML reads as a number
        ok = isinstance(value, str)
    if not ok:
        raise AvlocError(
            f"{source}: setting {key}={value!r} has the wrong type "
            f"(expected {type(current).__name__})"
        )
    setattr(section, parts[1], value)


def apply_dict(cfg: Config, values: dict[str, Any], source: str) -> Config:
    """Apply a nested {section: {name: value}} mapping, as read from YAML."""
    if not isinstance(values, dict):
        raise AvlocError(f"{source}: expected a mapping of sections (data, model, loss, ...)")
    for section, entries in values.items():
        if not isinstance(entries, dict):
            raise AvlocError(f"{source}: section {section!r} must be a mapping of settings")
        for name, value in entries.items():
            _set(cfg, f"{section}.{name}", value, source)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    for item in overrides:
        if "=" not in item:
            raise AvlocError(f"override {item!r}: expected key=value, e.g. model.stages=1")
        key, text = item.split("=", 1)
        _set(cfg, key.strip(), _parse_value(text), "override")
    return cfg


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as e:
        raise AvlocError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise AvlocError(f"{path}: not valid YAML ({first_line(e)})") from None


def load_config(preset_or_path: str | None, overrides: list[str] | None = None) -> Config:
    """A preset name (`ave`, `anet12`, `thumos14`, `demo`) or a YAML path, then `key=value`
    overrides."""
    cfg = Config()
    if preset_or_path:
        path = Path(preset_or_path)
        if not path.suffix and (PRESET_DIR / f"{preset_or_path}.yaml").exists():
            path = PRESET_DIR / f"{preset_or_path}.yaml"
        elif not path.exists():
            raise AvlocError(
                f"config {preset_or_path!r}: no such file or preset "
                f"(presets: {', '.join(preset_names())})"
            )
        apply_dict(cfg, read_yaml(path) or {}, str(path))
    apply_overrides(cfg, overrides or [])
    return validate(cfg)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a Config from `Config.to_dict()` output (as stored in checkpoints)."""
    return validate(apply_dict(Config(), values, "checkpoint settings"))

