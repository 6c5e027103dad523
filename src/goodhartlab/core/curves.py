"""Fits of gold reward against d = sqrt(KL) in the functional forms of Gao et al. (2022).

Why: a fitted curve turns a noisy gold-vs-KL series into two comparable numbers, where gold
peaks (d_star) and how high (peak), so mitigations can be ranked by "how high and how late".
With R = gold - gold0:

    best-of-n:  R_bon(d) = d (alpha - beta d)
    RL:         R_rl(d)  = d (alpha - beta log d)

Both are linear in (alpha, beta), so an ordinary least-squares solve fits them exactly; no
iterative optimiser, no starting values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

CurveForm = Literal["bon", "rl"]
CURVE_FORMS = ("bon", "rl")


@dataclass(frozen=True)
class CurveFit:
    """A fitted gold curve. `peak` and `predict` are in gold units (gold0 added back)."""

    form: CurveForm
    alpha: float
    beta: float
    d_star: float
    peak: float
    r2: float
    gold0: float = 0.0


def _basis(form: str, d: np.ndarray) -> np.ndarray:
    """Columns multiplying (alpha, beta): [d, -d^2] or [d, -d log d] (d log d -> 0 at d = 0).

    Shape: d (T,) -> (T, 2)
    """
    if form == "bon":
        second = d * d
    elif form == "rl":
        second = np.zeros_like(d)
        pos = d > 0
        second[pos] = d[pos] * np.log(d[pos])
    else:
        raise ValueError(f"unknown curve form {form!r}; allowed: {', '.join(CURVE_FORMS)}")
    return np.stack([d, -second], axis=1)


def _turning_point(form: str, alpha: float, beta: float) -> tuple[float, float]:
    """(d_star, R(d_star)) for the fitted form on d >= 0; see `fit_bon` for the edge cases."""
    if beta > 0:
        if form == "bon":
            d_star = max(alpha / (2.0 * beta), 0.0)
            return d_star, d_star * (alpha - beta * d_star)
        d_star = math.exp(alpha / beta - 1.0)
        return d_star, beta * d_star
    if beta < 0 or alpha > 0:
        return math.inf, math.inf
    return math.nan, math.nan


def _fit(form: str, d: np.ndarray, gold: np.ndarray, gold0: float | None) -> CurveFit:
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    gold = np.asarray(gold, dtype=np.float64).reshape(-1)
    if d.shape != gold.shape:
        raise ValueError(f"d has {d.size} points but gold has {gold.size}")
    if not (np.isfinite(d).all() and np.isfinite(gold).all()):
        raise ValueError("d and gold must be finite (no NaN/inf)")
    if np.any(d < 0):
        raise ValueError("d = sqrt(KL) must be >= 0")
    if np.count_nonzero(d > 0) < 2:
        raise ValueError("need at least two points with d > 0 to fit alpha and beta")
    if gold0 is None:
        at_zero = d == 0
        gold0 = float(gold[at_zero].mean()) if at_zero.any() else 0.0
    target = gold - gold0
    basis = _basis(form, d)
    (alpha, beta), *_ = np.linalg.lstsq(basis, target, rcond=None)
    residual = target - basis @ np.array([alpha, beta])
    total = float(np.sum((target - target.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else math.nan
    d_star, rise = _turning_point(form, float(alpha), float(beta))
    return CurveFit(form, float(alpha), float(beta), d_star, gold0 + rise, r2, float(gold0))


def fit_bon(d: np.ndarray, gold: np.ndarray, gold0: float | None = None) -> CurveFit:
    """Least-squares fit of gold - gold0 = d (alpha - beta d), the best-of-n form.

    Why: Gao et al.'s best-of-n scaling law; d_star = alpha / (2 beta) is where gold peaks,
    peak = gold0 + alpha^2 / (4 beta). gold0 defaults to the mean gold at d = 0 (n = 1) when such
    points exist, else 0.

    Edge cases: d_star is clamped to 0 when alpha < 0 < beta (gold falls from the start).
    When beta <= 0 the fitted curve has no maximum: d_star = peak = inf if it grows without
    bound (beta < 0, or beta = 0 and alpha > 0), and nan if beta = 0 and alpha <= 0.
    r2 is nan when gold - gold0 is constant.

    Shape: d (T,), gold (T,) -> CurveFit of scalars
    """
    return _fit("bon", d, gold, gold0)


def fit_rl(d: np.ndarray, gold: np.ndarray, gold0: float | None = None) -> CurveFit:
    """Least-squares fit of gold - gold0 = d (alpha - beta log d), the RL form.

    Why: Gao et al.'s RL scaling law; d_star = exp(alpha / beta - 1) is where gold peaks,
    peak = gold0 + beta d_star. gold0 as in `fit_bon`.

    Edge cases: when beta <= 0 the fitted curve has no maximum: d_star = peak = inf if it grows
    without bound (beta < 0, or beta = 0 and alpha > 0), and nan if beta = 0 and alpha <= 0.

    Shape: d (T,), gold (T,) -> CurveFit of scalars
    """
    return _fit("rl", d, gold, gold0)


def predict(fit: CurveFit, d: np.ndarray | float) -> np.ndarray:
    """Fitted gold at distance(s) d, in gold units (gold0 + R(d)).

    Why: to draw the fitted curve over the measured points and read off values between them.

    Shape: d (...) -> (...) float64
    """
    d_arr = np.asarray(d, dtype=np.float64)
    if np.any(d_arr < 0):
        raise ValueError("d = sqrt(KL) must be >= 0")
    basis = _basis(fit.form, d_arr.reshape(-1))
    return (fit.gold0 + basis @ np.array([fit.alpha, fit.beta])).reshape(d_arr.shape)
