"""A trained run's model as `avloc eval`, `avloc localize` and `avloc plot` use it: the
checkpoint's settings with the post-processing the run tuned on validation (action models:
RUN/localize.yaml, written by `avloc tune`; parsing models: the event thresholds in
RUN/metrics.json), unless asked for the checkpoint's own (`untuned`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avloc.checkpoint import checkpoint_id, find_checkpoint, load_model
from avloc.config import Config, apply_dict, read_yaml, validate
from avloc.runs.layout import TUNED
from avloc.scoring.thresholds import OFFICIAL, ParsingThresholds, recorded_thresholds
from avloc.util.errors import AvlocError

METRIC = "average_mAP"  # what `avloc tune` maximises on validation (action models)


def tuned_path(checkpoint: Path) -> Path:
    """RUN/localize.yaml beside the checkpoint (RUN/best.pt)."""
    return Path(checkpoint).parent / TUNED


def apply_tuned(cfg: Config, checkpoint: Path, checkpoint_id: str) -> str | None:
    """Put RUN/localize.yaml's settings into cfg.localize; return the line that says so,
    or None when the run has no tuned settings."""
    path = tuned_path(checkpoint)
    if not path.is_file():
        return None
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("localize"), dict):
        raise AvlocError(f"{path}: expected a 'localize' mapping of settings (written by "
                         "avloc tune); delete the file to use the checkpoint's settings")
    apply_dict(cfg, {"localize": doc["localize"]}, str(path))
    try:
        validate(cfg)
    except AvlocError as e:
        raise AvlocError(f"{path}: {e}") from None
    info = doc.get("tuned_on") if isinstance(doc.get("tuned_on"), dict) else {}
    line = f"post-processing: tuned settings from {path}"
    if isinstance(info.get("value"), float) and isinstance(info.get("defaults_value"), float):
        line += (f" (validation {info.get('metric', METRIC)} {100 * info['value']:.2f} %, "
                 f"{100 * info['defaults_value']:.2f} % with the run's own settings)")
    if info.get("checkpoint") != checkpoint_id:
        line += "; note: tuned for another checkpoint (best.pt changed since), rerun avloc tune"
    return line


@dataclass
class TunedModel:
    """A checkpoint's model and settings, with the run's tuned post-processing applied."""

    model: Any  # AVLocModel, in eval mode
    cfg: Config
    ckpt: dict[str, Any]
    path: Path  # the checkpoint file
    id: str  # its checksum (checkpoint.checkpoint_id)
    note: str | None  # the line saying which settings make segments; None: the checkpoint's
    # parsing models: the thresholds the run tuned on validation (metrics.json), applied to
    # cfg.localize; None with `untuned` or when the run recorded none
    tuned: ParsingThresholds | None = None

    def thresholds(self) -> ParsingThresholds:
        """Parsing models: the thresholds cfg decides events at, and where they come from."""
        if self.tuned is not None:
            return self.tuned
        mine = ParsingThresholds.of(self.cfg.localize, "the checkpoint's settings")
        return OFFICIAL if mine.values() == OFFICIAL.values() else mine


def load_tuned_model(run: str | Path, untuned: bool = False) -> TunedModel:
    """The model of a run folder or checkpoint file, its settings updated from
    RUN/localize.yaml unless `untuned` (what `avloc eval` and `avloc localize` use); a
    parsing run's event thresholds as its metrics.json records them (tuned on validation),
    unless `untuned`."""
    path = find_checkpoint(run)
    model, cfg, ckpt = load_model(path)
    ident = checkpoint_id(ckpt)
    note = None if untuned else apply_tuned(cfg, path, ident)
    m = TunedModel(model, cfg, ckpt, path, ident, note)
    if ckpt["task"] == "parsing":
        m.tuned = None if untuned else recorded_thresholds(path.parent)
        if m.tuned is not None:
            cfg.localize = m.tuned.apply(cfg.localize)
        m.note = f"parsing events decided at thresholds {m.thresholds().text()}"
    return m
