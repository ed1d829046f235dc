"""Experiment grids: named variants x seeds from a YAML file, all checked before training.

A grid file (src/avloc/config/grids/table1.yaml is one):

    title: Table 1, multi-stage cross attention
    base: demo                    # preset name, YAML path or {section: {name: value}}
    settings:                     # applied to every variant (dotted keys)
      model.classifier: openmax
    seeds: 3                      # 3 means seeds 0, 1, 2; or an explicit list [0, 5, 7]
    reference: 2-stage            # the row the others are compared with (delta column)
    compare: visual-only          # the second model of the class-activation figure
    paper: table1                 # print the paper's numbers beside ours (AVE, ANet 1.2)
    layout: columns               # variants as columns like the paper's Table 1 (or rows)
    variants:
      - name: 1-stage             # also the run folder name: runs/1-stage/seed0
        group: multi-modal        # optional super-header, as in the paper
        settings: {model.stages: 1}

The settings of one run are built in this order: base (or `--config`), the grid's
`settings`, the command line's KEY=VALUE overrides, the variant's settings, and finally
train.seed = the seed. An override of a setting that a variant sets is refused: it
would silently not apply to that variant.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avloc.config import (
    GRID_DIR,
    RUNTIME,
    Config,
    apply_dict,
    apply_overrides,
    load_config,
    read_yaml,
    validate,
)
from avloc.runs.layout import CONFIG, grid_run_dir, read_saved_settings
from avloc.util.errors import AvlocError

GRID_KEYS = {"title", "description", "base", "settings", "seeds", "reference", "compare",
             "paper", "layout", "task", "variants"}
VARIANT_KEYS = {"name", "settings", "group", "paper"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SCORED_BY = {"event": "snippet accuracy", "action": "mAP", "parsing": "parsing F-scores"}


@dataclass
class Variant:
    name: str
    settings: dict[str, Any]  # dotted key -> value, e.g. {"model.stages": 1}
    group: str = ""
    paper: str = ""  # row of the paper's table (default: the variant's name)


@dataclass
class Grid:
    name: str  # file stem, e.g. table1
    source: str  # what error messages name: the grid file
    base: str | dict[str, Any]
    settings: dict[str, Any]
    seeds: list[int]
    variants: list[Variant]
    title: str = ""
    description: str = ""
    reference: str = ""
    compare: str = ""
    paper: str = ""
    layout: str = "rows"
    task: str = ""  # event | action | parsing when the grid only makes sense on one kind of data
    folder: Path = field(default_factory=Path)  # relative base paths are read from here

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass
class RunSpec:
    """One training run of the grid: a variant at a seed, in its own folder."""

    variant: str
    seed: int
    dir: Path
    cfg: Config

    @property
    def key(self) -> str:
        return f"{self.variant}/seed{self.seed}"


# ---- reading the grid file ---------------------------------------------------------------
def grid_names() -> list[str]:
    return sorted(p.stem for p in GRID_DIR.glob("*.yaml"))


def find_grid(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.suffix and (GRID_DIR / f"{name_or_path}.yaml").exists():
        return GRID_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise AvlocError(
            f"grid {name_or_path!r}: no such file or preset (presets: {', '.join(grid_names())})"
        )
    return path


def _seeds(value: Any, source: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise AvlocError(f"{source}: seeds={value}: need at least 1")
        return list(range(value))
    if (isinstance(value, list) and value
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        if len(set(value)) != len(value):
            raise AvlocError(f"{source}: seeds {value}: a seed is listed twice")
        return list(value)
    raise AvlocError(f"{source}: seeds={value!r}: expected a count (3) or a list of seeds [0, 1]")


def _dotted(values: Any, source: str) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise AvlocError(f"{source}: settings must be a mapping like {{model.stages: 1}}")
    for key in values:
        if not isinstance(key, str) or key.count(".") != 1:
            raise AvlocError(f"{source}: setting {key!r}: expected SECTION.NAME, e.g. model.stages")
    return dict(values)


def _variant(entry: Any, index: int, source: str) -> Variant:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise AvlocError(f"{source}: variant #{index + 1}: expected a mapping with a name")
    name = entry["name"]
    where = f"{source}: variant {name!r}"
    unknown = set(entry) - VARIANT_KEYS
    if unknown:
        raise AvlocError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                         f"(a variant has: {', '.join(sorted(VARIANT_KEYS))})")
    if not NAME_RE.match(name):
        raise AvlocError(f"{where}: the name is also a folder name; use letters, digits, "
                         "'.', '_' and '-' only")
    return Variant(name, _dotted(entry.get("settings"), where), str(entry.get("group") or ""),
                   str(entry.get("paper") or name))


def parse_grid(raw: Any, source: str, name: str, folder: Path) -> Grid:
    """Check the structure of a grid mapping (settings are checked by `plan_runs`)."""
    if not isinstance(raw, dict):
        raise AvlocError(f"{source}: expected a mapping with base, seeds and variants")
    unknown = set(raw) - GRID_KEYS
    if unknown:
        raise AvlocError(f"{source}: unknown key {sorted(unknown)[0]!r} "
                         f"(a grid has: {', '.join(sorted(GRID_KEYS))})")
    entries = raw.get("variants")
    if not isinstance(entries, list) or not entries:
        raise AvlocError(f"{source}: variants: expected a non-empty list")
    variants = [_variant(e, i, source) for i, e in enumerate(entries)]
    seen: set[str] = set()
    for v in variants:
        if v.name in seen:
            raise AvlocError(f"{source}: variant {v.name!r} is listed twice")
        seen.add(v.name)
    base = raw.get("base", "demo")
    if not isinstance(base, (str, dict)):
        raise AvlocError(f"{source}: base: expected a preset name, a YAML path or a mapping")
    grid = Grid(
        name=name, source=source, base=base, settings=_dotted(raw.get("settings"), source),
        seeds=_seeds(raw.get("seeds", 3), source), variants=variants,
        title=str(raw.get("title") or name), description=str(raw.get("description") or ""),
        reference=str(raw.get("reference") or ""), compare=str(raw.get("compare") or ""),
        paper=str(raw.get("paper") or ""), layout=str(raw.get("layout") or "rows"),
        task=str(raw.get("task") or ""), folder=folder,
    )
    for key in ("reference", "compare"):
        value = getattr(grid, key)
        if value and grid.variant(value) is None:
            raise AvlocError(f"{source}: {key}: no variant named {value!r}")
    if grid.layout not in ("rows", "columns"):
        raise AvlocError(f"{source}: layout={grid.layout!r}: expected rows or columns")
    if grid.task not in ("", "event", "action", "parsing"):
        raise AvlocError(f"{source}: task={grid.task!r}: expected event, action or parsing")
    from avloc.report.paper import PAPER_TABLES

    if grid.paper and grid.paper not in PAPER_TABLES:
        raise AvlocError(f"{source}: paper={grid.paper!r}: the paper's tables here are "
                         f"{', '.join(sorted(PAPER_TABLES))}")
    return grid


def load_grid(name_or_path: str) -> Grid:
    """A grid preset (`grid_names()`: table1, table2, table5, parsing) or a YAML file."""
    path = find_grid(name_or_path)
    return parse_grid(read_yaml(path), str(path), path.stem, path.parent)


# ---- settings of every run ---------------------------------------------------------------
def _nested(dotted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        section, name = key.split(".")
        out.setdefault(section, {})[name] = value
    return out


def base_config(grid: Grid, config: str | None = None) -> Config:
    """The grid's base settings, or `config` (a preset or YAML path) in their place."""
    if config:
        return load_config(config)
    if isinstance(grid.base, dict):
        return validate(apply_dict(Config(), grid.base, f"{grid.source}: base"))
    local = grid.folder / grid.base
    return load_config(str(local) if Path(grid.base).suffix and local.is_file() else grid.base)


def variant_config(grid: Grid, variant: Variant, base: Config, overrides: list[str]) -> Config:
    """base -> grid settings -> overrides -> variant settings; errors name the variant."""
    cfg = copy.deepcopy(base)
    apply_dict(cfg, _nested(grid.settings), f"{grid.source}: settings")
    apply_overrides(cfg, overrides)
    where = f"{grid.source}: variant {variant.name!r}"
    apply_dict(cfg, _nested(variant.settings), where)
    try:
        return validate(cfg)
    except AvlocError as e:
        raise AvlocError(f"{where}: {e}") from None


def _check_overrides(grid: Grid, overrides: list[str]) -> None:
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key == "train.seed":
            raise AvlocError("override train.seed: the grid sets the seed of each run; "
                             "use --seeds or the grid's seeds")
        for v in grid.variants:
            if key in v.settings:
                raise AvlocError(
                    f"override {key}: variant {v.name!r} of {grid.source} sets it itself, so "
                    "it cannot apply to every variant (change the variants' settings instead)"
                )


def plan_runs(
    grid: Grid, out: Path, config: str | None = None, overrides: list[str] | None = None,
    seeds: int | list[int] | None = None,
) -> list[RunSpec]:
    """Every (variant, seed) run with its settings, in table order; nothing is written."""
    overrides = list(overrides or [])
    _check_overrides(grid, overrides)
    seed_list = grid.seeds if seeds is None else _seeds(seeds, "--seeds")
    base = base_config(grid, config)
    specs = []
    for v in grid.variants:
        if "train.seed" in v.settings:
            raise AvlocError(f"{grid.source}: variant {v.name!r}: setting train.seed: the grid "
                             "sets the seed of each run (use seeds:)")
        cfg = variant_config(grid, v, base, overrides)
        for seed in seed_list:
            run_cfg = copy.deepcopy(cfg)
            run_cfg.train.seed = seed
            specs.append(RunSpec(v.name, seed, grid_run_dir(out, v.name, seed), run_cfg))
    return specs


def runtime_overrides(cfg: Config) -> list[str]:
    """The runtime settings of `cfg` as KEY=VALUE, which a resumed run takes on (a partial
    run of an earlier call continues with this call's train.tensorboard, device, ...)."""
    return [f"{key}={json.dumps(getattr(getattr(cfg, key.split('.')[0]), key.split('.')[1]))}"
            for key in sorted(RUNTIME)]


def varying_settings(grid: Grid) -> list[str]:
    """The dotted settings that some variant sets: what the table's rows differ in."""
    keys: list[str] = []
    for v in grid.variants:
        keys += [k for k in v.settings if k not in keys]
    return keys


# ---- checks against the data and the run folders -----------------------------------------
def data_key(cfg: Config) -> str:
    return json.dumps(asdict(cfg.data), sort_keys=True)


def _has_signal(videos: list, attr: str) -> bool:
    """False when every video's features of one modality are constant (e.g. all zero)."""
    for v in videos:
        x = getattr(v, attr)
        if x.size and float(x.max()) != float(x.min()):
            return True
    return False


def check_data(grid: Grid, specs: list[RunSpec], data_root: str | Path | None) -> dict[str, Any]:
    """Load each distinct dataset once and check that every variant can run on it.

    Returns {data_key: Dataset}. Checked: the data loads; train, val (model selection)
    and test (scored once per run) are non-empty; a variant's modalities carry signal;
    the grid's task and each variant's selection metric fit the data's task.
    """
    from avloc.data import load_dataset
    from avloc.data.checks import check_head
    from avloc.scoring.evaluate import selection_metric

    datasets: dict[str, Any] = {}
    for spec in specs:
        key = data_key(spec.cfg)
        if key not in datasets:
            datasets[key] = load_dataset(spec.cfg.data, data_root)
        ds = datasets[key]
        where = f"{grid.source}: variant {spec.variant!r}"
        place = f"the data ({spec.cfg.data.format}{f' at {data_root}' if data_root else ''})"
        for split, why in (("train", "to train on"), ("val", "for model selection"),
                           ("test", "to score")):
            if not ds.splits.get(split):
                raise AvlocError(f"{where}: {place} has an empty {split} split, needed {why}"
                                 + (" (set data.val_fraction > 0)" if split == "val" else ""))
        if grid.task and grid.task != ds.task:
            raise AvlocError(f"{grid.source}: task={grid.task}: {place} is {ds.task} data "
                             f"({SCORED_BY[ds.task]})")
        try:
            selection_metric(spec.cfg, ds.task)
            check_head(spec.cfg.model.head, ds)
        except AvlocError as e:
            raise AvlocError(f"{where}: {e} ({place})") from None
        modality = spec.cfg.model.modality
        for name, attr in (("audio", "audio"), ("visual", "visual")):
            if modality in ("av", name) and not _has_signal(ds.splits["train"], attr):
                raise AvlocError(f"{where}: setting model.modality={modality}: {place} has no "
                                 f"{name} (every training video's {name} features are constant)")
    return datasets


def _flatten(d: dict[str, Any]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, entries in d.items() if isinstance(entries, dict)
            for k, v in entries.items()}


def check_run_folders(specs: list[RunSpec]) -> None:
    """A run folder left by an earlier call must hold the same experiment: only settings
    that never change a result (config.RUNTIME) may differ."""
    for spec in specs:
        if not (spec.dir / CONFIG).is_file():
            continue
        try:
            old = _flatten(read_saved_settings(spec.dir))
        except AvlocError:
            raise AvlocError(f"{spec.dir / CONFIG}: unreadable; delete {spec.dir} to run it "
                             "again") from None
        new = _flatten(spec.cfg.to_dict())
        for key in new:
            if key in RUNTIME or old.get(key, new[key]) == new[key]:
                continue
            raise AvlocError(
                f"{spec.dir}: was made with setting {key}={old[key]!r}, the grid "
                f"now gives {new[key]!r}; delete that folder or use another --out"
            )


# ---- what the output folder records ------------------------------------------------------
def describe_grid(grid: Grid, specs: list[RunSpec]) -> dict[str, Any]:
    """What the output folder records about the grid it holds (grid.json)."""
    return {
        "grid": grid.name, "source": grid.source, "title": grid.title,
        "seeds": sorted({s.seed for s in specs}),
        "variants": [{"name": v.name, "group": v.group, "settings": v.settings}
                     for v in grid.variants],
        "settings": {s.key: s.cfg.to_dict() for s in specs if s.seed == specs[0].seed},
    }
