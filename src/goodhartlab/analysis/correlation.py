"""Correlation statistics used by every evaluation (pure numpy).

Why our own: scipy is optional for users, and these are three lines each; ranks average ties so
Spearman matches scipy.stats.spearmanr.
"""

from __future__ import annotations

import numpy as np


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; nan when either side is constant. Shape: (N,), (N,) -> ()."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N with ties given their average rank. Shape: (N,) -> (N,)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson r of average ranks)."""
    return pearson(average_ranks(x), average_ranks(y))


def pairwise_agreement(score_diff: np.ndarray, gold_diff: np.ndarray) -> tuple[float, int]:
    """Fraction of pairs where the score difference has gold's sign, gold ties excluded.

    Returns (accuracy, number of non-tied pairs); a score tie counts as half right.
    """
    score_diff, gold_diff = np.asarray(score_diff), np.asarray(gold_diff)
    keep = gold_diff != 0
    if not keep.any():
        return float("nan"), 0
    agree = np.sign(score_diff[keep]) == np.sign(gold_diff[keep])
    half = (score_diff[keep] == 0) * 0.5
    return float(np.mean(agree + half)), int(keep.sum())
