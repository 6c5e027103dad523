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


def score_args(args: list[str]) -> list[str]:
    """`GENERATIONS --rm A --rm B --gold G` -> `generations=... reward_models=[A, B] gold=G`."""
    out, rms, i = [], [], 0
    while i < len(args):
        flag, value, last = _flag_value(args, i, ("--rm", "--gold"))
        if flag == "--rm" and value is not None:
            rms.append(value)
        elif flag == "--gold" and value is not None:
            out.append(f"gold={value}")
        elif not args[i].startswith("-") and "=" not in args[i] and not _is_flag_value(args, i):
            out.append(f"generations={args[i]}")
        else:
            out.append(args[i])
        i = last + 1
    return out + ([f"reward_models={json.dumps(rms)}"] if rms else [])


def _is_flag_value(args: list[str], i: int) -> bool:
    return i > 0 and args[i - 1] in _VALUE_FLAGS


def latents_args(args: list[str]) -> list[str]:
    """`--checkpoint A --checkpoint B --rm R` -> the overrides `checkpoints=[A, B]`, `rm=R`."""
    out, checkpoints, i = [], [], 0
    while i < len(args):
        flag, value, last = _flag_value(args, i, ("--checkpoint", "--rm"))
        if flag == "--checkpoint" and value is not None:
            checkpoints.append(value)
        elif flag == "--rm" and value is not None:
            out.append(f"rm={value}")
        else:
            out.append(args[i])
        i = last + 1
    return out + ([f"checkpoints={json.dumps(checkpoints)}"] if checkpoints else [])
