"""Settings: a run is fully described by one `Config`.

- sections.py  one dataclass per section (data, model, loss, train, localize, eval), each
               field with the comment that says what it means; metadata for the settings
               that may change on resume (RESUMABLE) or never change a result (RUNTIME)
- formats.py   the dataset formats (data.format): name, reader, layout files, export
- values.py    what structured values mean: tIoU lists, the parsing metric names
- checks.py    which values each setting takes (CHOICES) and `validate`, the one check
- load.py      presets (presets/*.yaml), YAML files, KEY=VALUE overrides
               (`load_config("ave", ["model.stages=1"])`)

docs/paper-notes.md says which settings the paper fixes and why the others have the
defaults they have.
"""

from avloc.config.checks import CHOICES, validate
from avloc.config.load import (
    GRID_DIR,
    PRESET_DIR,
    apply_dict,
    apply_overrides,
    config_from_dict,
    load_config,
    preset_names,
    read_yaml,
)
from avloc.config.sections import (
    RESUMABLE,
    RUNTIME,
    Config,
    DataConfig,
    EvalConfig,
    LocalizeConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from avloc.config.values import PARSING_METRICS, parse_tiou

__all__ = [
    "CHOICES", "GRID_DIR", "PARSING_METRICS", "PRESET_DIR", "RESUMABLE", "RUNTIME", "Config",
    "DataConfig", "EvalConfig", "LocalizeConfig", "LossConfig", "ModelConfig", "TrainConfig",
    "apply_dict", "apply_overrides", "config_from_dict", "load_config", "parse_tiou",
    "preset_names", "read_yaml", "validate",
]
