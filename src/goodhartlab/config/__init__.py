"""Typed dataclass configs: strict YAML loading with `a.b=value` overrides, dumping, presets.

Import-light (dataclasses + PyYAML) so `goodhart --help` stays instant. The schemas of each
command live in `goodhartlab.config.schemas`.
"""

from goodhartlab.config.loader import (
    FieldInfo,
    config_fields,
    config_to_dict,
    dump_config,
    find_configs_dir,
    load_config,
    resolve_config_path,
    type_str,
)

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
