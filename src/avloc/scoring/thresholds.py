"""The thresholds that decide a parsing model's events: the LLP protocol's (0.5 each, as
the official code decides them), and those a run tuned on its validation split, which it
records in its metrics.json ("tuned_thresholds")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avloc.config import LocalizeConfig
from avloc.runs.layout import METRICS
from avloc.scoring.metrics.parsing import OFFICIAL_THRESHOLD

THRESHOLD_KEYS = {"video": "parsing_video_threshold", "audio": "parsing_audio_threshold",
                  "visual": "parsing_visual_threshold"}
TUNED_SOURCE = "tuned on the validation split"


@dataclass(frozen=True)
class ParsingThresholds:
    """The three thresholds that decide a parsing model's events (`segments.parsing_decisions`)
    and where they come from."""

    video: float
    audio: float
    visual: float
    source: str

    @classmethod
    def of(cls, loc: LocalizeConfig, source: str) -> ParsingThresholds:
        return cls(*(float(getattr(loc, name)) for name in THRESHOLD_KEYS.values()), source)

    def apply(self, loc: LocalizeConfig) -> LocalizeConfig:
        """`loc` deciding events at these thresholds."""
        return dataclasses.replace(loc, **{name: getattr(self, key)
                                           for key, name in THRESHOLD_KEYS.items()})

    def values(self) -> tuple[float, float, float]:
        return self.video, self.audio, self.visual

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def text(self) -> str:
        return (f"video {self.video:.2f}, audio {self.audio:.2f}, visual {self.visual:.2f} "
                f"({self.source})")


# what the LLP protocol decides events at (AVVP-ECCV20 main_avvp.py: >= 0.5 everywhere)
OFFICIAL = ParsingThresholds(OFFICIAL_THRESHOLD, OFFICIAL_THRESHOLD, OFFICIAL_THRESHOLD,
                             "the LLP protocol")


def recorded_thresholds(run_dir: Path) -> ParsingThresholds | None:
    """A finished parsing run's tuned thresholds as its metrics.json records them
    ("tuned_thresholds"; runs of avloc 0.1 recorded them as "thresholds"), else None."""
    from avloc.util.io import read_json

    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    doc = read_json(path) or {}
    recorded = doc.get("tuned_thresholds")
    if recorded is None and str((doc.get("thresholds") or {}).get("source", "")).startswith(
            "tuned"):
        recorded = doc["thresholds"]
    if not isinstance(recorded, dict) or not all(
            isinstance(recorded.get(k), (int, float)) for k in THRESHOLD_KEYS):
        return None
    return ParsingThresholds(*(float(recorded[k]) for k in THRESHOLD_KEYS),
                             f"{recorded.get('source', TUNED_SOURCE)}, {path}")
