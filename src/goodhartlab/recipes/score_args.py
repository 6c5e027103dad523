"""`goodhart score`'s short form, `GENERATIONS --rm A --rm B --gold G`, as config overrides.

Why apart from the recipe: the CLI rewrites the arguments before it parses them, `--help`
included, so this module imports nothing but the standard library; importing the recipe made
`goodhart score --help` pay for numpy and the run machinery.
"""

from __future__ import annotations

import json

_VALUE_FLAGS = {"--config", "--out"}  # flags of every command whose value is not GENERATIONS


def cli_args(args: list[str]) -> list[str]:
    """`GENERATIONS --rm A --rm B --gold G` -> `generations=... reward_models=[A, B] gold=G`."""
    out, rms, i = [], [], 0
    while i < len(args):
        flag, value = [*args[i].split("=", 1), None][:2]
        takes_next = value is None and i + 1 < len(args)
        if flag in ("--rm", "--gold") and takes_next:
            value, i = args[i + 1], i + 1
        if flag == "--rm" and value is not None:
            rms.append(value)
        elif flag == "--gold" and value is not None:
            out.append(f"gold={value}")
        elif not args[i].startswith("-") and "=" not in args[i] and not _is_flag_value(args, i):
            out.append(f"generations={args[i]}")
        else:
            out.append(args[i])
        i += 1
    return out + ([f"reward_models={json.dumps(rms)}"] if rms else [])


def _is_flag_value(args: list[str], i: int) -> bool:
    return i > 0 and args[i - 1] in _VALUE_FLAGS
