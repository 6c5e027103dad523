"""Writing configs back out and describing them: YAML dumps (run dirs' config.yaml, sweep jobs)
and the flattened field list `goodhart CMD --help` prints.

Apart from `loader` because reading is the strict, error-reporting half and this half only walks
finished objects; it reuses the loader's type introspection so both agree on what a section is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml

from goodhartlab.config.introspect import field_hints, section_type, type_str
from goodhartlab.config.loader import _default_instance, _join


def config_to_dict(cfg: Any) -> Any:
    """Plain YAML-able data in field order: dataclasses -> dicts, tuples -> lists, paths -> str."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {
            f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.init
        }
    if isinstance(cfg, list | tuple):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {config_to_dict(k): config_to_dict(v) for k, v in cfg.items()}
    return str(cfg) if isinstance(cfg, PurePath) else cfg


def dump_config(cfg: Any) -> str:
    """YAML text of a config, keys in field order; `load_config` reads it back to an equal object."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)


def _inline(value: Any) -> str:
    """One-line YAML of a value, usable as the right-hand side of an override."""
    text = yaml.safe_dump(config_to_dict(value), default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n...\n").strip()


@dataclass(frozen=True)
class FieldInfo:
    """One leaf field of a config class, for `--help`: dotted name, type, default, help text."""

    name: str
    type: str
    default: str
    help: str


def config_fields(cls: type) -> list[FieldInfo]:
    """Leaf fields of `cls`, nested sections flattened to dotted names, in field order.

    Defaults come from a default instance, so a section whose default_factory customises it
    shows the values a run would use.
    """
    return _leaf_fields(cls, _default_instance(cls), "")


def _leaf_fields(cls: type, defaults: Any, prefix: str) -> list[FieldInfo]:
    out: list[FieldInfo] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp, name, value = field_hints(cls)[f.name], _join(prefix, f.name), getattr(defaults, f.name)
        dc, optional = section_type(tp)
        if dc is not None and not optional:
            out += _leaf_fields(dc, value, name)
        else:
            out.append(FieldInfo(name, type_str(tp), _inline(value), f.metadata.get("help", "")))
    return out
