"""What a config field's type annotation says: its resolved hints, whether it is a section
(nested dataclass, maybe optional), and a short human name for errors and `--help`.

Shared by `loader` (reading) and `dumping` (describing), so both agree on what a section is.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from pathlib import PurePath
from typing import Any, Literal


@cache
def field_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of the init fields of a dataclass (works with string annotations)."""
    resolved = typing.get_type_hints(cls)
    return {f.name: resolved[f.name] for f in dataclasses.fields(cls) if f.init}


def is_union(tp: Any) -> bool:
    """`X | Y` or `typing.Union[X, Y]`."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def section_type(tp: Any) -> tuple[type | None, bool]:
    """(dataclass, optional) if `tp` is a dataclass or `dataclass | None`, else (None, False)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp, False
    if is_union(tp):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1 and dataclasses.is_dataclass(rest[0]) and len(typing.get_args(tp)) == 2:
            return rest[0], True
    return None, False


def choice_str(choice: Any) -> str:
    """A Literal choice as YAML writes it (true/false/null)."""
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return "null" if choice is None else str(choice)


def type_str(tp: Any) -> str:
    """Short human name of a field type: `float`, `list[int]`, `kl|chi2`, `path | None`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "None"
    if origin is Literal:
        return "|".join(choice_str(c) for c in args)
    if is_union(tp):
        return " | ".join(type_str(a) for a in args)
    if origin in (list, tuple, dict) and args:
        inner = ", ".join("..." if a is Ellipsis else type_str(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "path"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))
