"""Typed dataclass configs: strict YAML loading with `a.b=value` overrides, dumping, presets.

Import-light (dataclasses + PyYAML) so `goodhart --help` stays instant. `loader` reads (strict,
one-line errors), `dumping` writes and describes, `presets` finds `--config NAME`. The schemas of
each command live in `goodhartlab.config.schemas` and `config/*_schema.py`.
"""

from goodhartlab.config.dumping import FieldInfo, config_fields, config_to_dict, dump_config
from goodhartlab.config.introspect import type_str
from goodhartlab.config.loader import load_config
from goodhartlab.config.presets import find_configs_dir, resolve_config_path

__all__ = [
    "FieldInfo",
    "config_fields",
    "config_to_dict",
    "dump_config",
    "find_configs_dir",
    "load_config",
    "resolve_config_path",
    "type_str",
]
