"""Curve fits of run rows: recovered parameters, JSON-able output, observed peaks, failures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from goodhartlab.analysis.fits import fit_bon_results, fit_ppo_metrics, fitted_line, n_at_kl_bon
from goodhartlab.core.best_of_n import kl_bon


def _ppo_rows(alpha: float, beta: float, noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = [{"step": 0, "eval/kl/sqrt": 0.0, "eval/reward/gold": 1.4, "eval/reward/proxy": 0.0}]
    for i, d in enumerate(np.linspace(0.2, 5.0, 24), start=1):
        gold = 1.4 + d * (alpha - beta * math.log(d)) + rng.normal(0, noise)
        rows.append({"step": 10 * i, "eval/kl/sqrt": float(d), "eval/reward/gold": float(gold),
                     "eval/reward/proxy": 0.3 * float(d)})  # fmt: skip
        rows.append({"step": 10 * i + 1, "reward/train": 0.5})  # a training row: ignored
    return rows


def test_fit_ppo_metrics_recovers_the_rl_form_and_is_json() -> None:
    fit = fit_ppo_metrics(_ppo_rows(1.0, 0.6, noise=0.01))
    assert fit["form"] == "rl" and fit["n_points"] == 25 and fit["dof"] == 22
    assert fit["alpha"] == pytest.approx(1.0, rel=0.05)
    assert fit["beta"] == pytest.approx(0.6, rel=0.05)
    assert fit["d_star"] == pytest.approx(math.exp(1 / 0.6 - 1), rel=0.05)
    assert fit["gold0"] == 1.4 and fit["peaked"] and fit["d_star_in_range"]
    lo, hi = fit["d_star_ci"]
    assert lo < fit["d_star"] < hi
    best = max(_ppo_rows(1.0, 0.6, noise=0.01), key=lambda r: r.get("eval/reward/gold", -9))
    assert fit["observed_peak"] == best["eval/reward/gold"]
    assert fit["observed_peak_step"] == best["step"]
    json.dumps(fit, allow_nan=False)  # plain numbers, no NaN/inf


def test_an_unfinished_run_has_an_open_interval_and_no_nan() -> None:
    rows = [r for r in _ppo_rows(1.0, 0.05, noise=0.2) if r.get("eval/kl/sqrt", 0) <= 1.0]
    fit = fit_ppo_metrics(rows)
    text = json.dumps(fit, allow_nan=False)
    assert "Infinity" not in text
    assert fit["d_star_ci"][1] is None  # unbounded above: stored as null


def test_fit_bon_results_recovers_the_bon_form() -> None:
    ns = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    rows = [{"n": n, "kl_bon": float(k), "proxy_score": float(k),
             "gold_score": 0.5 + math.sqrt(k) * (0.8 - 0.25 * math.sqrt(k))}
            for n, k in zip(ns, kl_bon(ns))]  # fmt: skip
    fit = fit_bon_results(rows)
    assert fit["form"] == "bon"
    assert (fit["alpha"], fit["beta"]) == pytest.approx((0.8, 0.25), abs=1e-9)
    assert fit["d_star"] == pytest.approx(1.6) and fit["peak"] == pytest.approx(0.5 + 0.64)
    assert fit["observed_peak_n"] == max(rows, key=lambda r: r["gold_score"])["n"]
    np.testing.assert_allclose(fitted_line(fit, np.array([0.0, 1.6])), [0.5, 1.14])


def test_too_few_points_is_an_error_entry() -> None:
    fit = fit_ppo_metrics([{"step": 0, "eval/kl/sqrt": 0.0, "eval/reward/gold": 1.0}])
    assert "error" in fit and fit["observed_peak"] == 1.0
    assert fitted_line(fit, np.array([1.0])) is None
    assert "error" in fit_bon_results([])


def test_n_at_kl_bon_inverts_kl_bon() -> None:
    for n in (1, 2, 32, 1000):
        assert n_at_kl_bon(float(kl_bon([n])[0])) == pytest.approx(n, rel=1e-6)
    assert n_at_kl_bon(None) is None and n_at_kl_bon(-1.0) is None
