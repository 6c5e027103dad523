"""balance_len (mirrored bins), R-DA augmentation and length statistics (spec §B.3.1-2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from goodhartlab.data.formats import Preference
from goodhartlab.data.length_debias import (
    balance_len,
    balance_len_indices,
    length_bins,
    length_diffs,
    length_stats,
    rand_ratio_augment,
)


def words(n: int) -> str:
    return " ".join(["w"] * n) if n else "."


def n_words(text: str) -> int:
    return 0 if text == "." else len(text.split())


def pair(chosen_len: int, rejected_len: int, tag: str = "") -> Preference:
    return Preference(f"q{tag}", words(chosen_len), words(rejected_len))


def pd_cut_bin(d: float) -> tuple[float, float] | None:
    """Brute force: the width-10 right-closed interval over (-200, 200] containing d."""
    for a in range(-200, 200, 10):
        if a < d <= a + 10:
            return (a, a + 10)
    return None


def test_length_bins_edges() -> None:
    diffs = np.array([0, 5, 12, -15, 19, 250, -3, 10, -10, -200, 200, -199.5])
    expected = [19, 20, 21, 18, 21, -1, 19, 20, 18, -1, 39, 0]
    assert length_bins(diffs).tolist() == expected
    for d, j in zip(diffs, expected):
        interval = pd_cut_bin(float(d))
        assert (interval is None) == (j == -1)
        if interval is not None:
            assert interval == (-200 + 10 * j, -190 + 10 * j)


def test_balance_len_indices_hand_case() -> None:
    diffs = np.array([0, 5, 5, 12, -15, 19, 250, -3, 10, -10])
    keep = balance_len_indices(diffs, np.random.default_rng(0))
    # (-10,0]: {0, 7} vs (0,10]: {1, 2, 8} -> both of 0, 7 and two of 1, 2, 8
    # (-20,-10]: {4, 9} vs (10,20]: {3, 5} -> all four; 250 is out of range
    assert len(keep) == 8 and keep.tolist() == sorted(keep.tolist())
    assert {0, 3, 4, 5, 7, 9} <= set(keep.tolist())
    assert len(set(keep.tolist()) & {1, 2, 8}) == 2 and 6 not in keep


def test_balance_len_equalizes_mirrored_bins_on_biased_set() -> None:
    rng = np.random.default_rng(1)
    rejected = rng.integers(5, 120, size=3000)
    chosen = np.clip(rejected + np.rint(rng.normal(12, 25, size=3000)).astype(int), 0, None)
    prefs = [pair(int(c), int(r), str(i)) for i, (c, r) in enumerate(zip(chosen, rejected))]
    before = length_stats(prefs, n_words)
    assert before.frac_chosen_longer > 0.6
    balanced = balance_len(prefs, n_words, np.random.default_rng(0))
    after = length_stats(balanced, n_words)
    assert after.frac_chosen_longer == 0.5  # ties count on the "shorter" side, as in the seed
    assert abs(after.mean_diff) < abs(before.mean_diff)
    counts: dict[tuple[float, float], int] = {}
    for d in length_diffs(balanced, n_words):
        interval = pd_cut_bin(d)
        assert interval is not None
        counts[interval] = counts.get(interval, 0) + 1
    for (a, b), n in counts.items():
        assert counts.get((-b, -a), 0) == n
    # kept rows keep their original order and are a subset
    positions = [int(p.prompt[1:]) for p in balanced]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_balance_len_options_and_errors() -> None:
    keep = balance_len_indices(np.array([-3.0, 3.0, 7.0]), np.random.default_rng(0), 5, 10)
    assert keep.tolist() == [0, 1]  # (-5,0] mirrors (0,5]; 7 in (5,10] has no partner
    with pytest.raises(ValueError, match="multiple of bin_width"):
        length_bins(np.zeros(1), bin_width=3, max_abs_diff=10)
    assert balance_len_indices(np.array([1.0, 2.0]), np.random.default_rng(0)).size == 0


def test_length_stats_hand_values() -> None:
    prefs = [pair(5, 3), pair(2, 2), pair(1, 4), pair(10, 0)]
    stats = length_stats(prefs, n_words)
    assert stats.n == 4 and stats.frac_chosen_longer == 0.5 and stats.frac_equal == 0.25
    assert math.isclose(stats.mean_diff, (2 + 0 - 3 + 10) / 4)


def test_rand_ratio_appends_random_pairs() -> None:
    prefs = [Preference(f"q{i}", f"good{i}", f"bad{i}", 1.0) for i in range(10)]
    out = rand_ratio_augment(prefs, 0.35, np.random.default_rng(3))
    m = 3  # floor(0.35 * 10)
    assert len(out) == 10 + m and out[:10] == prefs
    partners = np.random.default_rng(3).integers(0, m, size=m)
    for i, (new, r) in enumerate(zip(out[10:], partners)):
        assert new == Preference(f"q{i}", f"good{i}", f"good{r}", None)
    assert rand_ratio_augment(prefs, 0.0, np.random.default_rng(0)) == prefs
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\]"):
        rand_ratio_augment(prefs, 1.5, np.random.default_rng(0))


def test_rand_ratio_without_self_pairs() -> None:
    prefs = [Preference(f"q{i}", f"good{i}", f"bad{i}") for i in range(40)]
    for seed in range(5):
        out = rand_ratio_augment(prefs, 0.5, np.random.default_rng(seed), allow_self=False)
        new = out[40:]
        assert len(new) == 20
        assert all(p.chosen != p.rejected for p in new)
        assert {p.rejected for p in new} <= {f"good{i}" for i in range(20)}
    two = rand_ratio_augment(prefs[:4], 0.5, np.random.default_rng(0), allow_self=False)
    assert [p.rejected for p in two[4:]] == ["good1", "good0"]


def test_balance_keep_equal_mode_hand_case() -> None:
    from goodhartlab.data.length_debias import balance_len_indices

    # diffs: two equal, three +1, one -1, one +2, two -2, one +5 (no mirror)
    diff = np.array([0, 0, 1, 1, 1, -1, 2, -2, -2, 5])
    keep = balance_len_indices(diff, np.random.default_rng(0), bin_width=1, equal="keep")
    kept = diff[keep]
    assert sorted(kept.tolist()) == [-2, -1, 0, 0, 1, 2]
    assert set(keep[kept == -1].tolist()) == {5} and set(keep[kept == 0].tolist()) == {0, 1}
    seed = balance_len_indices(diff, np.random.default_rng(0), bin_width=1)
    # the seed's edges pair (-1, 0] (equal lengths) with (0, 1], and (-2, -1] with (1, 2]
    assert sorted(diff[seed].tolist()) == [-1, 0, 0, 1, 1, 2]
