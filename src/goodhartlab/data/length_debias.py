"""Length interventions on reward-model data, after Singhal et al., "A Long Way to Go" (2023).

Why: preference data where the chosen answer is usually the longer one teaches the RM that
length is quality, and PPO then buys reward with length. Two data-side counters from the paper
(spec `inform_length.md` §B.3.1, §B.3.2), plus the diagnostic that motivates them:

- `length_stats`: how often the chosen response is longer (the paper's "length heuristic").
- `balance_len`: down-sample so that, within every band of |length difference|, "chosen longer"
  and "chosen shorter" are equally common.
- `rand_ratio_augment` (R-DA): append pairs whose rejected answer is a fluent answer to another
  prompt, a preference signal that length cannot explain.

All functions are pure: lists of `Preference` in, new lists out; lengths come from a caller's
`length_fn(text) -> number` (the paper counts tokens of the response); randomness comes from an
explicit `numpy.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from goodhartlab.data.formats import Preference

LengthFn = Callable[[str], float]
EqualMode = Literal["as_shorter", "keep"]


@dataclass(frozen=True)
class LengthStats:
    """Length diagnostics of a preference set (lengths from the caller's `length_fn`)."""

    n: int
    frac_chosen_longer: float  # strictly longer: the accuracy of "longer is better"
    frac_equal: float
    mean_diff: float  # mean of len(chosen) - len(rejected)


def length_diffs(prefs: Sequence[Preference], length_fn: LengthFn) -> np.ndarray:
    """len(chosen) - len(rejected) per pair.

    Shape: (len(prefs),) float64. Why a helper: every intervention here is a function of it.
    """
    return np.array([length_fn(p.chosen) - length_fn(p.rejected) for p in prefs], dtype=np.float64)


def length_stats(prefs: Sequence[Preference], length_fn: LengthFn) -> LengthStats:
    """Fraction of pairs whose chosen response is longer, fraction of ties, mean difference."""
    if not prefs:
        raise ValueError("length_stats needs at least one preference pair")
    diff = length_diffs(prefs, length_fn)
    return LengthStats(
        n=len(prefs),
        frac_chosen_longer=float(np.mean(diff > 0)),
        frac_equal=float(np.mean(diff == 0)),
        mean_diff=float(np.mean(diff)),
    )


def _n_bins(bin_width: float, max_abs_diff: float) -> int:
    if bin_width <= 0 or max_abs_diff <= 0 or max_abs_diff % bin_width:
        raise ValueError(
            f"max_abs_diff {max_abs_diff} must be a positive multiple of bin_width {bin_width}"
        )
    return round(2 * max_abs_diff / bin_width)


def length_bins(
    diff: np.ndarray, bin_width: float = 10.0, max_abs_diff: float = 200.0
) -> np.ndarray:
    """Index of the right-closed bin (a, a + bin_width] over (-max_abs_diff, max_abs_diff].

    Shape: diff (B,) -> (B,) int64; -1 for differences outside the range (dropped by the
    paper). Bin j is (-max + j*w, -max + (j+1)*w], so diff = 0 lands in (-w, 0], the
    "negative" side, exactly like the seed code's `pd.cut`. Bin j's mirror is n_bins - 1 - j.
    """
    n_bins = _n_bins(bin_width, max_abs_diff)
    idx = (
        np.ceil((np.asarray(diff, dtype=np.float64) + max_abs_diff) / bin_width).astype(np.int64)
        - 1
    )
    idx[(idx < 0) | (idx >= n_bins)] = -1
    return idx


def balance_len_indices(
    diff: np.ndarray,
    rng: np.random.Generator,
    bin_width: float = 10.0,
    max_abs_diff: float = 200.0,
    equal: EqualMode = "as_shorter",
) -> np.ndarray:
    """Indices kept by length balancing (spec §B.3.1), in increasing order.

    Shape: diff (B,) -> (K,) int64, K <= B. For each negative bin (a, b] and its mirror
    (-b, -a], keep min(n_neg, n_pos) pairs drawn without replacement from each side; drop
    everything else, including |diff| beyond `max_abs_diff` and any bin whose mirror is empty.
    Why mirrored bins rather than one global "chosen longer" vs "shorter" down-sample: it
    equalises the heuristic within every size of length gap, not just on average.

    `equal="as_shorter"` is the seed: equal lengths fall in the (-w, 0] bin, the "shorter"
    side. `equal="keep"` keeps every equal-length pair (they carry no length signal) and
    balances strictly shorter against strictly longer in bins of |diff|: [-b, -a) with (a, b].
    Why the second mode: with short answers many pairs have equal length, and counting them as
    "shorter" makes balancing drop them and *raise* the share of "chosen longer" among the
    pairs of unequal length.
    """
    if equal == "keep":
        return _balance_keep_equal(np.asarray(diff, dtype=np.float64), rng, bin_width, max_abs_diff)
    if equal != "as_shorter":
        raise ValueError(f"equal must be 'as_shorter' or 'keep', got {equal!r}")
    bins = length_bins(diff, bin_width, max_abs_diff)
    n_bins = _n_bins(bin_width, max_abs_diff)
    kept: list[np.ndarray] = []
    for j in range(n_bins // 2):
        neg, pos = np.flatnonzero(bins == j), np.flatnonzero(bins == n_bins - 1 - j)
        m = min(len(neg), len(pos))
        if m:
            kept.append(rng.choice(neg, size=m, replace=False))
            kept.append(rng.choice(pos, size=m, replace=False))
    if not kept:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(kept)).astype(np.int64)


def _balance_keep_equal(
    diff: np.ndarray, rng: np.random.Generator, bin_width: float, max_abs_diff: float
) -> np.ndarray:
    n_bins = _n_bins(bin_width, max_abs_diff) // 2
    mag = np.ceil(np.abs(diff) / bin_width).astype(np.int64) - 1  # (a, a + w] of |diff|
    kept = [np.flatnonzero(diff == 0)]
    for j in range(n_bins):
        in_bin = (mag == j) & (diff != 0)
        neg, pos = np.flatnonzero(in_bin & (diff < 0)), np.flatnonzero(in_bin & (diff > 0))
        m = min(len(neg), len(pos))
        if m:
            kept.append(rng.choice(neg, size=m, replace=False))
            kept.append(rng.choice(pos, size=m, replace=False))
    return np.sort(np.concatenate(kept)).astype(np.int64)


def balance_len(
    prefs: Sequence[Preference],
    length_fn: LengthFn,
    rng: np.random.Generator,
    bin_width: float = 10.0,
    max_abs_diff: float = 200.0,
    equal: EqualMode = "as_shorter",
) -> list[Preference]:
    """Length-balanced subset of `prefs` (spec §B.3.1), in the original order.

    Defaults are the paper's: width-10 bins over (-200, 200] of the token-length difference.
    Equal-length pairs count as "chosen shorter" (the seed code's bin edges), so after
    balancing the fraction with chosen strictly longer is exactly 0.5. The set can shrink a
    lot; the paper applies this to the training split only.
    """
    diff = length_diffs(prefs, length_fn)
    keep = balance_len_indices(diff, rng, bin_width, max_abs_diff, equal)
    return [prefs[i] for i in keep]


def rand_ratio_augment(
    prefs: Sequence[Preference],
    ratio: float,
    rng: np.random.Generator,
    allow_self: bool = True,
) -> list[Preference]:
    """R-DA (spec §B.3.2): `prefs` followed by floor(ratio * N) random-pair preferences.

    The pairs made: for each of the first m = floor(ratio * N) examples i, a new pair
    (prompt_i, chosen = chosen_i, rejected = chosen_r), where r is drawn uniformly from those
    same first m examples. The right answer to the question beats a fluent answer to another
    question, whatever their lengths. Margins of the new pairs are None. As in the seed code,
    r = i is possible (a zero-signal pair); `allow_self=False` redraws r among the other m - 1.
    The first m are used, so pass shuffled data; the result is not reshuffled (the appended
    rows sit at the end: shuffle before training, as the paper does).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    m = int(np.floor(ratio * len(prefs)))
    if m == 0:
        return list(prefs)
    if allow_self:
        partners = rng.integers(0, m, size=m)
    else:
        if m < 2:
            raise ValueError("allow_self=False needs at least 2 augmented examples")
        # draw from the m - 1 others: shift draws at or past i up by one
        draws = rng.integers(0, m - 1, size=m)
        partners = draws + (draws >= np.arange(m))
    augmented = [
        Preference(prefs[i].prompt, prefs[i].chosen, prefs[int(r)].chosen)
        for i, r in enumerate(partners)
    ]
    return [*prefs, *augmented]
