"""Gao et al. curve fits of finished runs, as plain JSON-able dicts (ppo_summary.json, the report).

Why a layer over `core.curves`: runs store their numbers as metric rows (PPO) or result rows
(best-of-n); this module turns those rows into (d, gold), fits the matching form with intervals,
and puts the observed peak beside the predicted one, so a reader can see whether d_star is an
interpolation (inside the measured range) or an extrapolation.

Every number in the returned dicts is a float, an int or None (None for nan/inf: JSON has
neither), so they can be written as they are. A fit that cannot be made (fewer than two points
away from d = 0) returns {"form": ..., "error": "..."} instead of raising: a summary or a report
should say so, not crash.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from goodhartlab.core.curves import CurveForm, fit_uncertainty

SQRT_KL = "eval/kl/sqrt"
GOLD = "eval/reward/gold"
PROXY = "eval/reward/proxy"


def _num(x: Any) -> float | None:
    """A finite float, or None (nan, inf, missing)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _pair(ci: tuple[float, float]) -> list[float | None] | None:
    """[lo, hi] with an unbounded side as None; None when neither side is known."""
    lo, hi = (float(v) for v in ci)
    if math.isnan(lo) and math.isnan(hi):
        return None
    return [_num(lo), _num(hi)]


def fit_curve(
    form: CurveForm,
    d: np.ndarray,
    gold: np.ndarray,
    *,
    level: float = 0.95,
    method: str = "bootstrap",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit `form` to (d, gold) and return alpha, beta, d_star, peak, their intervals and r2.

    Also: `peaked` (the fitted curve turns down at a finite d_star), `d_star_in_range` (d_star
    lies within the measured d, so it is read off the data rather than extrapolated), `d_max`,
    `gold0`, `sigma` (residual std), `dof` and `n_points`.
    """
    d = np.asarray(d, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    try:
        u = fit_uncertainty(form, d, gold, level=level, method=method, n_boot=n_boot, seed=seed)  # type: ignore[arg-type]
    except ValueError as exc:
        return {"form": form, "n_points": int(d.size), "error": str(exc)}
    fit = u.fit
    peaked = fit.beta > 0 and math.isfinite(fit.d_star)
    return {
        "form": form,
        "n_points": int(d.size),
        "alpha": _num(fit.alpha),
        "beta": _num(fit.beta),
        "d_star": _num(fit.d_star),
        "peak": _num(fit.peak),
        "gold0": _num(fit.gold0),
        "r2": _num(fit.r2),
        "alpha_ci": _pair(u.alpha_ci),
        "beta_ci": _pair(u.beta_ci),
        "d_star_ci": _pair(u.d_star_ci),
        "peak_ci": _pair(u.peak_ci),
        "level": level,
        "method": method,
        "sigma": _num(u.sigma),
        "dof": u.dof,
        "peaked": bool(peaked),
        "d_max": float(d.max()) if d.size else None,
        "d_star_in_range": bool(peaked and fit.d_star <= float(d.max())),
    }


def _finite_rows(rows: Iterable[Mapping[str, Any]], keys: tuple[str, ...]) -> list[Mapping]:
    return [r for r in rows if all(_num(r.get(k)) is not None for k in keys)]


def fit_ppo_metrics(rows: Iterable[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The RL form, gold - gold0 = d (alpha - beta log d), over a PPO run's evaluation rows.

    rows: metrics.jsonl rows; those with `eval/kl/sqrt` and `eval/reward/gold` are used (d = √KL
    to the SFT policy, measured on the fixed held-out prompts; gold0 = gold at step 0, d = 0).
    Adds the observed peak (`observed_peak`, its `observed_peak_d` and `observed_peak_step`).
    kwargs go to `fit_curve` (level, method, n_boot, seed).
    """
    evals = _finite_rows(rows, (SQRT_KL, GOLD))
    d = np.array([r[SQRT_KL] for r in evals], dtype=np.float64)
    gold = np.array([r[GOLD] for r in evals], dtype=np.float64)
    return _with_observed_peak(fit_curve("rl", d, gold, **kwargs), d, gold, evals, "step")


def fit_bon_results(rows: Iterable[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The best-of-n form, gold - gold0 = d (alpha - beta d), over bon_sampled_results.json rows.

    rows: {"n", "kl_bon", "proxy_score", "gold_score"}; d = √KL_bon (KL_bon = log n - (n-1)/n,
    an upper bound on the true KL), gold0 = gold at n = 1. The points of one curve share their
    samples, so the intervals measure misfit to the form, not sampling noise.
    Adds the observed peak (`observed_peak`, `observed_peak_d`, `observed_peak_n`).
    """
    pts = _finite_rows(rows, ("kl_bon", "gold_score"))
    d = np.sqrt(np.maximum(np.array([r["kl_bon"] for r in pts], dtype=np.float64), 0.0))
    gold = np.array([r["gold_score"] for r in pts], dtype=np.float64)
    return _with_observed_peak(fit_curve("bon", d, gold, **kwargs), d, gold, pts, "n")


def _with_observed_peak(
    out: dict[str, Any], d: np.ndarray, gold: np.ndarray, rows: list, where: str
) -> dict[str, Any]:
    """Add the measured peak (`observed_peak`, its d, and its row's `where`: step or n) beside
    the fitted one, so a reader can see how far the fit's d* is from what happened."""
    if rows:
        best = int(np.argmax(gold))
        out["observed_peak"] = float(gold[best])
        out["observed_peak_d"] = float(d[best])
        out[f"observed_peak_{where}"] = rows[best].get(where)
    return out


def fitted_line(fit: Mapping[str, Any], d: np.ndarray) -> np.ndarray | None:
    """The fitted gold at distances d (for plotting), or None for a failed fit.

    Shape: d (T,) -> (T,)
    """
    from goodhartlab.core.curves import CurveFit, predict

    if fit.get("error") or fit.get("alpha") is None or fit.get("beta") is None:
        return None
    curve = CurveFit(fit["form"], fit["alpha"], fit["beta"], math.nan, math.nan, math.nan,
                     fit.get("gold0") or 0.0)  # fmt: skip
    return predict(curve, np.asarray(d, dtype=np.float64))


def n_at_kl_bon(kl: float | None) -> float | None:
    """The n whose KL_bon = log n - (n-1)/n equals `kl` (bisection; KL_bon rises with n).

    Why: a best-of-n d* is easier to act on as "pick the best of about n* samples".
    """
    if kl is None or not math.isfinite(kl) or kl < 0:
        return None
    lo, hi = 0.0, 60.0  # log n
    for _ in range(200):
        mid = (lo + hi) / 2
        n = math.exp(mid)
        if math.log(n) - (n - 1) / n < kl:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)
