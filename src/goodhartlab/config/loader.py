"""Strict YAML loading of typed dataclass configs, with `a.b=value` overrides (DESIGN.md §2, §4).

Why not `yaml.safe_load` + `cls(**d)`: a typo'd key or a wrong type would then surface far from
its cause (or never). We walk the YAML *node* tree against the dataclass type hints so every
error is one line naming file, line, field and the allowed values.

Rules (each one is tested in tests/config/test_loader.py):
- Supported field types: int, float, bool, str, pathlib.Path, Literal[...], X | None, unions,
  list[T], tuple[T, ...], tuple[A, B], dict[K, V], nested dataclasses (also inside containers).
- int accepts only YAML integers (not bools, not 1.0); float accepts ints and floats and, because
  YAML 1.1 reads `1e-3` as text, text that is a decimal number literal (`1e-3`, `-2.5E+4`), quoted
  or not. str accepts only YAML text: `name: 123` is an error (quote it: `name: "123"`); we never
  turn numbers or bools back into text. A Literal of strings matches the written text, so
  `mode: off` matches the choice "off" although YAML 1.1 reads it as false.
- A section (nested dataclass) written as a mapping updates only the fields it names; the rest
  keep their defaults. A section written empty (`train:` with nothing under it) keeps defaults;
  an optional section (`Sub | None`) written `null` becomes None.
- Overrides `a.b=value` apply after the file, in order; the value is parsed as one YAML node
  (`lr=1e-3`, `seeds=[1,2,3]`, `name=null`; an empty value is null). Setting a field inside an
  optional section that is None starts from that section's defaults.
- A field whose metadata has a `range` (config/ranges.py) refuses a number outside it:
  `train.batch_size=-4` -> `field 'train.batch_size': -4 is out of range (allowed: [1, inf))`.
- A `__post_init__` may raise ValueError for cross-field checks. If the message starts with one
  of that class's field names and a colon (`"warmup_steps: must be <= total_steps"`), the error
  names that field (with the line or override that set it); otherwise it names the section.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from goodhartlab.config.introspect import (
    choice_str,
    field_hints,
    is_union,
    section_type,
    type_str,
)
from goodhartlab.config.ranges import range_problem
from goodhartlab.errors import ConfigError, where

T = TypeVar("T")

_NULL_TAG = "tag:yaml.org,2002:null"
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_FIELD_PREFIX = re.compile(r"([A-Za-z_]\w*):\s*(.*)", re.S)


# ---------------------------------------------------------------- where a value came from


@dataclass(frozen=True)
class _Source:
    """A config file (`path`), an override (`override` text), or neither (class defaults)."""

    path: str | None = None
    override: str | None = None

    def fail(self, node: Node | None, field: str | None, message: str) -> ConfigError:
        """One-line ConfigError: `file:line: field 'x': msg` or `override 'a=b': field 'x': msg`."""
        if self.override is not None:
            loc = f"override '{self.override}'" + (f": field '{field}'" if field else "")
        else:
            mark = getattr(node, "start_mark", None)
            loc = where(self.path, mark.line + 1 if mark is not None else None, field)
        text = f"{loc}: {message}" if loc else message
        return ConfigError(text.replace("\n", " "))


@dataclass
class _Leaf:
    value: Any  # already converted to the field's type
    node: Node
    source: _Source


@dataclass
class _Section:
    """The settings given for one dataclass: field name -> _Leaf or nested _Section."""

    source: _Source
    node: Node | None  # the key (or mapping) that opened the section; None at the top
    entries: dict[str, _Leaf | _Section] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------- node -> typed value


def _scalar(node: ScalarNode) -> Any:
    """The Python value YAML gives a scalar (text if its constructor refuses, e.g. a bad date)."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError):
        return node.value


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _got(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    if _is_null(node):
        return "null"
    value = _scalar(node)
    return repr(value) if isinstance(value, str) else f"{node.value} ({type(value).__name__})"


def _convert(node: Node, tp: Any, source: _Source, field: str) -> Any:
    """Check `node` against type `tp` and return the typed value, or raise a ConfigError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return yaml.constructor.SafeConstructor().construct_document(node)
    if origin is Literal:
        return _convert_choice(node, args, source, field)
    if is_union(tp):
        return _convert_union(node, tp, source, field)
    if dataclasses.is_dataclass(tp):
        if not isinstance(node, MappingNode):
            fields = ", ".join(sorted(field_hints(tp)))
            raise source.fail(node, field, f"expected a section ({fields}), got {_got(node)}")
        section = _Section(source, node)
        _merge_mapping(section, tp, node, source, field)
        return _build(tp, section, _default_instance(tp), field)
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_sequence(node, tp, source, field)
    if origin is dict or tp is dict:
        return _convert_mapping(node, tp, source, field)
    if tp in (int, float, bool, str) or (isinstance(tp, type) and issubclass(tp, PurePath)):
        return _convert_scalar(node, tp, source, field)
    raise TypeError(f"config field '{field}': unsupported type {tp!r}")


def _convert_scalar(node: Node, tp: type, source: _Source, field: str) -> Any:
    value = _scalar(node) if isinstance(node, ScalarNode) else None
    ok = isinstance(node, ScalarNode)
    hint = ""
    if tp is bool:
        ok = ok and isinstance(value, bool)
    elif tp is int:
        ok = ok and isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        ok = ok and isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = ok and isinstance(value, str)
        hint = "" if ok or value is None else "; quote it to pass text"
    else:  # a path
        ok = ok and isinstance(value, str)
        value = tp(value) if ok else value
    if not ok:
        raise source.fail(node, field, f"expected {type_str(tp)}, got {_got(node)}{hint}")
    return value


def _convert_choice(node: Node, choices: tuple, source: _Source, field: str) -> Any:
    if isinstance(node, ScalarNode):
        value = _scalar(node)
        for choice in choices:
            if isinstance(choice, str) and node.value == choice:
                return choice
            if type(value) is type(choice) and value == choice:
                return choice
    allowed = ", ".join(choice_str(c) for c in choices)
    got = f"'{node.value}'" if isinstance(node, ScalarNode) else _got(node)
    raise source.fail(node, field, f"bad choice {got} (allowed: {allowed})")


def _convert_union(node: Node, tp: Any, source: _Source, field: str) -> Any:
    members = typing.get_args(tp)
    if type(None) in members and _is_null(node):
        return None
    rest = [m for m in members if m is not type(None)]
    if len(rest) == 1:
        return _convert(node, rest[0], source, field)
    for member in rest:
        try:
            return _convert(node, member, source, field)
        except ConfigError:
            continue
    raise source.fail(node, field, f"expected {type_str(tp)}, got {_got(node)}")


def _convert_sequence(node: Node, tp: Any, source: _Source, field: str) -> list | tuple:
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp) or (Any, Ellipsis)
    if origin is list:
        args = (args[0], Ellipsis)
    if not isinstance(node, SequenceNode):
        raise source.fail(node, field, f"expected {type_str(tp)}, got {_got(node)}")
    items = node.value
    if args[-1] is not Ellipsis and len(items) != len(args):
        message = f"expected {len(args)} items ({type_str(tp)}), got {len(items)}"
        raise source.fail(node, field, message)
    item_types = [args[0]] * len(items) if args[-1] is Ellipsis else list(args)
    values = [
        _convert(item, item_tp, source, f"{field}[{i}]")
        for i, (item, item_tp) in enumerate(zip(items, item_types))
    ]
    return values if origin is list else tuple(values)


def _convert_mapping(node: Node, tp: Any, source: _Source, field: str) -> dict:
    key_tp, value_tp = typing.get_args(tp) or (str, Any)
    if not isinstance(node, MappingNode):
        raise source.fail(node, field, f"expected {type_str(tp)}, got {_got(node)}")
    out: dict = {}
    for key_node, value_node in node.value:
        key = _convert(key_node, key_tp, source, f"{field} key")
        if key in out:
            raise source.fail(key_node, f"{field}.{key}", "duplicate key")
        out[key] = _convert(value_node, value_tp, source, f"{field}.{key}")
    return out


# ---------------------------------------------------------------- settings tree


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_name(cls: type, name: str, source: _Source, node: Node | None, prefix: str) -> None:
    names = field_hints(cls)
    if name in names:
        return
    message = f"unknown key (allowed: {', '.join(sorted(names))})"
    close = difflib.get_close_matches(name, list(names), n=1)
    if close:
        message += f"; did you mean '{close[0]}'?"
    raise source.fail(node, _join(prefix, name), message)


def _merge_mapping(
    section: _Section, cls: type, node: MappingNode, source: _Source, prefix: str
) -> None:
    """Record the `key: value` pairs of a YAML mapping as settings of dataclass `cls`."""
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise source.fail(
                key_node, prefix or None, f"keys must be field names, got {_got(key_node)}"
            )
        name = key_node.value
        _check_name(cls, name, source, key_node, prefix)
        if name in first_line:
            message = f"duplicate key (first set on line {first_line[name]})"
            raise source.fail(key_node, _join(prefix, name), message)
        first_line[name] = key_node.start_mark.line + 1
        _merge_entry(section, cls, name, value_node, key_node, source, prefix)


def _merge_entry(
    section: _Section,
    cls: type,
    name: str,
    node: Node,
    key_node: Node | None,
    source: _Source,
    prefix: str,
) -> None:
    """Set one field: a mapping for a section merges into it; anything else is converted now."""
    tp = field_hints(cls)[name]
    dc, optional = section_type(tp)
    sub = section.entries.get(name)
    if dc is not None and (isinstance(node, MappingNode) or (_is_null(node) and not optional)):
        if not isinstance(sub, _Section):
            sub = section.entries[name] = _Section(source, key_node or node)
        if isinstance(node, MappingNode):
            _merge_mapping(sub, dc, node, source, _join(prefix, name))
        return
    value = _convert(node, tp, source, _join(prefix, name))
    problem = range_problem(_field_metadata(cls, name).get("range"), value)
    if problem:
        raise source.fail(key_node or node, _join(prefix, name), problem)
    section.entries[name] = _Leaf(value, key_node or node, source)


def _field_metadata(cls: type, name: str) -> Any:
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


def _apply_override(root: _Section, cls: type, text: str) -> None:
    """Apply one `a.b=value` override to the settings tree rooted at `root`."""
    source = _Source(override=text)
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise source.fail(None, None, "expected key=value, e.g. train.lr=1e-3")
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise source.fail(None, key, f"bad YAML value: {_yaml_reason(exc)[1]}") from None
    node = node if node is not None else ScalarNode(_NULL_TAG, "")
    *path, name = key.split(".")
    section, owner, prefix = root, cls, ""
    for part in path:
        _check_name(owner, part, source, None, prefix)
        tp, prefix = field_hints(owner)[part], _join(prefix, part)
        dc, _ = section_type(tp)
        if dc is None:
            raise source.fail(None, prefix, f"is {type_str(tp)}, not a section; set it whole")
        sub = section.entries.get(part)
        if not isinstance(sub, _Section):
            sub = section.entries[part] = _Section(source, None)
        section, owner = sub, dc
    _check_name(owner, name, source, None, prefix)
    _merge_entry(section, owner, name, node, None, source, prefix)


# ---------------------------------------------------------------- building the objects


def _default_instance(cls: type[T]) -> T:
    try:
        return cls()
    except TypeError as exc:
        raise TypeError(
            f"config class {cls.__name__}: every field needs a default ({exc})"
        ) from exc


def _build(cls: type[T], section: _Section, base: T, prefix: str) -> T:
    """`base` with the section's settings applied; __post_init__ ValueErrors -> ConfigError."""
    changes = {}
    for name, entry in section.entries.items():
        if isinstance(entry, _Section):
            dc, _ = section_type(field_hints(cls)[name])
            sub_base = getattr(base, name)
            if not isinstance(sub_base, dc):
                sub_base = _default_instance(dc)
            changes[name] = _build(dc, entry, sub_base, _join(prefix, name))
        else:
            changes[name] = entry.value
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise _post_init_error(cls, section, prefix, exc) from None


def _post_init_error(cls: type, section: _Section, prefix: str, exc: ValueError) -> ConfigError:
    message = " ".join(str(exc).split())
    match = _FIELD_PREFIX.fullmatch(message)
    if match and match[1] in field_hints(cls):
        name, message = match[1], match[2]
        entry = section.entries.get(name)
        source, node = (entry.source, entry.node) if entry else (section.source, section.node)
        return source.fail(node, _join(prefix, name), message)
    return section.source.fail(section.node, prefix or None, message)


def _yaml_reason(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line, short reason) of a PyYAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    reason = ", ".join(p for p in parts if p) or str(exc)
    return (mark.line + 1 if mark is not None else None), " ".join(reason.split())


def _compose_file(path: Path) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line, reason = _yaml_reason(exc)
        raise ConfigError(f"{where(path, line)}: invalid YAML: {reason}") from None


def load_config(cls: type[T], path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> T:
    """Defaults of `cls`, updated by the YAML file at `path` (if any), then by `overrides`.

    Raises ConfigError (one line naming file:line or override, the field and what is allowed).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    root = _Section(_Source(path=None if path is None else str(path)), None)
    if path is not None:
        node = _compose_file(Path(path))
        if node is not None and not isinstance(node, MappingNode):
            message = f"top level must be a mapping of fields, got {_got(node)}"
            raise root.source.fail(node, None, message)
        if node is not None:
            _merge_mapping(root, cls, node, root.source, "")
    for text in [overrides] if isinstance(overrides, str) else overrides:
        _apply_override(root, cls, text)
    return _build(cls, root, _default_instance(cls), "")
