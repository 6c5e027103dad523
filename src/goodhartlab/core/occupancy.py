"""ORPO: occupancy-measure (OM) regularization through a discriminator and a per-step penalty.

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al., "Correlated
Proxies"), not TRL's odds-ratio preference optimization. See specs/orpo.md §1.

Why a discriminator: the divergence between the current policy's state(-action) occupancy measure
mu_pi and the base policy's mu_b cannot be computed from samples directly. A classifier d(x) trained
on samples of both turns into a per-sample estimate of the log density ratio (or of a critic), and
each divergence becomes a per-step "distance" delta(x) whose batch mean under mu_pi estimates the
divergence. That distance, times a coefficient, is subtracted from the env reward (reward shaping,
§1.4), so GAE spreads it over time like any other reward.

Conventions: `scores` are discriminator outputs d(x) (one scalar per sample); `is_base` is a bool
tensor, True where the sample comes from the base policy and False where it comes from the current
policy. The occupancy measure is the empirical, undiscounted one: every sampled step counts once.

Departures from the seed code (documented where they happen):
- an empty group (a minibatch with no current or no base samples) contributes 0 to the balanced
  loss, as in the seed, instead of producing NaN;
- sqrt_chi2 keeps the seed's (and the paper's) missing factor 1/2 of the gradient of sqrt(chi2), so
  the §4.3 coefficient grids transfer unchanged (the effective coefficient is twice the theory's);
- non-finite distances count as 0 in the shaped reward, as in the seed (`om_shaping_reward`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

OM_DIVERGENCES = ("kl", "chi2", "sqrt_chi2", "tv", "wasserstein")
OmDivergence = Literal["kl", "chi2", "sqrt_chi2", "tv", "wasserstein"]

LOGISTIC_DIVERGENCES = ("kl", "chi2", "sqrt_chi2")
TV_SCORE_PENALTY = 0.01  # the seed's small d^2 penalty that keeps tv scores bounded
GRAD_NORM_EPS = 1e-10  # inside the sqrt of the gradient norm, so the penalty is differentiable at 0
TRIM_FRAC = 0.01  # sqrt_chi2 normalizer: drop int(0.01 * N) samples from each end


def _check_divergence(divergence: str) -> None:
    if divergence not in OM_DIVERGENCES:
        raise ValueError(f"unknown OM divergence {divergence!r}; choose from {OM_DIVERGENCES}")


def discriminator_loss(
    scores: torch.Tensor, is_base: torch.Tensor, divergence: OmDivergence
) -> torch.Tensor:
    """Per-sample discriminator loss for one OM divergence (specs/orpo.md §1.3), to be minimized.

    - kl, chi2, sqrt_chi2 (logistic): softplus(-d) on current samples, softplus(d) on base ones.
      With group means (see `balanced_mean`) the minimizer is d*(x) = log(mu_pi(x) / mu_b(x)).
    - tv: tanh(-d) on current, tanh(d) on base, plus 0.01 * d^2 on both (keeps d bounded); the
      minimizer has sign(d*) = sign(mu_pi - mu_b).
    - wasserstein (critic): -d on current, +d on base; the Lipschitz constraint comes from weight
      clipping or `gradient_penalty`, added by the caller.

    Why per sample: reductions stay explicit; `balanced_mean` turns this into the seed's loss
    mean_cur(.) + mean_base(.), which weights both classes equally whatever their sizes.

    Shape: scores (B,), is_base (B,) bool -> (B,)
    """
    _check_divergence(divergence)
    sign = torch.where(is_base, 1.0, -1.0).to(scores.dtype)
    signed = sign * scores
    if divergence in LOGISTIC_DIVERGENCES:
        return F.softplus(signed)
    if divergence == "tv":
        return torch.tanh(signed) + TV_SCORE_PENALTY * scores.square()
    return signed


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Per-sample WGAN-GP term (||grad_x d(x)|| - 1)^2 at the data points themselves (§1.3).

    Why: a soft 1-Lipschitz constraint for the wasserstein critic, an alternative to clipping the
    weights to +-0.01. As in the seed it is taken at the sampled points of each group (not at
    interpolates) with norm sqrt(sum g^2 + 1e-10); add `grad_penalty_weight` times it to the
    per-sample loss before `balanced_mean`. Needs `inputs.requires_grad` and a discriminator
    whose output for row i depends only on row i (true for an MLP); the graph is kept so the
    penalty can be backpropagated.

    Shape: scores (B,), inputs (B, *F) -> (B,)
    """
    (grads,) = torch.autograd.grad(
        outputs=scores.sum(), inputs=inputs, create_graph=True, retain_graph=True
    )
    grad_norm = torch.sqrt(grads.flatten(1).square().sum(dim=1) + GRAD_NORM_EPS)
    return (grad_norm - 1.0).square()


def balanced_mean(per_sample: torch.Tensor, is_base: torch.Tensor) -> torch.Tensor:
    """Mean over the current-policy samples plus mean over the base-policy samples.

    Why: the seed averages each class separately, so the optimal logistic discriminator is the
    plain log ratio log(mu_pi / mu_b) whatever the class sizes in a shuffled minibatch. A group
    with no samples contributes 0 (as in the seed) rather than NaN.

    Shape: per_sample (B,), is_base (B,) bool -> ()
    """
    total = per_sample.new_zeros(())
    for group in (~is_base, is_base):
        count = group.sum()
        if count > 0:
            total = total + per_sample[group].sum() / count
    return total


def trimmed_mean(values: torch.Tensor, trim_frac: float = TRIM_FRAC) -> torch.Tensor:
    """Mean after dropping int(trim_frac * N) of the smallest and of the largest values.

    Why: the sqrt_chi2 normalizer (an estimate of chi2 itself) is dominated by a few huge
    exp(d) - 1 values; trimming 1% from each end makes it robust. Non-finite values sort to
    the ends, so they are dropped first when they are few.

    Shape: values (N,) -> ()
    """
    n = values.numel()
    k = int(trim_frac * n)
    if n - 2 * k <= 0:
        raise ValueError(f"trimmed_mean: trimming {k} from each end leaves no value of {n}")
    ordered = torch.sort(values.flatten()).values
    return ordered[k : n - k].mean()


def om_distance(
    scores: torch.Tensor,
    divergence: OmDivergence,
    base_score_mean: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-step distance delta(x) for the current policy's samples (specs/orpo.md §1.3).

    - kl: delta = d. At d* = log ratio, E_{mu_pi}[delta] = KL(mu_pi || mu_b).
    - chi2: delta = exp(d) - 1 = ratio - 1; E_{mu_pi}[delta] = chi2(mu_pi || mu_b).
    - sqrt_chi2: delta = (exp(d) - 1) / sqrt(C) with C the 1%-trimmed mean of exp(d) - 1 over
      this batch (an estimate of chi2); delta = exp(d) - 1 when C <= 0. This is the per-sample
      gradient of sqrt(chi2) = grad chi2 / (2 sqrt(chi2)) without the 1/2, as in the seed and the
      paper, so the §4.3 coefficients keep their meaning (the effective coefficient is doubled).
      `scores` must therefore be the whole current batch, not a chunk.
    - tv: delta = sign(d).
    - wasserstein: delta = d, minus `base_score_mean` (the mean critic score on base samples) when
      given (the seed's `wasserstein_distance_subtract_mean_safe_policy_score`, off by default).

    Why: the batch mean of delta estimates the divergence (the seed logs it as
    `occupancy_measure_<divergence>`), and c * delta summed along a trajectory is the shaping.
    The result is detached: the policy sees it as reward, never as a differentiable loss.

    Shape: scores (T,) -> (T,)
    """
    _check_divergence(divergence)
    d = scores.detach()
    if divergence == "kl":
        return d
    if divergence in ("chi2", "sqrt_chi2"):
        ratio_minus_one = torch.expm1(d)
        if divergence == "chi2":
            return ratio_minus_one
        normalizer = trimmed_mean(ratio_minus_one)
        if bool(normalizer > 0):
            return ratio_minus_one / normalizer.sqrt()
        return ratio_minus_one
    if divergence == "tv":
        return torch.sign(d)
    if base_score_mean is None:
        return d
    return d - torch.as_tensor(base_score_mean, dtype=d.dtype, device=d.device)


def om_shaping_reward(
    distances: torch.Tensor,
    coefs: Sequence[float] | torch.Tensor,
    reward_clip: float = math.inf,
) -> torch.Tensor:
    """Reward term r_D = clip(-sum_i c_i * delta_i, -clip, +clip) added to each env reward (§1.4).

    Why: ORPO regularizes through the reward, not the loss: r' = r + r_D, then GAE and value
    targets are recomputed from r'. One row of `distances` per base policy i with its own
    coefficient c_i; a negative c_i rewards moving *away* from that policy's occupancy measure
    (regularizing away from a reward-hacking policy, §1.6). Policies with c_i == 0 are skipped
    (so an infinite distance cannot turn into 0 * inf = NaN), and non-finite distances count as
    0, as in the seed. Note what that means: a sample the discriminator scores as infinitely far
    gets no penalty (in float32 that needs d > 88 for chi2, which a logistic discriminator
    rarely reaches). `reward_clip` is per env: `EnvInfo.discriminator_reward_clip`.

    Shape: distances (K, T), coefs (K,) -> (T,)
    """
    if distances.ndim != 2:
        raise ValueError(f"distances must be (K, T), got shape {tuple(distances.shape)}")
    coefs_t = torch.as_tensor(coefs, dtype=distances.dtype, device=distances.device)
    if coefs_t.shape != distances.shape[:1]:
        raise ValueError(
            f"need one coefficient per base policy: {distances.shape[0]} rows, got {coefs_t.numel()}"
        )
    finite = torch.where(torch.isfinite(distances), distances, torch.zeros_like(distances))
    active = coefs_t != 0
    penalty = (coefs_t[active, None] * finite[active]).sum(dim=0)
    return torch.clamp(-penalty, min=-reward_clip, max=reward_clip)


def coef_reward_scale(divergence: str, reward_std: float, kl_reward_scale: float) -> float:
    """What a scale-free coefficient c is multiplied by to be in reward units (§4.3).

    Why: the chi2 theory gives lambda = sigma_R * sqrt(1 - r^2), so coefficients are comparable
    across envs only after multiplying by the base policy's per-step reward std sigma_R (the
    sqrt_chi2 sweeps); the KL sweeps (OM-KL and AD-KL) used a per-step reward scale instead. The
    spec publishes no scale for chi2, tv and wasserstein; they take sigma_R too, as the ORPO
    results table (docs/orpo_results.md) did. The per-env numbers live in `envs.ENVS`.
    """
    _check_divergence(divergence)
    return kl_reward_scale if divergence == "kl" else reward_std
