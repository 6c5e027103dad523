"""Length analysis of RLHF reward gains (Singhal et al., "A Long Way to Go"; spec inform_length §B.5).

Why: a policy can raise a length-correlated proxy just by writing longer answers. The paper's
diagnostic splits the reward gain from the start policy (SFT) to the optimized one (PPO) into
the part explained by the length shift and the part earned *within* length bins, the
"non-length reward gain" or weighted reward gain (WRG):

    bins [i, i + w) over response length in tokens (i = 0, w, 2w, ...),
    Δ_b = mean reward of PPO samples in b − mean reward of SFT samples in b   (bins with both),
    WRG = Σ_b Δ_b (n_SFT,b + n_PPO,b) / N_tot,   N_tot = SFT + PPO samples in any bin,

and the ratio WRG / (mean reward PPO − mean reward SFT) is the share of the gain not explained by
length (1 − ratio ≈ the share due to length). Bins held by only one side get no Δ but still count
in N_tot, so the weights of the shared bins can sum to less than 1, as in the seed.

Deviation (a seed bug, kept as an option): the seed's code bins with strict inequalities
(i < L < i + w), silently dropping lengths on a bin edge; `seed_strict_bounds=True` replicates
that (with w = 1 it drops every sample). The default uses half-open bins. The seed stops its bins
at 260 tokens (its answers are at most 256); here the bins cover every observed length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LengthBin:
    """One length bin [lo, hi) with its sample counts and mean rewards (nan where empty)."""

    lo: int
    hi: int
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float


@dataclass(frozen=True)
class LengthGain:
    """The length decomposition of a reward gain; see the module docstring for the formulas."""

    total_gain: float  # mean reward after − before, over all samples
    within_gain: float  # WRG, the non-length (within-bin) gain
    share_not_length: float  # within_gain / total_gain (nan when total_gain == 0)
    shared_weight: float  # Σ over shared bins of (n_SFT,b + n_PPO,b) / N_tot (<= 1)
    mean_length_before: float
    mean_length_after: float
    bins: tuple[LengthBin, ...]


def length_stratified_gain(
    len_before: np.ndarray,
    reward_before: np.ndarray,
    len_after: np.ndarray,
    reward_after: np.ndarray,
    bin_width: int = 1,
    min_count: int = 1,
    seed_strict_bounds: bool = False,
) -> LengthGain:
    """Split the reward gain from `before` (SFT) samples to `after` (PPO) samples by length.

    Why bin_width 1 by default: toy-world answers are 5-25 tokens, so width-1 bins compare equal
    lengths; the paper's answers are ~100 tokens and it used 20 (10-15 in its notebooks).
    `min_count` is the samples a bin needs on each side to get a Δ (the seed: 1; a variant: 2).

    Shape: len_before, reward_before (N,), len_after, reward_after (M,) -> LengthGain of scalars
    """
    lb, rb = _pair(len_before, reward_before, "before")
    la, ra = _pair(len_after, reward_after, "after")
    if bin_width < 1 or min_count < 1:
        raise ValueError(f"bin_width and min_count must be >= 1, got {bin_width}, {min_count}")
    top = int(max(lb.max(), la.max())) + 1
    bins, n_tot, weighted, shared = [], 0, 0.0, 0
    for lo in range(0, top, bin_width):
        hi = lo + bin_width
        in_b = _in_bin(lb, lo, hi, seed_strict_bounds)
        in_a = _in_bin(la, lo, hi, seed_strict_bounds)
        nb, na = int(in_b.sum()), int(in_a.sum())
        if nb + na == 0:
            continue
        mb = float(rb[in_b].mean()) if nb else math.nan
        ma = float(ra[in_a].mean()) if na else math.nan
        bins.append(LengthBin(lo, hi, nb, na, mb, ma))
        n_tot += nb + na
        if nb >= min_count and na >= min_count:
            weighted += (ma - mb) * (nb + na)
            shared += nb + na
    total = float(ra.mean() - rb.mean())
    within = weighted / n_tot if n_tot else math.nan
    share = within / total if total != 0 and math.isfinite(within) else math.nan
    return LengthGain(
        total, within, share, shared / n_tot if n_tot else math.nan,
        float(lb.mean()), float(la.mean()), tuple(bins),
    )  # fmt: skip


def _pair(lengths: np.ndarray, rewards: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.asarray(lengths, dtype=np.float64).reshape(-1)
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if lengths.shape != rewards.shape:
        raise ValueError(f"{side}: {lengths.size} lengths but {rewards.size} rewards")
    if lengths.size == 0:
        raise ValueError(f"{side}: no samples")
    if not (np.isfinite(lengths).all() and np.isfinite(rewards).all()) or (lengths < 0).any():
        raise ValueError(f"{side}: lengths must be finite and >= 0, rewards finite")
    return lengths, rewards


def _in_bin(lengths: np.ndarray, lo: int, hi: int, strict: bool) -> np.ndarray:
    if strict:
        return (lengths > lo) & (lengths < hi)
    return (lengths >= lo) & (lengths < hi)
