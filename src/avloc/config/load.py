"""Loading settings: YAML presets and files, a run's or a checkpoint's saved settings, and
`SECTION.NAME=VALUE` overrides; everything loaded ends in `checks.validate`."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from avloc.config.checks import validate
from avloc.config.sections import Config
from avloc.util.errors import AvlocError, first_line

PRESET_DIR = Path(__file__).parent / "presets"  # the presets, one YAML file each
GRID_DIR = Path(__file__).parent / "grids"  # `avloc reproduce` grids (avloc.report.grid)


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
    """A preset name (`preset_names()`: ave, anet12, thumos14, llp, demo, llp_demo) or a
    YAML path, then `key=value` overrides."""
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
