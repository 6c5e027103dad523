"""Progress bars for long work (rich), quiet when output is not a terminal.

Why quiet off a terminal: CI logs and piped output fill with redraws otherwise; there a line
every few percent is printed instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Set while a `stage_progress` display is live: rich allows one live display at a time, so a
# recipe's own bar inside a demo stage stays silent and the stage bar speaks for it.
_LIVE: dict[str, bool] = {"active": False}


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """Yield `advance(n=1, **fields)`; shows a rich bar on a TTY, sparse lines otherwise.
    Several processes (runs.distributed): rank 0 shows it, the others stay quiet."""
    from goodhartlab.runs.distributed import is_main_process

    if _LIVE["active"] or not is_main_process():
        yield lambda n=1, info="": None
        return
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


class StageBar:
    """One overall bar over weighted stages plus a bar of the current stage.

    Why weights: stages differ in length by 10x (SFT vs all PPO runs); an overall bar that moved
    one step per stage would say nothing about the time left.
    """

    def __init__(self, description: str, weights: dict[str, float], live: Any | None) -> None:
        self.description = description
        self.weights = weights
        self.live = live
        self.start = time.perf_counter()
        self.overall = (
            live.add_task(description, total=sum(weights.values()), info="") if live else None
        )

    def _say(self, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        if self.live is None:
            print(f"{self.description} [{elapsed:5.0f} s] {text}", file=sys.stderr, flush=True)
        else:
            self.live.console.print(f"[dim]{elapsed:5.0f} s[/] {text}")

    def skip(self, name: str) -> None:
        """A stage finished by an earlier run (--resume)."""
        if self.live is not None:
            self.live.update(self.overall, advance=self.weights[name])
        self._say(f"{name}: finished earlier, skipped")

    @contextmanager
    def stage(self, name: str) -> Iterator[Callable[[float, str], None]]:
        """Yield `advance(fraction, info)`; fractions of this stage add up to 1."""
        weight, tic = self.weights[name], time.perf_counter()
        task = None
        if self.live is not None:
            task = self.live.add_task(f"  {name}", total=1.0, info="")
            self.live.update(self.overall, info=name)
        done = {"fraction": 0.0}
        self._say(f"{name}: started")

        def advance(fraction: float, info: str = "") -> None:
            fraction = min(fraction, 1.0 - done["fraction"])
            done["fraction"] += fraction
            if self.live is not None:
                self.live.update(task, advance=fraction, info=info)
                self.live.update(self.overall, advance=weight * fraction, info=name)
            if info:
                self._say(f"{name}: {info}")

        yield advance
        advance(1.0 - done["fraction"])
        if self.live is not None:
            self.live.remove_task(task)
        self._say(f"{name}: done in {time.perf_counter() - tic:.0f} s")


@contextmanager
def stage_progress(description: str, weights: dict[str, float]) -> Iterator[StageBar]:
    """A `StageBar` drawn with rich on a TTY; plain timestamped lines otherwise."""
    if not sys.stderr.isatty():
        yield StageBar(description, weights, None)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, transient=False) as live:
        _LIVE["active"] = True
        try:
            yield StageBar(description, weights, live)
        finally:
            _LIVE["active"] = False
