"""The settings: one dataclass per section, each field with a comment saying what it means.

A run is fully described by one `Config`. Metadata on a field (`setting(...)`) says what a
setting is for beyond its value: `resumable`, it may change when a run is resumed (how
long and how a run goes on, never what a step computes); `runtime`, it never changes a
result (where and how visibly a run computes), so a finished run of a grid stays finished
when it changes. docs/paper-notes.md says which settings the paper fixes and why the
others have the defaults they have.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def setting(default: Any, *, resumable: bool = False, runtime: bool = False) -> Any:
    """A field whose metadata says whether it may change on resume and whether it can change
    a result (see the module docstring)."""
    return field(default=default, metadata={"resumable": resumable, "runtime": runtime})


@dataclass
class DataConfig:
    """Which dataset and how it is read. Grouped by the layouts that read each setting."""

    # ---- every layout -----------------------------------------------------------------------
    # the dataset's layout: a name of config.formats.FORMATS (synthetic, ave, anet12, generic,
    # thumos14, thumos14_wtalc, llp, llp_synthetic; `avloc --help` and docs/datasets.md)
    format: str = "synthetic"
    # the release protocol (config.protocols: ave, llp) whose procedure made this dataset's
    # feature files, "" when none did (generated data; `avloc extract` output records its
    # own); checkpoints record it, so `avloc localize` extracts new videos that way
    feature_protocol: str = ""
    # AVE: 1 s; ActivityNet and THUMOS'14 in the W-TALC layout: 16 frames at 25 fps = 0.64 s
    snippet_seconds: float = 1.0
    max_seqlen: int = 750  # training crops longer videos to this many snippets (W-TALC)
    # training batches: pad (to the batch's longest video) | bucket (similar lengths
    # together) | shortest (every video cropped to the batch's shortest: no padding)
    batching: str = "pad"
    # snippets by which a video's feature count may miss duration / snippet_seconds beyond
    # floor/ceil rounding (extractors count the last partial snippet differently)
    length_tolerance: int = 1
    # ---- layouts without a validation split (anet12, thumos14, thumos14_wtalc, generic) ----
    val_fraction: float = 0.1  # held out of train when a layout has no validation split
    split_seed: int = 0  # seeds that held-out split
    # ---- generic, thumos14, llp: where the annotation file is --------------------------------
    # generic: the ActivityNet-style JSON (default: DIR/annotations.json); thumos14:
    # ActionFormer's thumos14.json (default: DIR/annotations/thumos14.json or DIR/thumos14.json);
    # llp: the folder of the AVVP CSV files (default: DIR or DIR/data)
    annotations: str = ""
    # ---- ave -----------------------------------------------------------------------------------
    use_background_videos: bool = True  # AVE background-only ("noisy") videos join training
    # ---- thumos14 (ActionFormer's I3D features; docs/datasets.md) ----------------------------
    feat_stride: int = 4  # frames from one feature to the next
    num_frames: int = 16  # frames each feature was computed from
    default_fps: float = 0.0  # > 0: every video's frame rate; 0: each video's fps in the JSON
    downsample: int = 1  # keep every k-th feature (ActionFormer's downsample_rate)
    # ---- llp (docs/datasets.md) ---------------------------------------------------------------
    # the visual features of the release's feats/ folder to use, pooled to one per second and
    # concatenated: res152 (2048-d, 8 fps) and/or r2plus1d_18 (512-d), as HAN fuses both
    llp_visual: str = "res152+r2plus1d_18"
    # auto (feats/ when the folder has one, else features/) | release (feats/vggish,
    # feats/res152, feats/r2plus1d_18 .npy) | extract (features/<clip>.npz, `avloc extract`)
    llp_features: str = "auto"
    # clips without feature files (a YouTube dataset is never complete): error (stop at the
    # first) | skip_train (leave out training clips without them and say how many; the
    # evaluation lists must be complete) | skip (validation and test too: their scores are
    # then over the clips present, not the full lists; said per split)
    missing_features: str = "error"
    # ---- synthetic and llp_synthetic (generated data; data/synthetic*.py) --------------------
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
    # share of "static" videos (the picture shows the class all along; only the sound says
    # when); clean and drowned share the rest 4 : 3 (data/synthetic.py)
    synth_static_share: float = 0.3
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
    # t in (0, 0.5]: pseudo labels relative to each video's range of q, as the localizer
    # thresholds (above min + (1 - t)(max - min): its class; below min + t (max - min) for
    # every own class: background), not Eq. 9's absolute tau; 0: Eq. 9 as printed
    pseudo_relative: float = 0.0
    # parsing head (HAN's guided learning): each stream's video-level prediction also learns
    # the weak labels, smoothed towards 0.5 as a * y + (1 - a) / 2 (HAN: audio 1.0, visual 0.9)
    parsing_modality_weight: float = 1.0  # 0: only the fused video-level prediction learns
    parsing_smooth_audio: float = 1.0
    parsing_smooth_visual: float = 0.9
    # train.self_training_rounds > 0: weight of the student's snippet-level cross-entropy
    # on the teacher's pseudo labels (train/recipes.py), beside Eq. 10's terms
    self_training_weight: float = 1.0


@dataclass
class TrainConfig:
    epochs: int = setting(30, resumable=True)
    batch_size: int = 30
    lr: float = 1e-4
    weight_decay: float = 0.0
    # pairs of videos sharing a class placed in each batch, for CASL; none when loss.alpha
    # is 0 (CASL off): each batch is then batch_size videos of the epoch's permutation
    similar_pairs: int = 3
    seed: int = 0
    device: str = setting("auto", resumable=True, runtime=True)  # auto | cpu | cuda | cuda:N
    # CPU threads of torch (0: the CPUs this process may use: affinity, cgroup quota,
    # OMP_NUM_THREADS; avloc.util.cpus); on a machine other jobs share, 1 can be much faster
    threads: int = setting(0, resumable=True, runtime=True)
    amp: bool = False  # bf16 autocast
    dtype: str = "float32"  # weights and arithmetic: float32 | float64 (to debug numerics)
    compile: bool = False  # torch.compile the model
    # validate every N epochs and at the last; best.pt is the best validated epoch (the
    # long-video presets validate less often: docs/paper-notes.md, "How often to validate")
    eval_every: int = setting(1, resumable=True)
    # also save last.pt every N steps inside an epoch (0 = per epoch)
    checkpoint_every: int = setting(0, resumable=True)
    # CUDA: steps between NaN/Inf checks (each one syncs); CPU: 1
    finite_check_every: int = setting(50, resumable=True)
    # accuracy (event) | accuracy_separated (event: the accuracy of the epochs whose mu
    # separates, below) | average_mAP (action) | LEVEL.NAME (parsing, e.g.
    # segment_level.type_av, the official code's choice) | auto
    select_metric: str = "auto"
    # accuracy_separated: the epochs where mean mu inside events - outside them reaches
    # this on validation rank above the others, each group by accuracy (docs/paper-notes.md,
    # "Background without background-only videos")
    select_separation: float = 0.3
    # ---- recipes: a teacher trained first in RUN/teacher*/ sets extra training targets ----
    # (train/recipes.py, docs/paper-notes.md "Recipes"; off: no gain measured yet)
    # parsing: none | ma (Wu and Yang, CVPR 2021: swap a clip's visual (audio) with a clip
    # sharing none of its labels; a label whose prediction does not survive on its own audio
    # (visual) is judged not heard (not seen): the final model's audio (visual) stream
    # learns 0 for it)
    label_refinement: str = "none"
    # ma: a label is gone from a stream when both streams' probabilities fall below this
    # times the class's error rate scaled by the stream's largest (0.5: Wu and Yang's code)
    ma_ratio: float = 0.5
    # event and action: rounds of self-training (ASM-Loc, CVPR 2022): each round's teacher
    # labels the training videos' snippets, the next model learns them (0: none)
    self_training_rounds: int = 0
    # a snippet's pseudo label: the teacher's likeliest of background and the video's own
    # classes, kept when its probability is at least this (others are left out)
    self_training_threshold: float = 0.5
    # progress bars on a terminal; when stdout or stderr is not one (a log file, a cluster
    # job), no bars: a line per epoch and, inside long epochs, one every progress_minutes
    progress: bool = setting(True, resumable=True, runtime=True)
    progress_minutes: float = setting(5.0, resumable=True, runtime=True)  # 0: none in epochs
    # TensorBoard events in RUN/tensorboard: losses per step, learning rate, validation
    # metrics and CAS figures of fixed validation videos (pip install -e '.[tensorboard]')
    tensorboard: bool = setting(False, resumable=True, runtime=True)


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
    score_weight: float = 0.7  # segment score = its base (below) + weight * video class score
    # the base: max (W-TALC: the highest activation inside) | oic (outer-inner contrast,
    # AutoLoc / BaS-Net: mean inside minus the mean of oic_inflation x its length on each
    # side; a run as high as its surroundings scores low; docs/evaluation.md)
    segment_score: str = "max"
    oic_inflation: float = 0.25
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


def keys_where(flag: str) -> tuple[str, ...]:
    """"SECTION.NAME" of every setting whose metadata has `flag` ("resumable", "runtime")."""
    return tuple(f"{section.name}.{f.name}" for section in fields(Config)
                 for f in fields(section.default_factory()) if f.metadata.get(flag))


RESUMABLE = keys_where("resumable")  # what `avloc train --resume RUN KEY=VALUE` may change
RUNTIME = keys_where("runtime")  # what never changes a run's result
