"""Shared timing for the benchmarks: interleaved repeats, min and median, peak RSS.

Why interleaved: on a shared, noisy machine a burst of load that hits one side's block of
repeats fakes (or hides) a speed-up; alternating the sides (and which goes first) spreads the
noise over both. The min is the least disturbed run, the median the typical one: a result that
holds in both is not an artefact of one lucky or unlucky repeat.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def interleaved(
    runs: Mapping[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Run every side `repeats` times, alternating the order per repeat.

    Returns (seconds per side, each side's last result).
    """
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, object] = {}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)
    return times, results


def print_table(
    times: Mapping[str, list[float]],
    work: Mapping[str, object],
    unit: str,
    rss: Mapping[str, float] | None = None,
) -> None:
    """min / median seconds, `unit`/s at both, and the peak RSS after each side's warm-up."""
    header = f"{'side':<20}{unit:>9}{'min s':>9}{'median s':>10}{unit + '/s (min)':>16}"
    print(header + f"{unit + '/s (med)':>16}" + ("   peak RSS MB" if rss else ""))
    for name, seconds in times.items():
        n = float(work[name])  # type: ignore[arg-type]
        best, med = min(seconds), statistics.median(seconds)
        line = f"{name:<20}{n:>9.0f}{best:>9.3f}{med:>10.3f}{n / best:>16.5g}{n / med:>16.5g}"
        print(line + (f"{rss[name]:>14.0f}" if rss else ""))
