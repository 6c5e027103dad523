"""Keep the policy near its reference: a divergence in the reward or in the loss (spec §5.2, §6).

Two places to put the penalty:
- In the reward (trlx / TRL, both seeds): per response token r_t = −coef·k(log π_old − log π_ref),
  with the RM score added at the last token (`token_rewards`); or the whole sequence's penalty at
  the last token only (`placement="terminal"`). The policy gradient then optimises
  E[score] − coef·KL, whose optimum is π_ref·exp(score/coef)/Z.
- In the loss (Laidlaw et al. fork): from the sequence log ratio L_b = Σ_t mask·(logprobs −
  ref_logprobs), with gradient through the current logprobs, add coef·mean k3(L_b) ("kl"),
  coef·mean chi2(L_b) ("chi2") or coef·sqrt(max(mean chi2(L_b), floor)) ("sqrt_chi2").

The coefficient is fixed or follows the adaptive controller of Ziegler et al. (trlx/TRL):
β ← β·(1 + clip(KL/target − 1, ±0.2)·n_steps/horizon). `KLController` is the tiny state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import torch

from goodhartlab.core.divergences import (
    SEED_EXP_LIMIT,
    SEED_SQRT_CHI2_FLOOR,
    chi2,
    exp_clip_fractions,
    kl_k1,
    kl_k2,
    kl_k3,
    sqrt_chi2,
)
from goodhartlab.core.masked import masked_sum

RewardEstimator = Literal["k1", "k2", "k3"]
Placement = Literal["per_token", "terminal"]
LossDivergence = Literal["kl", "chi2", "sqrt_chi2"]
LOSS_DIVERGENCES: tuple[str, ...] = ("kl", "chi2", "sqrt_chi2")

_REWARD_ESTIMATORS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def last_valid_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last True entry of each row (0 for an empty row).

    Shape: mask (B, T) -> (B,) long
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).amax(dim=1)


def place_terminal(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put each sequence's scalar on its last valid token, zeros elsewhere.

    Why: the reward model scores a whole response; RL credits it to the final (eos) token.

    Shape: scores (B,), mask (B, T) -> (B, T)
    """
    out = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
    out.scatter_(1, last_valid_index(mask)[:, None], scores[:, None])
    return torch.where(mask.bool(), out, torch.zeros_like(out))


def kl_reward_penalty(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    coef: float,
    estimator: RewardEstimator = "k1",
    placement: Placement = "per_token",
) -> torch.Tensor:
    """−coef·k(log π − log π_ref) per valid token, or its per-sequence sum at the last token.

    Why: the standard RLHF KL penalty. Pass rollout-time (old) logprobs: the penalty is part of
    the reward, so it carries no gradient. Both placements give the same undiscounted return;
    they differ only in how GAE (γ, λ < 1) spreads the credit.

    Shape: logprobs, ref_logprobs, mask (B, T) -> (B, T), zero at padding
    """
    if estimator not in _REWARD_ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {sorted(_REWARD_ESTIMATORS)}, got {estimator!r}"
        )
    per_token = -coef * _REWARD_ESTIMATORS[estimator]((logprobs - ref_logprobs).detach())
    per_token = torch.where(mask.bool(), per_token, torch.zeros_like(per_token))
    if placement == "per_token":
        return per_token
    if placement == "terminal":
        return place_terminal(per_token.sum(dim=1), mask)
    raise ValueError(f"placement must be 'per_token' or 'terminal', got {placement!r}")


def token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    coef: float,
    estimator: RewardEstimator = "k1",
    placement: Placement = "per_token",
) -> torch.Tensor:
    """The trlx reward: KL penalty per token plus the RM score on the last valid token.

    Shape: scores (B,), logprobs, ref_logprobs, mask (B, T) -> (B, T)
    """
    penalty = kl_reward_penalty(logprobs, ref_logprobs, mask, coef, estimator, placement)
    return penalty + place_terminal(scores.to(penalty.dtype), mask)


def sequence_log_ratio(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_b = Σ_t mask·(logprobs − ref_logprobs): log importance ratio of the whole response.

    Why: the fork's in-loss regularisers act on sequences, not tokens; gradient flows through
    the current `logprobs`.

    Shape: logprobs, ref_logprobs, mask (B, T) -> (B,)
    """
    return masked_sum(logprobs - ref_logprobs, mask, dim=1)


def per_sequence_kl(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    estimator: RewardEstimator = "k3",
) -> torch.Tensor:
    """Σ_t mask·k(log π − log π_ref) per sequence (no gradient).

    Why: the seed's KL measurements: the adaptive controller's input is the batch mean of the
    k3 sum (its square root is logged as `policy/sqrt_kl`), and `policy/kl` is the k2 sum.

    Shape: logprobs, ref_logprobs, mask (B, T) -> (B,)
    """
    if estimator not in _REWARD_ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {sorted(_REWARD_ESTIMATORS)}, got {estimator!r}"
        )
    terms = _REWARD_ESTIMATORS[estimator]((logprobs - ref_logprobs).detach())
    return masked_sum(terms, mask, dim=1)


class LossPenalty(NamedTuple):
    """The loss term (scalar, with gradient) and the seed's logged statistics (detached)."""

    loss: torch.Tensor
    kl: torch.Tensor
    chi2: torch.Tensor
    ratio_clipfrac: torch.Tensor
    inv_ratio_clipfrac: torch.Tensor


def loss_penalty(
    seq_log_ratio: torch.Tensor,
    divergence: LossDivergence,
    coef: float,
    limit: float | None = SEED_EXP_LIMIT,
    floor: float = SEED_SQRT_CHI2_FLOOR,
) -> LossPenalty:
    """coef·mean k3(L), coef·mean chi2(L) or coef·sqrt(max(mean chi2(L), floor)).

    Why: the fork's `kl_in_loss` and `sqrt_chi2_in_loss` modes (plus plain χ²). Both estimates
    are always returned for logging, as the seed logs both. The exponentials use the seed's
    linear tail beyond |L| = limit (None = exact).

    Shape: seq_log_ratio (B,) -> scalars
    """
    kl_terms = kl_k3(seq_log_ratio, limit)
    chi2_terms = chi2(seq_log_ratio, limit)
    if divergence == "kl":
        value = kl_terms.mean()
    elif divergence == "chi2":
        value = chi2_terms.mean()
    elif divergence == "sqrt_chi2":
        value = sqrt_chi2(seq_log_ratio, floor, limit)
    else:
        raise ValueError(f"divergence must be one of {LOSS_DIVERGENCES}, got {divergence!r}")
    fractions = exp_clip_fractions(seq_log_ratio, limit if limit is not None else float("inf"))
    return LossPenalty(
        coef * value,
        kl_terms.detach().mean(),
        chi2_terms.detach().mean(),
        fractions.ratio,
        fractions.inv_ratio,
    )


@dataclass(frozen=True)
class KLController:
    """KL coefficient state: fixed when `target` is None, else adaptive (Ziegler et al.).

    trlx/TRL defaults: horizon 10000; the seeds use target 6 (Coste et al.) or 0.1 (Singhal et al.).
    """

    coef: float
    target: float | None = None
    horizon: float = 10000.0


def update_kl_coef(controller: KLController, current_kl: float, n_steps: int) -> KLController:
    """β ← β·(1 + clip(KL/target − 1, −0.2, 0.2)·n_steps/horizon); unchanged when fixed.

    Why: a proportional controller that nudges the coefficient up when the measured KL
    overshoots the target and down when it undershoots, by at most 20%·n/horizon per call.
    `current_kl` is the per-sequence KL the seed measures (k3 summed over tokens, batch mean);
    `n_steps` is the number of samples since the last update (the batch size in trlx).
    """
    if controller.target is None:
        return controller
    error = min(max(current_kl / controller.target - 1.0, -0.2), 0.2)
    factor = 1.0 + error * n_steps / controller.horizon
    return replace(controller, coef=controller.coef * factor)
