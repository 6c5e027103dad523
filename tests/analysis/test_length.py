"""The length-stratified ("non-length") reward gain against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from goodhartlab.analysis.length import length_stratified_gain


def test_hand_computed_wrg() -> None:
    # SFT: lengths 1, 1, 2, 2 with rewards 0, 1, 2, 3; PPO: lengths 2, 2, 3 with 4, 4, 9.
    # Width-1 bins: L=1 SFT only, L=2 shared (Δ = 4 - 2.5 = 1.5, 4 samples), L=3 PPO only.
    # N_tot = 7, WRG = 1.5 * 4/7 = 6/7; total gain = 17/3 - 3/2 = 25/6; share = 36/175.
    gain = length_stratified_gain([1, 1, 2, 2], [0, 1, 2, 3], [2, 2, 3], [4, 4, 9])
    assert gain.within_gain == pytest.approx(6 / 7)
    assert gain.total_gain == pytest.approx(25 / 6)
    assert gain.share_not_length == pytest.approx(36 / 175)
    assert gain.shared_weight == pytest.approx(4 / 7)
    assert (gain.mean_length_before, gain.mean_length_after) == pytest.approx((1.5, 7 / 3))
    assert [(b.lo, b.n_before, b.n_after) for b in gain.bins] == [(1, 2, 0), (2, 2, 2), (3, 0, 1)]
    assert gain.bins[1].mean_before == 2.5 and gain.bins[1].mean_after == 4.0
    assert math.isnan(gain.bins[0].mean_after)


def test_a_pure_length_gain_has_no_within_bin_gain() -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(3, 8, 500)
    after = rng.integers(6, 12, 500)  # longer answers, reward = length: all gain is length
    gain = length_stratified_gain(before, before * 0.5, after, after * 0.5)
    assert gain.total_gain > 1.0
    assert gain.within_gain == pytest.approx(0.0, abs=1e-12)
    assert gain.share_not_length == pytest.approx(0.0, abs=1e-12)


def test_a_pure_quality_gain_is_all_within_bins() -> None:
    lengths = np.array([4, 5, 6, 7] * 25)
    gain = length_stratified_gain(lengths, np.zeros(100), lengths, np.ones(100))
    assert gain.within_gain == pytest.approx(1.0) and gain.share_not_length == pytest.approx(1.0)


def test_wider_bins_and_the_seeds_strict_bounds() -> None:
    args = ([1, 2, 3], [1, 2, 3], [2, 3, 3], [5, 5, 7])
    # half-open [0,2), [2,4): Δ = 17/3 - 5/2 = 19/6 on 5 of 6 samples
    assert length_stratified_gain(*args, bin_width=2).within_gain == pytest.approx(95 / 36)
    # strict 0<L<2, 2<L<4: length 2 is dropped; Δ = 6 - 3 on 3 of the 4 kept samples
    strict = length_stratified_gain(*args, bin_width=2, seed_strict_bounds=True)
    assert strict.within_gain == pytest.approx(9 / 4)
    # min_count=2: the shared bin has 2 SFT and 3 PPO samples, still counted
    assert length_stratified_gain(*args, bin_width=2, min_count=2).within_gain == pytest.approx(
        95 / 36
    )
    none_shared = length_stratified_gain(*args, bin_width=2, min_count=3)
    assert none_shared.within_gain == 0.0 and none_shared.shared_weight == 0.0


def test_no_gain_and_bad_input() -> None:
    same = length_stratified_gain([1, 2], [1.0, 1.0], [1, 2], [1.0, 1.0])
    assert same.total_gain == 0 and math.isnan(same.share_not_length)
    with pytest.raises(ValueError, match="rewards"):
        length_stratified_gain([1, 2], [1.0], [1], [1.0])
    with pytest.raises(ValueError, match="no samples"):
        length_stratified_gain([], [], [1], [1.0])
    with pytest.raises(ValueError, match=">= 1"):
        length_stratified_gain([1], [1.0], [1], [1.0], bin_width=0)
