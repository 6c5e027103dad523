"""Progress bars for long work (rich), quiet when output is not a terminal.

Why quiet off a terminal: CI logs and piped output fill with redraws otherwise; there a line
every few percent is printed instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """Yield `advance(n=1, **fields)`; shows a rich bar on a TTY, sparse lines otherwise."""
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        with Progress(*columns, transient=False) as prog:
            task = prog.add_task(description, total=total, info="")

            def advance(n: int = 1, info: str = "") -> None:
                prog.update(task, advance=n, info=info)

            yield advance
        return
    state = {"done": 0, "next": 0.1}

    def advance_plain(n: int = 1, info: str = "") -> None:
        state["done"] += n
        frac = state["done"] / max(total, 1)
        if frac >= state["next"] or state["done"] == total:
            print(f"{description}: {state['done']}/{total} {info}", file=sys.stderr, flush=True)
            while state["next"] <= frac:
                state["next"] += 0.1

    yield advance_plain
