"""Gao et al. curve fits recover known parameters from noise-free synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from goodhartlab.core.best_of_n import kl_bon
from goodhartlab.core.curves import fit_bon, fit_rl, predict

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
