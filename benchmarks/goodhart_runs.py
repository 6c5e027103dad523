"""`goodhart` commands run by the results scripts: one subprocess each, reused and resumed.

Why one helper: a results table is tens of runs that take minutes each; a rebuilt or extended
table must reuse the runs whose summary exists and continue a killed one (`--resume` when its
run dir has a config), not start them again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

GOODHART = [sys.executable, "-m", "goodhartlab"]


def was_started(out: Path) -> bool:
    """Whether a killed run left this run dir (it has its config): continue it, do not refuse it."""
    return (out / "config.yaml").exists()


def resume_flag(out: Path) -> list[str]:
    """`--resume` for a run dir a killed run left, else nothing."""
    return ["--resume"] if was_started(out) else []


def run_goodhart(
    args: list[str], out: Path, summary: str, env: dict[str, str] | None = None
) -> tuple[dict, float]:
    """(OUT/summary, wall seconds) of `goodhart ARGS --out OUT`; NaN seconds when reused."""
    path = out / summary
    if path.exists():
        return json.loads(path.read_text()), float("nan")
    start = time.perf_counter()
    cmd = [*GOODHART, *args, "--out", str(out), *resume_flag(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(path.read_text()), time.perf_counter() - start
