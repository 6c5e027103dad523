"""Fits of gold reward against d = sqrt(KL) in the functional forms of Gao et al. (2022).

Why: a fitted curve turns a noisy gold-vs-KL series into two comparable numbers, where gold
peaks (d_star) and how high (peak), so mitigations can be ranked by "how high and how late".
With R = gold - gold0:

    best-of-n:  R_bon(d) = d (alpha - beta d)
    RL:         R_rl(d)  = d (alpha - beta log d)

Both are linear in (alpha, beta), so an ordinary least-squares solve fits them exactly; no
iterative optimiser, no starting values.

Uncertainty (`fit_uncertainty`): a fitted d_star means little without its error bar, and a run
that has not yet turned down has a d_star far beyond the data with a huge interval. Two routes:
the least-squares covariance of (alpha, beta) (which also carries the noise of gold0, the mean
gold at d = 0) with the delta method for d_star and peak, and a seeded residual bootstrap whose
percentile intervals stay honest when d_star is a strongly nonlinear function of (alpha, beta)
(e.g. beta near 0 gives d_star = inf in some replicates, so the upper bound is inf).
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


def _checked(d: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    return d, gold


def _fit(form: str, d: np.ndarray, gold: np.ndarray, gold0: float | None) -> CurveFit:
    d, gold = _checked(d, gold)
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


# --- uncertainty ------------------------------------------------------------------------------
UncertaintyMethod = Literal["bootstrap", "delta"]


@dataclass(frozen=True)
class CurveUncertainty:
    """A fit with error bars: least-squares covariance of (alpha, beta) and intervals at `level`.

    `cov` is the 3 x 3 covariance of (gold0, alpha, beta) (see `ls_covariance`). Intervals are
    (lo, hi) tuples; an unbounded side is inf (d_star beyond reach in some bootstrap replicates)
    and nan means "not estimable" (no residual degrees of freedom).
    """

    fit: CurveFit
    method: UncertaintyMethod
    level: float
    cov: tuple[tuple[float, ...], ...]
    sigma: float
    dof: int
    alpha_ci: tuple[float, float]
    beta_ci: tuple[float, float]
    d_star_ci: tuple[float, float]
    peak_ci: tuple[float, float]
    n_boot: int = 0

    @property
    def alpha_se(self) -> float:
        return math.sqrt(self.cov[1][1]) if math.isfinite(self.cov[1][1]) else math.nan

    @property
    def beta_se(self) -> float:
        return math.sqrt(self.cov[2][2]) if math.isfinite(self.cov[2][2]) else math.nan


def t_quantile(p: float, dof: int) -> float:
    """Student-t quantile: exact for dof 1 and 2, Cornish-Fisher (A&S 26.7.5) for dof >= 3.

    Why not scipy: core stays numpy-only. The expansion is within 0.2% of the exact quantile at
    p = 0.975 for dof >= 3 and within 1e-5 for dof >= 8; too many dof-s to matter, it is normal.

    Shape: scalars -> scalar
    """
    from statistics import NormalDist

    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


def ls_covariance(
    form: CurveForm, d: np.ndarray, gold: np.ndarray, fit: CurveFit, gold0_estimated: bool
) -> tuple[np.ndarray, float, int, np.ndarray]:
    """Covariance of (gold0, alpha, beta), residual sigma, degrees of freedom and residuals.

    Why gold0 is in it: gold0 is the mean of the n0 points at d = 0 and is subtracted before the
    solve, so its noise moves alpha and beta too, and the peak (gold0 + R*) carries it twice.
    With X the basis (zero rows at d = 0), G = X^T X and v = G^-1 X^T 1, the estimates are
    gold0 = mean(gold at d = 0) and theta = G^-1 X^T (gold - gold0), so
    Var(gold0) = s^2 / n0, Cov(gold0, theta) = -s^2 v / n0, Cov(theta) = s^2 (G^-1 + v v^T / n0),
    dof = T - 3. With gold0 given (or fixed at 0 for lack of d = 0 points) its row and column are
    0, Cov(theta) = s^2 G^-1 and dof = T - 2. s^2 = sum(residual^2) / dof (nan when dof <= 0).

    Shape: d (T,), gold (T,) -> cov (3, 3), scalar, int, residuals (T,)
    """
    d, gold = _checked(d, gold)
    basis = _basis(form, d)
    gram_inv = np.linalg.pinv(basis.T @ basis)
    resid = gold - fit.gold0 - basis @ np.array([fit.alpha, fit.beta])
    dof = d.size - 2 - int(gold0_estimated)
    sigma2 = float(np.sum(resid**2)) / dof if dof > 0 else math.nan
    unit = np.zeros((3, 3))
    unit[1:, 1:] = gram_inv
    if gold0_estimated:
        n0 = int(np.count_nonzero(d == 0))
        v = gram_inv @ basis.sum(axis=0)
        unit[0, 0] = 1.0 / n0
        unit[0, 1:] = unit[1:, 0] = -v / n0
        unit[1:, 1:] += np.outer(v, v) / n0
    return sigma2 * unit, math.sqrt(sigma2), dof, resid


def turning_points(form: CurveForm, alpha: np.ndarray, beta: np.ndarray):
    """Vectorized `_turning_point`: (d_star, R(d_star)) per (alpha, beta) pair; same edge cases.

    Shape: alpha, beta (B,) -> (B,), (B,)
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    d_star = np.full(alpha.shape, math.nan)
    rise = np.full(alpha.shape, math.nan)
    pos = beta > 0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if form == "bon":
            d_star[pos] = np.maximum(alpha[pos] / (2.0 * beta[pos]), 0.0)
            rise[pos] = d_star[pos] * (alpha[pos] - beta[pos] * d_star[pos])
        else:
            d_star[pos] = np.exp(alpha[pos] / beta[pos] - 1.0)
            rise[pos] = beta[pos] * d_star[pos]
    unbounded = (beta < 0) | ((beta == 0) & (alpha > 0))
    d_star[unbounded] = math.inf
    rise[unbounded] = math.inf
    return d_star, rise


def _delta_intervals(form: str, fit: CurveFit, cov: np.ndarray, q: float) -> dict:
    """theta +- q se; delta method for d_star (log scale for RL) and for peak = gold0 + R*.

    Shape: cov (3, 3) over (gold0, alpha, beta) -> {name: (lo, hi)}
    """
    a, b = fit.alpha, fit.beta
    se = np.sqrt(np.diag(cov))
    out = {"alpha": (a - q * se[1], a + q * se[1]), "beta": (b - q * se[2], b + q * se[2])}
    if not (b > 0 and math.isfinite(fit.d_star)):
        out["d_star"] = out["peak"] = (math.nan, math.nan)
        return out
    if form == "bon":
        grad_d = np.array([0.0, 1.0 / (2 * b), -a / (2 * b * b)])
        grad_p = np.array([1.0, a / (2 * b), -(a * a) / (4 * b * b)])
        if fit.d_star == 0.0:  # clamped: gold falls from the start, the peak is gold0 itself
            grad_d, grad_p = np.zeros(3), np.array([1.0, 0.0, 0.0])
        half = q * math.sqrt(max(grad_d @ cov @ grad_d, 0.0))
        out["d_star"] = (max(fit.d_star - half, 0.0), fit.d_star + half)
    else:
        grad_log = np.array([0.0, 1.0 / b, -a / (b * b)])  # log d_star = alpha / beta - 1
        half = q * math.sqrt(max(grad_log @ cov @ grad_log, 0.0))
        out["d_star"] = (fit.d_star * math.exp(-half), fit.d_star * math.exp(half))
        grad_p = np.array([1.0, fit.d_star, fit.d_star * (1.0 - a / b)])  # beta e^(a/b - 1)
    half_p = q * math.sqrt(max(grad_p @ cov @ grad_p, 0.0))
    out["peak"] = (fit.peak - half_p, fit.peak + half_p)
    return out


def _bootstrap_intervals(
    form: CurveForm, d: np.ndarray, fit: CurveFit, resid: np.ndarray, dof: int,
    gold0_estimated: bool, level: float, n_boot: int, seed: int,
) -> dict:  # fmt: skip
    """Residual bootstrap: refit on fitted + resampled (centred, dof-rescaled) residuals.

    Why rescale by sqrt(T / dof): raw least-squares residuals are smaller than the noise; without
    it the intervals come out too narrow for the handful of points a PPO run has.
    """
    basis = _basis(form, d)
    fitted = fit.gold0 + basis @ np.array([fit.alpha, fit.beta])
    pool = (resid - resid.mean()) * math.sqrt(d.size / dof)
    rng = np.random.default_rng(seed)
    y = fitted[None, :] + pool[rng.integers(0, d.size, size=(n_boot, d.size))]  # (B, T)
    at_zero = d == 0
    gold0 = y[:, at_zero].mean(axis=1) if gold0_estimated else np.full(n_boot, fit.gold0)
    theta = (y - gold0[:, None]) @ np.linalg.pinv(basis).T  # (B, 2)
    d_star, rise = turning_points(form, theta[:, 0], theta[:, 1])
    lo_q, hi_q = (1.0 - level) / 2.0, (1.0 + level) / 2.0

    def interval(x: np.ndarray) -> tuple[float, float]:
        x = x[~np.isnan(x)]
        if x.size == 0:
            return (math.nan, math.nan)
        return float(np.quantile(x, lo_q, method="lower")), float(
            np.quantile(x, hi_q, method="higher")
        )

    return {
        "alpha": interval(theta[:, 0]),
        "beta": interval(theta[:, 1]),
        "d_star": interval(d_star),
        "peak": interval(gold0 + rise),
    }


def fit_uncertainty(
    form: CurveForm,
    d: np.ndarray,
    gold: np.ndarray,
    gold0: float | None = None,
    *,
    level: float = 0.95,
    method: UncertaintyMethod = "bootstrap",
    n_boot: int = 2000,
    seed: int = 0,
) -> CurveUncertainty:
    """Fit `form` ("bon" or "rl") and give intervals for alpha, beta, d_star and peak.

    Why two methods: "delta" is closed-form (t quantiles on alpha and beta, which are exact for
    Gaussian noise; first-order for d_star, on the log scale for RL so the interval stays > 0),
    "bootstrap" (residual bootstrap, percentile intervals, seeded) copes with the strongly
    nonlinear d_star when beta is small. Both assume independent, equal-variance noise across
    points: true of PPO evaluations on fixed prompts, not of a best-of-n curve (its points come
    from the same samples), where the intervals measure misfit only. With no residual degrees of
    freedom every interval is (nan, nan).

    Shape: d (T,), gold (T,) -> CurveUncertainty of scalars
    """
    if form not in CURVE_FORMS:
        raise ValueError(f"unknown curve form {form!r}; allowed: {', '.join(CURVE_FORMS)}")
    if method not in ("bootstrap", "delta"):
        raise ValueError(f"unknown method {method!r}; allowed: bootstrap, delta")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d, gold = _checked(d, gold)
    fit = _fit(form, d, gold, gold0)
    estimated = gold0 is None and bool(np.any(d == 0))
    cov, sigma, dof, resid = ls_covariance(form, d, gold, fit, estimated)
    nan2 = (math.nan, math.nan)
    if dof <= 0:
        intervals = dict.fromkeys(("alpha", "beta", "d_star", "peak"), nan2)
    elif method == "delta":
        intervals = _delta_intervals(form, fit, cov, t_quantile((1.0 + level) / 2.0, dof))
    else:
        intervals = _bootstrap_intervals(form, d, fit, resid, dof, estimated, level, n_boot, seed)
    cov_t = tuple(tuple(float(x) for x in row) for row in cov)
    return CurveUncertainty(
        fit, method, level, cov_t, sigma, dof, intervals["alpha"], intervals["beta"],
        intervals["d_star"], intervals["peak"], n_boot if method == "bootstrap" else 0,
    )  # fmt: skip
