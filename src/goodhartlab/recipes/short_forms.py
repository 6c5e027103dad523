"""Short forms with repeated flags, rewritten into config overrides before the CLI parses them.

`goodhart score GENERATIONS --rm A --rm B --gold G` and `goodhart evaluate latents --checkpoint
A --checkpoint B --rm R`. Why apart from the recipes: the CLI rewrites the arguments before it
parses them, `--help` included, so this module imports nothing but the standard library.
Importing the recipes for this made `goodhart score --help` pay for numpy and the run machinery
(0.4-0.5 s vs 0.2 s) and `goodhart evaluate latents --help` for torch and transformers (4.5 s).
"""

from __future__ import annotations

import json
from collections.abc import Collection

_VALUE_FLAGS = {"--config", "--out"}  # flags of every command whose value is not GENERATIONS


def _flag_value(args: list[str], i: int, flags: Collection[str]) -> tuple[str, str | None, int]:
    """(flag, value, index of the last argument used) of `args[i]`: `--flag=v`, or for one of
    `flags` also `--flag v` (two arguments); value None when there is none."""
    flag, value = [*args[i].split("=", 1), None][:2]
    if flag in flags and value is None and i + 1 < len(args):
        return flag, args[i + 1], i + 1
    return flag, value, i


def _rewrite(
    args: list[str], repeated: tuple[str, str], single: tuple[str, str], positional: str | None
) -> list[str]:
    """Flag `repeated[0]` (given any number of times) -> the list override `repeated[1]=[...]`,
    `single[0]` -> `single[1]=v`, and a bare argument (not a `key=value`, not the value of
    --config or --out) -> `positional=arg`; everything else is kept as it is."""
    out: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(args):
        flag, value, last = _flag_value(args, i, (repeated[0], single[0]))
        if flag == repeated[0] and value is not None:
            values.append(value)
        elif flag == single[0] and value is not None:
            out.append(f"{single[1]}={value}")
        elif (
            positional
            and not args[i].startswith("-")
            and "=" not in args[i]
            and not (i > 0 and args[i - 1] in _VALUE_FLAGS)
        ):
            out.append(f"{positional}={args[i]}")
        else:
            out.append(args[i])
        i = last + 1
    return out + ([f"{repeated[1]}={json.dumps(values)}"] if values else [])


def score_args(args: list[str]) -> list[str]:
    """`GENERATIONS --rm A --rm B --gold G` -> `generations=... reward_models=[A, B] gold=G`."""
    return _rewrite(args, ("--rm", "reward_models"), ("--gold", "gold"), "generations")


def latents_args(args: list[str]) -> list[str]:
    """`--checkpoint A --checkpoint B --rm R` -> the overrides `checkpoints=[A, B]`, `rm=R`."""
    return _rewrite(args, ("--checkpoint", "checkpoints"), ("--rm", "rm"), None)
