"""Combine the scores of a reward-model ensemble into one conservative score.

Why: a single proxy RM is confidently wrong exactly where the policy pushes hardest. Coste et al.
optimise a combination of K independently seeded RMs instead: the mean, the worst case (WCO, the
member-wise minimum) or an uncertainty-weighted mean (UWO, mean minus uwo_coef times the variance
across members for the same sample). See specs/llm_optimization.md §2.

The seeds disagree on the variance: best-of-n uses the population variance (ddof=0), PPO the
unbiased one (ddof=1, which is K/(K-1) times larger). Here `ddof` is always an explicit argument,
and `uwo_coef=0.0` means no penalty (the seed silently turned a weight of 0 into 1).

Every function accepts a numpy array or a torch tensor and returns the same kind; torch inputs keep
their device, dtype and autograd graph.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

ENSEMBLE_METHODS = ("mean", "wco", "uwo")

Scores = TypeVar("Scores", np.ndarray, "torch.Tensor")


def _is_tensor(scores: object) -> bool:
    """True for a torch tensor. torch is not imported here: if it is not loaded yet, the input
    cannot be a tensor, so numpy-only callers (best-of-n) import this module in milliseconds."""
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(scores, torch_module.Tensor)


def _check_members(scores: np.ndarray | torch.Tensor) -> int:
    if scores.ndim < 1:
        raise ValueError("ensemble scores must have a leading member axis of shape (K, ...)")
    k = int(scores.shape[0])
    if k < 1:
        raise ValueError("ensemble scores have zero members (K = 0)")
    return k


def _as_float(scores: Scores) -> Scores:
    if _is_tensor(scores):
        return scores if scores.is_floating_point() else scores.double()
    arr = np.asarray(scores)
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)


def ensemble_var(scores: Scores, ddof: int = 0) -> Scores:
    """Variance across ensemble members for each sample (the UWO penalty and the PPO log value).

    Why: disagreement between independently trained RMs is the signal that a sample lies off the
    preference data; UWO subtracts it and detection thresholds it. ddof=0 is the population
    variance (the seed's best-of-n), ddof=1 the unbiased one (the seed's PPO).

    Shape: scores (K, *B) -> (*B)

    Raises ValueError when K - ddof <= 0 (e.g. one member with ddof=1), where the variance is
    undefined, instead of returning NaN or uninitialised memory as the seed did.
    """
    k = _check_members(scores)
    if ddof < 0:
        raise ValueError(f"ddof must be >= 0, got {ddof}")
    if k - ddof <= 0:
        raise ValueError(
            f"ensemble variance with ddof={ddof} needs more than {ddof} member(s), got K={k}; "
            "use ddof=0 for a one-member ensemble"
        )
    scores = _as_float(scores)
    if _is_tensor(scores):
        return scores.var(dim=0, correction=ddof)
    return np.var(scores, axis=0, ddof=ddof)


def ensemble_std(scores: Scores, ddof: int = 0) -> Scores:
    """Standard deviation across ensemble members for each sample (disagreement, for detection).

    Why: same signal as `ensemble_var`, in the units of the reward, so a threshold reads as
    "members disagree by more than x reward points".

    Shape: scores (K, *B) -> (*B)
    """
    var = ensemble_var(scores, ddof=ddof)
    if _is_tensor(var):
        return var.sqrt()
    return np.sqrt(var)


def aggregate(scores: Scores, method: str, uwo_coef: float = 0.5, ddof: int = 0) -> Scores:
    """Combine member scores into one score per sample: "mean", "wco" (min) or "uwo".

    Why: the conservative objectives (WCO, UWO) penalise samples the members disagree on, which
    is where the policy exploits a single RM. uwo = mean - uwo_coef * var(ddof) across members,
    with no per-member normalisation (as in the seeds). `uwo_coef` and `ddof` only matter for
    "uwo"; uwo_coef=0.0 gives exactly the mean.

    Shape: scores (K, *B) -> (*B); K is the member axis (axis 0).

    Raises ValueError for an unknown method, a non-finite uwo_coef, or "uwo" with K - ddof <= 0.
    """
    if method not in ENSEMBLE_METHODS:
        raise ValueError(
            f"unknown ensemble method {method!r}; allowed: {', '.join(ENSEMBLE_METHODS)}"
        )
    _check_members(scores)
    scores = _as_float(scores)
    is_torch = _is_tensor(scores)
    if method == "wco":
        return scores.amin(dim=0) if is_torch else np.min(scores, axis=0)
    mean = scores.mean(dim=0) if is_torch else np.mean(scores, axis=0)
    if method == "mean":
        return mean
    if not math.isfinite(float(uwo_coef)):
        raise ValueError(f"uwo_coef must be a finite number, got {uwo_coef!r}")
    return mean - float(uwo_coef) * ensemble_var(scores, ddof=ddof)
