"""Per-element PPO losses and diagnostics (Schulman et al. 2017, in the trlx form of spec §5.2).

Every function returns one value per element (token or env step); the caller applies the mask
and chooses the reduction (`core.masked`). That keeps the LLM path (B, T with padding) and the gym
path (rows of single steps) on the same code.
"""

from __future__ import annotations

import torch


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_eps: float,
) -> torch.Tensor:
    """Clipped surrogate: max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)), with ρ = exp(logprobs − old_logprobs).

    Why: the max (of losses) keeps the pessimistic bound, so a step cannot profit from moving
    the probability ratio further than 1 ± clip_eps from the rollout policy.

    Shape: logprobs, old_logprobs, advantages (*S) -> (*S)
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return torch.maximum(unclipped, clipped)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_eps_value: float | None,
) -> torch.Tensor:
    """½·max((V − R)², (clip(V, V_old ± ε_v) − R)²); ½·(V − R)² when clip_eps_value is None.

    Why: clipping the value around its rollout-time estimate mirrors the policy clip and stops
    a single minibatch from dragging the critic far from the data it was fitted on.

    Shape: values, old_values, returns (*S) -> (*S)
    """
    unclipped = (values - returns) ** 2
    if clip_eps_value is None:
        return 0.5 * unclipped
    clipped_values = old_values + torch.clamp(values - old_values, -clip_eps_value, clip_eps_value)
    return 0.5 * torch.maximum(unclipped, (clipped_values - returns) ** 2)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical softmax(logits) over the last axis: logsumexp(z) − Σ p·z.

    Why: the entropy bonus and the collapse diagnostic; this form avoids log(0) for p = 0.

    Shape: logits (*S, V) -> (*S)
    """
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def clip_fraction(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, clip_eps: float
) -> torch.Tensor:
    """1.0 where the ratio lies outside [1 − ε, 1 + ε], else 0.0 (no gradient).

    Why: the share of clipped tokens tells whether the policy moves too far per update.

    Shape: logprobs, old_logprobs (*S) -> (*S)
    """
    ratio = torch.exp((logprobs - old_logprobs).detach())
    return ((ratio - 1.0).abs() > clip_eps).to(ratio.dtype)


def approx_kl(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimate of KL(π_old ‖ π) per sample: (ρ − 1) − log ρ, ρ = π/π_old (no gradient).

    Why: the samples come from π_old, and k3 is unbiased for KL(π_old ‖ π) and ≥ 0 per sample,
    so its mean is a low-variance measure of how far one PPO update moved the policy.

    Shape: logprobs, old_logprobs (*S) -> (*S)
    """
    log_ratio = (logprobs - old_logprobs).detach()
    return torch.expm1(log_ratio) - log_ratio
