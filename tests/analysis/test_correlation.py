"""Correlation statistics against hand-computed values and numpy."""

from __future__ import annotations

import math

import numpy as np

from goodhartlab.analysis.correlation import average_ranks, pairwise_agreement, pearson, spearman


def test_pearson_matches_numpy_and_constant_is_nan() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert math.isclose(pearson(x, y), np.corrcoef(x, y)[0, 1])
    assert math.isnan(pearson(np.ones(5), np.arange(5)))


def test_average_ranks_give_ties_their_mean() -> None:
    assert average_ranks(np.array([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]


def test_spearman_hand_values() -> None:
    assert math.isclose(spearman(np.array([1, 2, 3, 4]), np.array([1, 8, 27, 64])), 1.0)
    assert math.isclose(spearman(np.array([1, 2, 3]), np.array([3, 2, 1])), -1.0)


def test_pairwise_agreement_excludes_gold_ties() -> None:
    score = np.array([1.0, -1.0, 0.0, 2.0, 5.0])
    gold = np.array([2.0, 1.0, 1.0, 0.0, -3.0])
    acc, kept = pairwise_agreement(score, gold)
    # kept: rows 0, 1, 2, 4; right, wrong, score tie (half), wrong -> 1.5 / 4
    assert kept == 4 and math.isclose(acc, 1.5 / 4)
    assert pairwise_agreement(np.array([1.0]), np.array([0.0]))[1] == 0
