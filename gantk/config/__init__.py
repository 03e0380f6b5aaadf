"""Typed training configuration.

A run's configuration is a tree of dataclasses. The engine owns the generic sections (``data``,
``train``, ``optim``, ``schedule``, ``eval``); a plugin subclasses :class:`Config` to add its own
(``model``, ``loss``, ...) and may widen ``data`` with extra fields. Values come, in order of
precedence, from the dataclass defaults, the plugin's ``defaults.yaml``, an optional ``--config`` file
and ``--set key=value`` overrides. Every layer is validated against the dataclass types, so a typo or a
wrong type fails before training starts, with an error that names the key, where it came from and what
was expected.

One module per stage of a config's life, each importing only the ones before it:

- :mod:`~gantk.config.schema`: the sections, the ranges of numeric fields, path-valued fields
- :mod:`~gantk.config.yaml_files`: config files read (the text of every value kept) and written
- :mod:`~gantk.config.validate`: plain data into dataclasses, one converter per kind of type
- :mod:`~gantk.config.freeze`: a resolved config made read-only
- :mod:`~gantk.config.layers`: defaults < files < flags < ``--set``, merged with where each key came from
"""

from gantk.config.freeze import FrozenConfigError, FrozenDict, freeze, is_frozen
from gantk.config.layers import layered, merge, overrides_to_dict, parse_overrides, rebase_paths, with_values
from gantk.config.schema import (
    AlarmsConfig,
    AugmentConfig,
    Beta,
    Config,
    Count,
    DataConfig,
    EMAConfig,
    EvalConfig,
    FilePath,
    ImageSize,
    NonNegative,
    OptimConfig,
    PathStr,
    PositiveInt,
    Range,
    ScheduleConfig,
    Seed,
    Side,
    TrainConfig,
    Unit,
    Width,
    height_width,
    to_dict,
)
from gantk.config.validate import Origins, build
from gantk.config.yaml_files import Plain, dump_yaml, load_yaml, parse_yaml, plain_value

__all__ = [
    "AlarmsConfig",
    "AugmentConfig",
    "Beta",
    "Config",
    "Count",
    "DataConfig",
    "EMAConfig",
    "EvalConfig",
    "FilePath",
    "ImageSize",
    "FrozenConfigError",
    "FrozenDict",
    "NonNegative",
    "OptimConfig",
    "Origins",
    "PathStr",
    "Plain",
    "PositiveInt",
    "Range",
    "ScheduleConfig",
    "Seed",
    "Side",
    "TrainConfig",
    "Unit",
    "Width",
    "build",
    "dump_yaml",
    "freeze",
    "is_frozen",
    "layered",
    "load_yaml",
    "merge",
    "overrides_to_dict",
    "parse_overrides",
    "parse_yaml",
    "plain_value",
    "rebase_paths",
    "height_width",
    "to_dict",
    "with_values",
]
