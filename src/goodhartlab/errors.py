"""User-facing errors: one line naming file, line and field; the CLI prints it and exits non-zero.

Why a tiny hierarchy instead of bare ValueError: the CLI must tell a user mistake (print one line,
no traceback) from a bug in goodhartlab (traceback). Everything a user can cause raises a
`GoodhartError` subclass; everything else is a bug.
"""

from __future__ import annotations

from os import PathLike


class GoodhartError(Exception):
    """Base of all user-facing errors. `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class InputError(GoodhartError, ValueError):
    """Bad input data: malformed row, missing column, empty file, NaN score, missing model dir."""


class ConfigError(GoodhartError, ValueError):
    """Bad configuration: unknown key, wrong type, bad choice. Exit code 2 like argparse."""

    exit_code = 2


def where(
    path: str | PathLike[str] | None, line: int | None = None, field: str | None = None
) -> str:
    """Format a location prefix as `file:line: field 'x'` (parts omitted when unknown).

    >>> where("data.jsonl", 3, "prompt")
    "data.jsonl:3: field 'prompt'"
    """
    parts = []
    if path is not None:
        parts.append(str(path) + (f":{line}" if line is not None else ""))
    elif line is not None:
        parts.append(f"row {line}")
    if field is not None:
        parts.append(f"field '{field}'")
    return ": ".join(parts)


def input_error(
    message: str,
    path: str | PathLike[str] | None = None,
    line: int | None = None,
    field: str | None = None,
) -> InputError:
    """Build an InputError whose text is `<where>: <message>` on one line."""
    loc = where(path, line, field)
    text = f"{loc}: {message}" if loc else message
    return InputError(text.replace("\n", " "))
