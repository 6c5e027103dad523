"""Plots (matplotlib, imported lazily, Agg backend): written atomically as PNG files.

Why one module: every recipe wants the same few pictures — proxy vs gold, curves against n or
√KL — with the same look, and matplotlib must never be imported at CLI start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Save via a temp file + rename so a killed run leaves no half-written PNG."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    _figure().close(fig)
    return path


def scatter(
    path: str | Path, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str
) -> Path:
    """A scatter plot with the Pearson r in the title."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x, y, s=6, alpha=0.4)
    r = np.corrcoef(x, y)[0, 1] if np.std(x) > 0 and np.std(y) > 0 else float("nan")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title} (r = {r:.2f})")
    return _save(fig, path)


def curves(
    path: str | Path,
    x: Sequence[float] | np.ndarray,
    series: Mapping[str, Sequence[float] | np.ndarray],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> Path:
    """Several named curves over a shared x axis."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", markersize=3, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
