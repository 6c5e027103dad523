"""Per-sample divergence estimators from a log density ratio (spec llm_optimization.md §5.2, §6).

Input everywhere: `log_ratio = L = log π(y) − log π_ref(y)` for samples y drawn from π (a token,
a whole sequence, or an action). Each estimator returns one term per sample whose mean over samples
estimates the divergence of π from π_ref:

    kl_k1 = L                       unbiased for KL(π‖π_ref), can be negative per sample
    kl_k2 = L²/2                    biased, ≥ 0, low variance when π ≈ π_ref
    kl_k3 = e^{−L} − 1 + L          unbiased for KL(π‖π_ref), ≥ 0 per sample
    chi2  = e^{L} + e^{−L} − 2      unbiased for χ²(π‖π_ref) = E_π[e^L] − 1; e^{−L} − 1 is a zero-mean
                                    control variate that makes every term ≥ 0 (the seed's form)
    tv    = ½|1 − e^{−L}|           unbiased for TV(π, π_ref)

`limit` switches on the seed's linearised exponential (`clipped_exp`): beyond |L| = limit the
exponential continues along its tangent, so one runaway sequence cannot overflow the loss. With
`limit=None` the exponential is exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

SEED_EXP_LIMIT = 10.0
SEED_SQRT_CHI2_FLOOR = 1e-4


def clipped_exp(x: torch.Tensor, limit: float = SEED_EXP_LIMIT) -> torch.Tensor:
    """e^x below `limit`; beyond it the tangent at the limit, e^limit·(1 + x − limit).

    Why: the seed bounds the growth of e^L for long sequences whose log ratio can reach
    hundreds; the linear tail keeps a finite, monotone gradient. The exponential is evaluated at
    min(x, limit) so the unused branch cannot produce inf and poison the gradient with NaN.

    Shape: x (*S) -> (*S)
    """
    below = torch.exp(torch.clamp(x, max=limit))
    tail = math.exp(limit) * (1.0 + x - limit)
    return torch.where(x < limit, below, tail)


def _exp(x: torch.Tensor, limit: float | None) -> torch.Tensor:
    return torch.exp(x) if limit is None else clipped_exp(x, limit)


class ExpClipFractions(NamedTuple):
    """Share of samples on the linear tail of e^L (ratio) and of e^{−L} (inverse ratio)."""

    ratio: torch.Tensor
    inv_ratio: torch.Tensor


def exp_clip_fractions(log_ratio: torch.Tensor, limit: float = SEED_EXP_LIMIT) -> ExpClipFractions:
    """Fractions of samples with L ≥ limit and with L ≤ −limit (logged by the seed).

    Shape: log_ratio (N,) -> two scalars
    """
    detached = log_ratio.detach()
    dtype = detached.dtype if detached.is_floating_point() else torch.float32
    return ExpClipFractions(
        (detached >= limit).to(dtype).mean(), (detached <= -limit).to(dtype).mean()
    )


def kl_k1(log_ratio: torch.Tensor) -> torch.Tensor:
    """k1 = L: the plain Monte Carlo KL term (what KL-in-the-reward uses per token).

    Shape: log_ratio (*S) -> (*S)
    """
    return log_ratio


def kl_k2(log_ratio: torch.Tensor) -> torch.Tensor:
    """k2 = L²/2: biased but non-negative; the seed logs it as `policy/kl`.

    Shape: log_ratio (*S) -> (*S)
    """
    return 0.5 * log_ratio**2


def kl_k3(log_ratio: torch.Tensor, limit: float | None = None) -> torch.Tensor:
    """k3 = e^{−L} − 1 + L: unbiased for KL(π‖π_ref) and ≥ 0 per sample.

    Why: the seed's KL-in-the-loss (and the adaptive controller's input). Note its gradient with
    the samples held fixed is the gradient of the *reverse* KL(π_ref‖π) (spec §6).

    Shape: log_ratio (*S) -> (*S)
    """
    return _exp(-log_ratio, limit) - 1.0 + log_ratio


def chi2(log_ratio: torch.Tensor, limit: float | None = None) -> torch.Tensor:
    """e^{L} + e^{−L} − 2 = 2(cosh L − 1): the seed's per-sample χ²(π‖π_ref) term, ≥ 0.

    Shape: log_ratio (*S) -> (*S)
    """
    return _exp(log_ratio, limit) + _exp(-log_ratio, limit) - 2.0


def sqrt_chi2(
    log_ratio: torch.Tensor,
    floor: float = SEED_SQRT_CHI2_FLOOR,
    limit: float | None = None,
) -> torch.Tensor:
    """sqrt(max(mean_b chi2(L_b), floor)): the square root is taken after the batch mean.

    Why: the √χ² regulariser of Laidlaw et al. As in the seed the mean comes first (so the value
    depends on the batch size, by Jensen) and below `floor` the clamp passes no gradient, which
    means the term is inert at initialisation while π = π_ref.

    Shape: log_ratio (N,) -> ()
    """
    return torch.sqrt(torch.clamp(chi2(log_ratio, limit).mean(), min=floor))


def tv(log_ratio: torch.Tensor, limit: float | None = None) -> torch.Tensor:
    """½|1 − e^{−L}|: unbiased per-sample term for the total variation TV(π, π_ref).

    Why: TV = ½ Σ|π − π_ref| = ½ E_π|1 − π_ref/π|.

    Shape: log_ratio (*S) -> (*S)
    """
    return 0.5 * (1.0 - _exp(-log_ratio, limit)).abs()
