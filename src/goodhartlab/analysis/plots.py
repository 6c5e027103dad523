"""Plots (matplotlib, imported lazily, Agg backend): written atomically as PNG files.

Why one module: every recipe wants the same few pictures — proxy vs gold, curves against n or
√KL — with the same look, and matplotlib must never be imported at CLI start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- the Goodhart picture (ppo plot, report) ----------------------------------------------------
# One colour per PPO method everywhere in a report; the demo's method names first.
METHOD_COLORS = {
    "none": "#d62728",
    "kl_reward": "#1f77b4",
    "sqrt_chi2_loss": "#2ca02c",
    "ensemble_uwo": "#9467bd",
    "length_penalty": "#ff7f0e",
    "inform": "#8c564b",
    "gold": "#404040",
}
_SPARE_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a")


def method_colors(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per label: known method names keep theirs, others take spare colours.

    A label such as "seed1/none" takes the colour of its last part.
    """
    out, spare = {}, iter(_SPARE_COLORS * (len(labels) // len(_SPARE_COLORS) + 1))
    for label in labels:
        known = METHOD_COLORS.get(label.rsplit("/", 1)[-1])
        out[label] = known or next(spare)
    return out


@dataclass
class GoldCurve:
    """One method's measured gold (and proxy) over x, with an optional `analysis.fits` dict."""

    label: str
    x: Sequence[float]
    gold: Sequence[float]
    proxy: Sequence[float] | None = None
    fit: Mapping[str, Any] | None = None
    color: str | None = None


def _fit_overlay(ax, c: GoldCurve, color: str, kl_axis: bool) -> list[tuple[float, float]]:
    """The fitted Gao curve (dotted) over the method's own range, and a star at its predicted
    peak with d*'s interval (when d* lies within 1.25x the measured range). Returns the (x, y)
    points drawn, for the zoomed panel's y limits."""
    from goodhartlab.analysis.fits import fitted_line

    fit = c.fit or {}
    x_max = max(c.x) if len(c.x) else 0.0
    d_max = math.sqrt(x_max) if kl_axis else x_max
    d_star = fit.get("d_star")
    near = d_star is not None and fit.get("peak") is not None and d_star <= 1.25 * d_max
    reach = d_star if near and d_star > d_max else d_max
    d = np.linspace(0.0, reach, 200)
    y = fitted_line(fit, d)
    if y is None or reach <= 0:
        return []
    x_of = (lambda v: np.asarray(v, dtype=float) ** 2) if kl_axis else np.asarray
    xs = x_of(d)
    ax.plot(xs, y, linestyle=":", linewidth=1.6, color=color, alpha=0.9)
    drawn = list(zip(xs.tolist(), y.tolist()))
    if not near:
        return drawn
    ci = fit.get("d_star_ci") or [None, None]
    lo = d_star if ci[0] is None else ci[0]
    hi = reach if ci[1] is None else min(ci[1], 1.25 * d_max)
    bar = x_of([lo, d_star, max(hi, d_star)])
    ax.errorbar([bar[1]], [fit["peak"]], xerr=[[bar[1] - bar[0]], [bar[2] - bar[1]]],
                fmt="*", markersize=13, color=color, markeredgecolor="black", markeredgewidth=0.6,
                capsize=3, elinewidth=1.2, zorder=5)  # fmt: skip
    return [*drawn, (float(bar[1]), float(fit["peak"]))]


def _limits(points: list[tuple[float, float]], x_hi: float) -> tuple[float, float] | None:
    """y limits (8% padding) of the points with x <= x_hi."""
    ys = [y for x, y in points if x <= x_hi and y is not None and math.isfinite(y)]
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def _gold_proxy_panel(ax, curves_: Sequence[GoldCurve], colors: dict[str, str], kl_axis: bool,
                      zoom: float | None, proxy_label: str | None) -> None:  # fmt: skip
    """One panel: gold (solid) on `ax`, proxy (dashed) on a twin axis; `zoom` limits x."""
    has_proxy = any(c.proxy is not None for c in curves_)
    ax2 = ax.twinx() if has_proxy else None
    gold_pts: list[tuple[float, float]] = []
    proxy_pts: list[tuple[float, float]] = []
    for c in curves_:
        color = c.color or colors[c.label]
        ax.plot(c.x, c.gold, "-o", color=color, markersize=3, linewidth=2.0)
        gold_pts += list(zip(c.x, c.gold))
        if c.proxy is not None and ax2 is not None:
            ax2.plot(c.x, c.proxy, "--", color=color, linewidth=1.3, alpha=0.85)
            proxy_pts += list(zip(c.x, c.proxy))
        if c.fit:
            gold_pts += _fit_overlay(ax, c, color, kl_axis)
    if zoom is not None:
        ax.set_xlim(0, zoom)
        for axis, pts in ((ax, gold_pts), (ax2, proxy_pts)):
            lim = _limits(pts, zoom) if axis is not None else None
            if lim:
                axis.set_ylim(*lim)
        ax.set_title(f"zoom: x ≤ {zoom:.2g}", fontsize=10)
    else:
        ax.set_xlim(left=0)
    ax.set_ylabel("gold reward (solid)")
    ax.grid(alpha=0.3)
    if ax2 is not None:
        ax2.tick_params(axis="y", colors="#555555")
        if proxy_label:
            ax2.set_ylabel(proxy_label, color="#555555")


def overoptimization(
    path: str | Path,
    curves_: Sequence[GoldCurve],
    xlabel: str,
    title: str,
    kl_axis: bool = False,
    proxy_label: str = "proxy reward (dashed)",
    size: tuple[float, float] = (9.0, 5.2),
    zoom: float | None = None,
) -> Path:
    """Gold (solid, left axis) and proxy (dashed, right axis) per method over √KL (or KL).

    Why two y axes: the proxy is in RM units and the gold in the task's, so one axis would
    squash one of them; the shape (gold turning down while proxy rises) is what matters.
    Each `fit` adds the fitted Gao curve (dotted) and its predicted peak (a star, with the
    interval of d* as an error bar). `kl_axis`: x is KL = d^2 (best-of-n), fits are in d.
    `zoom`: a second panel with x in [0, zoom] (where the peaks are, when some methods run far).
    """
    from matplotlib.lines import Line2D

    plt = _figure()
    panels = 2 if zoom is not None else 1
    width = size[0] * (1.35 if panels == 2 else 1.0)  # two narrower panels, readable text
    fig, axes = plt.subplots(1, panels, figsize=(width, size[1]), squeeze=False)
    colors = method_colors([c.label for c in curves_])
    for k, ax in enumerate(axes[0]):
        _gold_proxy_panel(ax, curves_, colors, kl_axis, zoom if k == 1 else None,
                          proxy_label if k == panels - 1 else None)  # fmt: skip
        ax.set_xlabel(xlabel)
    handles = [Line2D([], [], color=c.color or colors[c.label], linewidth=3, label=c.label)
               for c in curves_]  # fmt: skip
    style = [Line2D([], [], color="black", linewidth=2, label="gold (solid)")]
    if any(c.proxy is not None for c in curves_):
        style.append(Line2D([], [], color="black", linestyle="--", label="proxy (dashed)"))
    if any(c.fit for c in curves_):
        style.append(Line2D([], [], color="black", linestyle=":", label="Gao fit (dotted)"))
        style.append(Line2D([], [], color="gray", marker="*", markersize=11, linestyle="none",
                            markeredgecolor="black", label="fitted peak d* ± CI"))  # fmt: skip
    fig.suptitle(title)
    items = handles + style
    ncol = min(8 if panels == 2 else 6, len(items))
    fig.legend(handles=items, loc="lower center", ncol=ncol, frameon=False,
               bbox_to_anchor=(0.5, -0.01), fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(items) - 1) // ncol), 1, 1))
    return _save(fig, path)


@dataclass
class Line:
    """A named line with optional interval band (lo, hi) and style for `lines`."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    lo: Sequence[float] | None = None
    hi: Sequence[float] | None = None
    color: str | None = None
    style: str = "-o"


def lines(
    path: str | Path,
    series: Sequence[Line],
    xlabel: str,
    ylabel: str,
    title: str,
    xscale: str = "linear",
    size: tuple[float, float] = (7.0, 4.2),
) -> Path:
    """Named lines over x, each with its band (e.g. a 95% interval over seeds) when given.

    xscale: "linear", "log" or "symlog" (symlog keeps a coefficient of 0 on a log-like axis).
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=size)
    colors = method_colors([s.label for s in series])
    for s in series:
        color = s.color or colors[s.label]
        ax.plot(s.x, s.y, s.style, color=color, markersize=4, linewidth=1.8, label=s.label)
        if s.lo is not None and s.hi is not None:
            ax.fill_between(s.x, s.lo, s.hi, color=color, alpha=0.18, linewidth=0)
    if xscale == "symlog":
        positive = [v for s in series for v in s.x if v > 0]
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    elif xscale != "linear":
        ax.set_xscale(xscale)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=9, frameon=False, loc="best")
    return _save(fig, path)


def length_arrows(
    path: str | Path,
    bins_by_method: Mapping[str, Sequence[Any]],
    ylabel: str,
    title: str,
    size: tuple[float, float] = (7.0, 4.2),
) -> Path:
    """The length paper's arrow plot: per length bin, start-policy mean reward -> final one.

    bins_by_method: `analysis.length.LengthBin`s per method; arrow opacity grows with the bin's
    sample count, and only bins with samples on both sides are drawn.
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=size)
    colors = method_colors(list(bins_by_method))
    k = len(bins_by_method)
    for j, (label, bins) in enumerate(bins_by_method.items()):
        shared = [b for b in bins if b.n_before and b.n_after]
        total = max((b.n_before + b.n_after for b in shared), default=1)
        offset = (j - (k - 1) / 2) * min(0.25, 0.8 / max(k, 1))  # methods side by side
        for b in shared:
            mid = (b.lo + b.hi - 1) / 2 + offset * (b.hi - b.lo)
            alpha = 0.25 + 0.75 * (b.n_before + b.n_after) / total
            ax.annotate("", xy=(mid, b.mean_after), xytext=(mid, b.mean_before),
                        arrowprops={"arrowstyle": "->", "color": colors[label], "alpha": alpha,
                                    "linewidth": 1.6})  # fmt: skip
            ax.plot([mid], [b.mean_before], "o", color=colors[label], alpha=alpha, markersize=3)
            ax.plot([mid], [b.mean_after], linestyle="none")  # arrows do not autoscale the axes
        ax.plot([], [], color=colors[label], label=label)
    ax.set(xlabel="response length (tokens)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.autoscale_view()
    ax.legend(fontsize=9, frameon=False)
    return _save(fig, path)
