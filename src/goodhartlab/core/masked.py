"""Reductions over the valid entries of a padded tensor.

Why: language-model rollouts are right-padded (B, T) tensors. Every loss and statistic must count
only real tokens, or the amount of padding (which depends on the longest response in a batch)
silently changes the numbers. `mask` is a bool tensor broadcastable to `x`, True = counts.

A reduction over zero valid entries returns 0 (the sum is 0 and the count is clamped to 1) rather
than NaN, so a fully padded row does not poison a batch mean.
"""

from __future__ import annotations

import torch


def _float_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if mask.dtype != torch.bool:
        mask = mask != 0
    return mask.expand_as(x).to(x.dtype)


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of the entries of `x` where `mask` is True.

    Why: padding may hold anything (even inf or NaN from a masked softmax); `torch.where` keeps
    those values out of the sum and out of the gradient.

    Shape: x (*S), mask broadcastable to (*S) -> () if dim is None, else (*S without dim)
    """
    kept = torch.where(_float_mask(x, mask) > 0, x, torch.zeros_like(x))
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_count(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Number of valid entries, as a float tensor of x's dtype.

    Shape: x (*S), mask broadcastable to (*S) -> () if dim is None, else (*S without dim)
    """
    m = _float_mask(x, mask)
    return m.sum() if dim is None else m.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean over valid entries (0 where there are none).

    Why: the PPO losses are token-level means over real response tokens of the whole minibatch
    (the trlx convention), not means of per-sequence means.

    Shape: x (*S), mask broadcastable to (*S) -> () if dim is None, else (*S without dim)
    """
    return masked_sum(x, mask, dim) / masked_count(x, mask, dim).clamp_min(1.0)


def masked_var(
    x: torch.Tensor, mask: torch.Tensor, dim: int | None = None, unbiased: bool = True
) -> torch.Tensor:
    """Variance over valid entries; `unbiased` divides by (count - 1) like `torch.var`.

    Why: advantage whitening needs the spread of the real tokens only. With fewer than two valid
    entries (unbiased) or none (biased) the variance is 0, not NaN.

    Shape: x (*S), mask broadcastable to (*S) -> () if dim is None, else (*S without dim)
    """
    mean = masked_mean(x, mask, dim)
    if dim is not None:
        mean = mean.unsqueeze(dim)
    sq = masked_sum((x - mean) ** 2, mask, dim)
    count = masked_count(x, mask, dim)
    denom = count - 1.0 if unbiased else count
    return sq / denom.clamp_min(1.0)


def normalize(
    x: torch.Tensor, mask: torch.Tensor, center: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """Whiten `x` with the mean and unbiased std of its valid entries; padding is set to 0.

    Why: per-minibatch advantage whitening keeps the policy step size independent of the reward
    scale. trlx whitens over the whole padded tensor, so its statistics include the zeros at
    padding positions and drift with the amount of padding; here only valid entries count.
    With `center=False` only the scale is changed (the mean is added back), a common variant
    for rewards.

    Shape: x (*S), mask broadcastable to (*S) -> (*S)
    """
    mean = masked_mean(x, mask)
    var = masked_var(x, mask, unbiased=True)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not center:
        out = out + mean
    return torch.where(_float_mask(x, mask) > 0, out, torch.zeros_like(out))
