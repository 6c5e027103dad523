"""Gao et al. curve fits: known parameters from synthetic data, hand-computed covariances, and
intervals that cover the truth at about their nominal rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from goodhartlab.core.best_of_n import kl_bon
from goodhartlab.core.curves import (
    fit_bon,
    fit_rl,
    fit_uncertainty,
    ls_covariance,
    predict,
    t_quantile,
    turning_points,
)

SEED_SAMPLE_NS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 6144, 8192, 12500]


def test_fit_bon_recovers_parameters() -> None:
    d = np.sqrt(kl_bon(SEED_SAMPLE_NS))  # d[0] = 0 (n = 1), so gold0 is read from it
    gold = 1.0 + d * (2.0 - 0.5 * d)
    fit = fit_bon(d, gold)
    assert fit.form == "bon"
    assert fit.alpha == pytest.approx(2.0, abs=1e-10)
    assert fit.beta == pytest.approx(0.5, abs=1e-10)
    assert fit.gold0 == 1.0
    assert fit.d_star == pytest.approx(2.0, abs=1e-9)  # alpha / (2 beta)
    assert fit.peak == pytest.approx(3.0, abs=1e-9)  # gold0 + alpha^2 / (4 beta)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(predict(fit, d), gold, atol=1e-10)
    assert predict(fit, fit.d_star) == pytest.approx(fit.peak, abs=1e-12)


def test_fit_rl_recovers_parameters() -> None:
    d = np.linspace(0.0, 6.0, 25)
    d_log_d = np.zeros_like(d)
    d_log_d[1:] = d[1:] * np.log(d[1:])
    gold = -0.3 + 1.0 * d - 0.5 * d_log_d
    fit = fit_rl(d, gold)
    assert fit.alpha == pytest.approx(1.0, abs=1e-10)
    assert fit.beta == pytest.approx(0.5, abs=1e-10)
    assert fit.gold0 == pytest.approx(-0.3)
    assert fit.d_star == pytest.approx(math.e, rel=1e-9)  # exp(alpha / beta - 1)
    assert fit.peak == pytest.approx(-0.3 + 0.5 * math.e, rel=1e-9)  # gold0 + beta d_star
    np.testing.assert_allclose(predict(fit, d), gold, atol=1e-10)


def test_gold0_without_zero_point_and_explicit() -> None:
    d = np.array([0.5, 1.0, 2.0, 3.0])
    rise = d * (1.0 - 0.25 * d)
    assert fit_bon(d, rise).gold0 == 0.0
    fit = fit_bon(d, rise + 7.0, gold0=7.0)
    assert (fit.alpha, fit.beta) == pytest.approx((1.0, 0.25), abs=1e-10)
    assert fit.peak == pytest.approx(8.0, abs=1e-10)


def test_r2_of_a_noisy_fit_is_below_one() -> None:
    d = np.linspace(0.1, 3.0, 40)
    noise = np.random.default_rng(0).normal(0.0, 0.05, d.shape)
    fit = fit_bon(d, d * (1.0 - 0.3 * d) + noise)
    assert 0.5 < fit.r2 < 1.0
    assert fit.alpha == pytest.approx(1.0, abs=0.1)


def test_no_turning_point() -> None:
    d = np.array([0.0, 1.0, 2.0, 3.0])
    growing = fit_bon(d, d + 0.2 * d**2)  # beta = -0.2
    assert growing.beta < 0
    assert growing.d_star == math.inf and growing.peak == math.inf
    flat = fit_rl(d, np.zeros(4))  # alpha = beta = 0
    assert math.isnan(flat.d_star) and math.isnan(flat.peak) and math.isnan(flat.r2)
    falling = fit_bon(d, -d - 0.5 * d**2)  # alpha < 0 < beta: best at d = 0
    assert falling.d_star == 0.0 and falling.peak == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="points"):
        fit_bon([0.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=">= 0"):
        fit_rl([-1.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        fit_bon([0.0, 1.0, 2.0], [0.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="two points"):
        fit_bon([0.0, 0.0, 1.0], [0.0, 0.0, 1.0])


# --- uncertainty ------------------------------------------------------------------------------


def test_t_quantile_against_tables() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)  # exact: tan(pi (p - 1/2))
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)  # exact closed form
    assert t_quantile(0.975, 5) == pytest.approx(2.5706, rel=2e-3)
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, rel=1e-5)
    assert t_quantile(0.95, 30) == pytest.approx(1.697261, rel=1e-5)
    assert t_quantile(0.025, 10) == pytest.approx(-2.228139, rel=1e-5)


# Hand example: d = 1, 2, 3 (bon basis [d, -d^2]); gold = d (1 - d/4) + 0.1 (3, -3, 1), the
# residual vector chosen orthogonal to both basis columns, so the fit is exactly alpha = 1,
# beta = 1/4 and RSS = 0.01 * 19 = 0.19 on dof = 1. X^T X = [[14, -36], [-36, 98]], det 76.
HAND_D = np.array([1.0, 2.0, 3.0])
HAND_GOLD = HAND_D * (1.0 - 0.25 * HAND_D) + 0.1 * np.array([3.0, -3.0, 1.0])
HAND_GRAM_INV = np.array([[98.0, 36.0], [36.0, 14.0]]) / 76.0


def test_ls_covariance_hand_computed_gold0_given() -> None:
    fit = fit_bon(HAND_D, HAND_GOLD, gold0=0.0)
    assert (fit.alpha, fit.beta) == pytest.approx((1.0, 0.25), abs=1e-12)
    cov, sigma, dof, resid = ls_covariance("bon", HAND_D, HAND_GOLD, fit, gold0_estimated=False)
    assert dof == 1 and sigma == pytest.approx(math.sqrt(0.19))
    np.testing.assert_allclose(resid, [0.3, -0.3, 0.1], atol=1e-12)
    expected = np.zeros((3, 3))
    expected[1:, 1:] = 0.19 * HAND_GRAM_INV  # = [[0.245, 0.09], [0.09, 0.035]]
    np.testing.assert_allclose(cov, expected, atol=1e-12)
    u = fit_uncertainty("bon", HAND_D, HAND_GOLD, gold0=0.0, method="delta")
    assert u.alpha_se == pytest.approx(math.sqrt(0.245)) and u.beta_se == pytest.approx(0.035**0.5)
    q = 12.706204736  # t(0.975, 1)
    assert u.alpha_ci == pytest.approx((1 - q * 0.245**0.5, 1 + q * 0.245**0.5))
    # d* = a / 2b = 2, gradient (1/2b, -a/2b^2) = (2, -8): var = 4(.245) - 32(.09) + 64(.035) = .34
    assert u.d_star_ci == pytest.approx((0.0, 2 + q * 0.34**0.5))  # lower side clamped at 0
    # peak = a^2 / 4b = 1, gradient (a/2b, -a^2/4b^2) = (2, -4): var = .98 - 1.44 + .56 = 0.1
    assert u.peak_ci == pytest.approx((1 - q * 0.1**0.5, 1 + q * 0.1**0.5))


def test_ls_covariance_hand_computed_gold0_estimated() -> None:
    # The same points plus one at d = 0 with gold 0: the same fit, one more parameter (gold0),
    # and v = G^-1 X^T 1 = G^-1 (6, -14) = (84, 20) / 76 couples gold0's noise into alpha, beta.
    d = np.concatenate([[0.0], HAND_D])
    gold = np.concatenate([[0.0], HAND_GOLD])
    fit = fit_bon(d, gold)
    cov, _, dof, _ = ls_covariance("bon", d, gold, fit, gold0_estimated=True)
    assert dof == 1  # 4 points - gold0, alpha, beta
    v = np.array([84.0, 20.0]) / 76.0
    np.testing.assert_allclose(cov[0, 0], 0.19)  # sigma^2 / n0
    np.testing.assert_allclose(cov[0, 1:], -0.19 * v, atol=1e-12)
    np.testing.assert_allclose(cov[1:, 1:], 0.19 * (HAND_GRAM_INV + np.outer(v, v)), atol=1e-12)


def test_turning_points_vectorized_matches_edge_cases() -> None:
    d_star, rise = turning_points(
        "bon", np.array([1.0, -1.0, 1.0, 0.0]), np.array([0.25, 1.0, -1.0, 0.0])
    )
    np.testing.assert_allclose(d_star[:2], [2.0, 0.0])
    np.testing.assert_allclose(rise[:2], [1.0, 0.0])
    assert d_star[2] == math.inf and rise[2] == math.inf and math.isnan(d_star[3])
    d_star, rise = turning_points("rl", np.array([1.0]), np.array([0.5]))
    assert d_star[0] == pytest.approx(math.e) and rise[0] == pytest.approx(0.5 * math.e)


ALPHA, BETA_RL, BETA_BON, GOLD0 = 1.0, 0.4, 0.25, 1.5
D_STAR_RL, D_STAR_BON = math.exp(ALPHA / BETA_RL - 1.0), ALPHA / (2 * BETA_BON)


def _rl_data(rng: np.random.Generator, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """30 PPO-like evaluations over sqrt KL 0..8, true d* = e^1.5 = 4.48 inside the range."""
    d = np.linspace(0.0, 8.0, 30)
    d_log_d = np.zeros_like(d)
    d_log_d[1:] = d[1:] * np.log(d[1:])
    return d, GOLD0 + ALPHA * d - BETA_RL * d_log_d + rng.normal(0.0, sigma, d.size)


def _bon_data(rng: np.random.Generator, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """16 points over d 0..3.5, true d* = 2."""
    d = np.linspace(0.0, 3.5, 16)
    return d, GOLD0 + d * (ALPHA - BETA_BON * d) + rng.normal(0.0, sigma, d.size)


@pytest.mark.parametrize("form", ["rl", "bon"])
def test_noisy_fit_recovers_parameters_within_5_percent(form: str) -> None:
    rng = np.random.default_rng(3)
    d, gold = (_rl_data if form == "rl" else _bon_data)(rng, sigma=0.01)
    u = fit_uncertainty(form, d, gold, seed=0)
    beta, d_star = (BETA_RL, D_STAR_RL) if form == "rl" else (BETA_BON, D_STAR_BON)
    assert u.fit.alpha == pytest.approx(ALPHA, rel=0.05)
    assert u.fit.beta == pytest.approx(beta, rel=0.05)
    assert u.fit.d_star == pytest.approx(d_star, rel=0.05)
    assert u.alpha_ci[0] < u.fit.alpha < u.alpha_ci[1]
    assert u.d_star_ci[0] < u.fit.d_star < u.d_star_ci[1]
    assert u.peak_ci[0] < u.fit.peak < u.peak_ci[1]


@pytest.mark.parametrize("method", ["delta", "bootstrap"])
@pytest.mark.parametrize("form", ["rl", "bon"])
def test_intervals_cover_the_truth_at_about_95_percent(form: str, method: str) -> None:
    """100 noisy draws: measured 90-98 per quantity (1000 draws: 94-96%); >= 85 cannot flake."""
    rng = np.random.default_rng(7)
    beta, d_star = (BETA_RL, D_STAR_RL) if form == "rl" else (BETA_BON, D_STAR_BON)
    peak = GOLD0 + (beta * d_star if form == "rl" else ALPHA**2 / (4 * beta))
    hits = dict.fromkeys(("alpha", "beta", "d_star", "peak"), 0)
    for i in range(100):
        d, gold = (_rl_data if form == "rl" else _bon_data)(rng, sigma=0.03)
        u = fit_uncertainty(form, d, gold, method=method, n_boot=1000, seed=i)
        for name, truth in (("alpha", ALPHA), ("beta", beta), ("d_star", d_star), ("peak", peak)):
            lo, hi = getattr(u, f"{name}_ci")
            hits[name] += lo <= truth <= hi
    assert min(hits.values()) >= 85, hits
    assert max(hits.values()) <= 100


def test_bootstrap_is_seeded_and_sees_an_unfinished_peak() -> None:
    d, gold = _rl_data(np.random.default_rng(0), sigma=0.03)
    a = fit_uncertainty("rl", d, gold, seed=5)
    assert a == fit_uncertainty("rl", d, gold, seed=5)
    assert a.d_star_ci != fit_uncertainty("rl", d, gold, seed=6).d_star_ci
    # Only the rising part (d <= 2, far below d* = 4.5) with noise 0.3: beta's interval reaches
    # below 0, those replicates never turn down, so the upper end of d*'s interval is unbounded.
    early = d <= 2.0
    rising = fit_uncertainty(
        "rl", d[early], gold[early] + np.random.default_rng(1).normal(0, 0.3, int(early.sum()))
    )
    assert rising.beta_ci[0] < 0 < rising.fit.beta
    assert rising.d_star_ci[1] == math.inf
    assert rising.peak_ci[1] == math.inf


def test_no_degrees_of_freedom_gives_nan_intervals() -> None:
    u = fit_uncertainty("bon", [0.0, 1.0, 2.0], [0.0, 0.75, 1.0])  # gold0, alpha, beta: 3 points
    assert u.dof == 0 and math.isnan(u.sigma)
    assert all(math.isnan(x) for x in (*u.alpha_ci, *u.d_star_ci, *u.peak_ci))
    assert u.fit.alpha == pytest.approx(1.0) and u.fit.beta == pytest.approx(0.25)
    with pytest.raises(ValueError, match="method"):
        fit_uncertainty("bon", [0.0, 1.0, 2.0], [0.0, 0.75, 1.0], method="jackknife")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        fit_uncertainty("bon", [0.0, 1.0, 2.0], [0.0, 0.75, 1.0], level=95)
