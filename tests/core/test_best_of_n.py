"""Best-of-n estimator against brute-force subset enumeration, Monte Carlo and exact binomials."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from goodhartlab.core import best_of_n
from goodhartlab.core.best_of_n import (
    bon_curve,
    bon_curve_ensemble,
    bon_monte_carlo,
    bon_weights,
    kl_bon,
)
from goodhartlab.core.ensemble import aggregate

SEED_SAMPLE_NS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 6144, 8192, 12500]


def brute_force(proxy: np.ndarray, gold: np.ndarray, n: int) -> tuple[float, float]:
    """Average over prompts of the mean, over ALL n-subsets, of the max-proxy sample's scores.

    Ties: the later sample wins (the estimator's stable ascending sort ranks it higher).
    """
    totals = np.zeros(2)
    for p in range(proxy.shape[0]):
        picks = [
            max(subset, key=lambda j: (proxy[p, j], j))
            for subset in itertools.combinations(range(proxy.shape[1]), n)
        ]
        totals += [proxy[p, picks].mean(), gold[p, picks].mean()]
    return totals[0] / proxy.shape[0], totals[1] / proxy.shape[0]


def test_hand_computed_three_samples() -> None:
    # Proxy order: sample 1 (1), sample 2 (2), sample 0 (3) -> gold by rank [20, 30, 10].
    # n=2 weights by rank: [0, 1/3, 2/3] -> gold 30/3 + 20/3 = 50/3, proxy 2/3 + 2 = 8/3.
    curve = bon_curve(np.array([[3.0, 1.0, 2.0]]), np.array([[10.0, 20.0, 30.0]]), [1, 2, 3])
    np.testing.assert_allclose(curve.proxy, [2.0, 8.0 / 3.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(curve.gold, [20.0, 50.0 / 3.0, 10.0], rtol=1e-15)
    np.testing.assert_allclose(curve.kl_bon, [0.0, math.log(2) - 0.5, math.log(3) - 2.0 / 3.0])
    assert curve.dropped_ns == ()
    assert curve.to_records()[1] == {"n": 2, "proxy_score": 8.0 / 3.0, "gold_score": 50.0 / 3.0}


@pytest.mark.parametrize("decimals", [0, 1, 6])
@pytest.mark.parametrize("num_samples", [1, 2, 5, 9, 12])
def test_equals_brute_force_enumeration(num_samples: int, decimals: int) -> None:
    rng = np.random.default_rng(num_samples)
    # Rounded proxies create ties (many at 0 decimals), which both sides must break the same way.
    proxy = np.round(rng.standard_normal((3, num_samples)), decimals)
    gold = rng.standard_normal((3, num_samples))
    ns = list(range(1, num_samples + 1))
    curve = bon_curve(proxy, gold, ns)
    for k, n in enumerate(ns):
        want_proxy, want_gold = brute_force(proxy, gold, n)
        assert abs(curve.proxy[k] - want_proxy) < 1e-12
        assert abs(curve.gold[k] - want_gold) < 1e-12


def test_monte_carlo_agrees_within_four_standard_errors() -> None:
    rng = np.random.default_rng(7)
    gold = rng.standard_normal((20, 60))
    proxy = 0.6 * gold + rng.standard_normal((20, 60))
    ns = [1, 3, 10, 40]
    curve = bon_curve(proxy, gold, ns)
    for k, n in enumerate(ns):
        mc = bon_monte_carlo(proxy, gold, n, draws=400, rng=np.random.default_rng(n))
        assert abs(mc.proxy - curve.proxy[k]) < 4 * mc.proxy_se + 1e-12
        assert abs(mc.gold - curve.gold[k]) < 4 * mc.gold_se + 1e-12
    # n = N has one subset: no randomness at all.
    mc = bon_monte_carlo(proxy, gold, 60, draws=3, rng=rng)
    assert mc.proxy_se < 1e-12
    assert mc.proxy == pytest.approx(proxy.max(axis=1).mean(), abs=1e-12)


def test_weights_sum_to_one_at_seed_size() -> None:
    weights = bon_weights(12_600, SEED_SAMPLE_NS)
    assert weights.shape == (16, 12_600)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # Zero below rank n, and the top rank is picked with probability n / N.
    for k, n in enumerate(SEED_SAMPLE_NS):
        assert not weights[k, : n - 1].any()
        assert weights[k, -1] == pytest.approx(n / 12_600, rel=1e-14)


def test_weights_equal_exact_binomial_ratios() -> None:
    big_n = 200
    weights = bon_weights(big_n, range(1, big_n + 1))
    worst = 0.0
    for n in range(1, big_n + 1):
        denominator = math.comb(big_n, n)
        for i in range(n, big_n + 1):
            exact = float(Fraction(math.comb(i - 1, n - 1), denominator))
            worst = max(worst, abs(weights[n - 1, i - 1] - exact) / exact)
    assert worst < 1e-12


def test_ties_keep_generation_order() -> None:
    # All proxies equal: rank = generation order, so best-of-N picks the LAST sample.
    proxy = np.zeros((2, 4))
    gold = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    # n=2 weights by rank [0, 1/6, 2/6, 3/6] -> (2 + 6 + 12) / 6 = 10/3 and (6 + 14 + 24) / 6 = 22/3.
    curve = bon_curve(proxy, gold, [2, 4])
    np.testing.assert_allclose(curve.gold, [(10 / 3 + 22 / 3) / 2, 6.0], rtol=1e-15)


def test_kl_bon_values() -> None:
    np.testing.assert_allclose(kl_bon([1, 2, 4]), [0.0, math.log(2) - 0.5, math.log(4) - 0.75])
    assert kl_bon(1).shape == ()
    with pytest.raises(ValueError):
        kl_bon(0)


def test_weights_validate_n() -> None:
    with pytest.raises(ValueError, match="<= N = 5"):
        bon_weights(5, [6])
    with pytest.raises(ValueError, match=">= 1"):
        bon_weights(5, [0])
    with pytest.raises(ValueError, match="integers"):
        bon_weights(5, [1.5])


def test_large_ns_are_dropped_and_reported() -> None:
    rng = np.random.default_rng(0)
    proxy, gold = rng.standard_normal((2, 4, 8))
    curve = bon_curve(proxy, gold, [1, 8, 9, 64])
    assert curve.n.tolist() == [1, 8]
    assert curve.dropped_ns == (9, 64)
    with pytest.raises(ValueError, match="no requested n"):
        bon_curve(proxy, gold, [9])


def test_non_finite_scores_name_the_prompt_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force one prompt per chunk so the row index must survive chunking.
    monkeypatch.setattr(best_of_n, "_CHUNK_BYTES", 8)
    proxy, gold = np.random.default_rng(0).standard_normal((2, 5, 6))
    bad = proxy.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="proxy scores of prompt row 3"):
        bon_curve(bad, gold, [1, 2])
    bad_gold = gold.copy()
    bad_gold[4, 0] = np.inf
    with pytest.raises(ValueError, match="gold scores of prompt row 4"):
        bon_curve(proxy, bad_gold, [1, 2])
    members = np.stack([proxy, bad])
    with pytest.raises(ValueError, match="prompt row 3"):
        bon_curve_ensemble(members, gold, [1], "wco")


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    proxy, gold = rng.standard_normal((2, 7, 30))
    whole = bon_curve(proxy, gold, [1, 5, 30])
    monkeypatch.setattr(best_of_n, "_CHUNK_BYTES", 8 * 30 * 2)
    split = bon_curve(proxy, gold, [1, 5, 30])
    np.testing.assert_allclose(split.proxy, whole.proxy, rtol=1e-13)
    np.testing.assert_allclose(split.gold, whole.gold, rtol=1e-13)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        bon_curve(np.zeros((2, 3)), np.zeros((2, 4)), [1])
    with pytest.raises(ValueError, match=r"\(P, N\)"):
        bon_curve(np.zeros(3), np.zeros(3), [1])
    with pytest.raises(ValueError, match=r"\(M, P, N\)"):
        bon_curve_ensemble(np.zeros((2, 3)), np.zeros((2, 3)), [1], "mean")


@pytest.mark.parametrize(("method", "ddof"), [("mean", 1), ("wco", 1), ("uwo", 0)])
def test_one_member_ensemble_equals_single_rm(method: str, ddof: int) -> None:
    rng = np.random.default_rng(5)
    proxy, gold = rng.standard_normal((2, 6, 40))
    single = bon_curve(proxy, gold, [1, 4, 40])
    ensemble = bon_curve_ensemble(proxy[None], gold, [1, 4, 40], method, uwo_coef=0.5, ddof=ddof)
    np.testing.assert_array_equal(ensemble.proxy, single.proxy)
    np.testing.assert_array_equal(ensemble.gold, single.gold)


@pytest.mark.parametrize(("method", "ddof"), [("mean", 0), ("wco", 0), ("uwo", 0), ("uwo", 1)])
def test_ensemble_ranks_by_the_combined_score(method: str, ddof: int) -> None:
    rng = np.random.default_rng(11)
    members = rng.standard_normal((3, 5, 25))
    gold = rng.standard_normal((5, 25))
    combined = aggregate(members, method, uwo_coef=0.5, ddof=ddof)
    want = bon_curve(combined, gold, [1, 3, 25])
    got = bon_curve_ensemble(members, gold, [1, 3, 25], method, uwo_coef=0.5, ddof=ddof)
    np.testing.assert_allclose(got.proxy, want.proxy, rtol=1e-13)
    np.testing.assert_allclose(got.gold, want.gold, rtol=1e-13)


def test_ensemble_gold_is_reordered_unlike_the_seed() -> None:
    # member 0 = [1, 2, 3], member 1 = [5, 1, -3] -> mean [3, 1.5, 0]; gold [10, 20, 30].
    # Correct ranking by the mean: samples 2, 1, 0 -> gold by rank [30, 20, 10].
    # Seed bug: gold stays in member 0's order, samples 0, 1, 2 -> [10, 20, 30].
    # n=2 weights by rank [0, 1/3, 2/3]: correct 20/3 + 20/3 = 40/3, seed 20/3 + 60/3 = 80/3.
    members = np.array([[[1.0, 2.0, 3.0]], [[5.0, 1.0, -3.0]]])
    gold = np.array([[10.0, 20.0, 30.0]])
    correct = bon_curve_ensemble(members, gold, [1, 2, 3], "mean")
    faithful = bon_curve_ensemble(members, gold, [1, 2, 3], "mean", faithful_seed_gold=True)
    np.testing.assert_allclose(correct.proxy, [1.5, 2.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(faithful.proxy, [1.5, 2.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(correct.gold, [20.0, 40.0 / 3.0, 10.0], rtol=1e-15)
    np.testing.assert_allclose(faithful.gold, [20.0, 80.0 / 3.0, 30.0], rtol=1e-15)
    # The seed's ensemble gold curve is member 0's single-RM gold curve.
    np.testing.assert_array_equal(faithful.gold, bon_curve(members[0], gold, [1, 2, 3]).gold)


def test_float32_inputs_are_accepted() -> None:
    rng = np.random.default_rng(2)
    proxy, gold = rng.standard_normal((2, 3, 10))
    want = bon_curve(proxy.astype(np.float32).astype(np.float64), gold, [2, 7])
    got = bon_curve(proxy.astype(np.float32), gold, [2, 7])
    np.testing.assert_array_equal(got.gold, want.gold)


def test_importing_best_of_n_does_not_import_torch() -> None:
    # The bon CLI and benchmark are numpy-only; torch costs seconds to import.
    import subprocess
    import sys

    code = "import sys, goodhartlab.core.best_of_n, goodhartlab.core.curves; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
