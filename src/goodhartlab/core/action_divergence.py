"""Closed-form per-state divergences between two action distributions (ORPO's AD regularizer).

Why: the action-distribution (AD) baseline of ORPO (specs/orpo.md §1.5) adds
(1 / (1 - gamma)) * coef * mean_s D(pi(.|s) || pi_b(.|s)) to the PPO loss, where pi_b is the
frozen base policy evaluated on the current batch's states. Every function here returns one value
per state, differentiable in the current policy's parameters; the caller reduces (mean over the
batch) and scales.

Direction: the first distribution is P (the current policy pi), the second Q (the base policy
pi_b), and the result is D(P || Q). Both divergences are asymmetric; for the reverse direction
swap the arguments.

Supported families and their inputs (RLlib's action-distribution-input layouts):
- categorical: logits (..., A); -inf logits (masked actions) are allowed.
- diagonal Gaussian: mean (..., K), log_std (..., K), summed/producted over K.
- Beta (traffic and glucose policies): alpha (..., K), beta (..., K) > 0. KL and chi2 are
  invariant under the affine map to the action interval, so the unit-interval formulas apply.

chi2 between Gaussians (or Betas) is infinite when P has heavier tails than Q allows
(sigma_P^2 >= 2 sigma_Q^2 in some dimension); those entries are +inf, with gradients that stay
finite (0) so the rest of the batch still trains. `chi2_or_kl` replaces them by the KL, as the seed
does, and `sqrt_chi2` floors chi2 at 1e-4 before the square root (the sqrt has an infinite slope
at 0).
"""

from __future__ import annotations

from typing import Literal

import torch

AD_DIVERGENCES = ("kl", "chi2", "sqrt_chi2")
AD_FAMILIES = ("categorical", "gaussian", "beta")
SQRT_CHI2_FLOOR = 1e-4

AdDivergence = Literal["kl", "chi2", "sqrt_chi2"]
AdFamily = Literal["categorical", "gaussian", "beta"]


def categorical_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) = sum_a p_a (log p_a - log q_a) for categoricals given by logits.

    Why: the standard AD regularizer (RLlib's `dist.kl`). Terms with p_a = 0 count 0; a q_a = 0
    where p_a > 0 gives +inf.

    Shape: logits (..., A), ref_logits (..., A) -> (...)
    """
    logp = torch.log_softmax(logits, dim=-1)
    logq = torch.log_softmax(ref_logits, dim=-1)
    support = logp > -torch.inf
    logp_safe = torch.where(support, logp, torch.zeros_like(logp))
    logq_safe = torch.where(support, logq, torch.zeros_like(logq))
    terms = torch.where(support, logp_safe.exp() * (logp_safe - logq_safe), torch.zeros_like(logp))
    return terms.sum(dim=-1)


def categorical_chi2(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """chi2(P || Q) = sum_a (p_a - q_a)^2 / q_a for categoricals given by logits, 0/0 = 0.

    Why: the AD chi2 regularizer of §1.5. The (p - q)^2 / q form is non-negative term by term
    (sum p^2/q - 1 can round below 0 when P ~ Q). q_a = 0 with p_a > 0 gives +inf.

    Shape: logits (..., A), ref_logits (..., A) -> (...)
    """
    p = torch.softmax(logits, dim=-1)
    q = torch.softmax(ref_logits, dim=-1)
    q_pos = q > 0
    q_safe = torch.where(q_pos, q, torch.ones_like(q))
    ratio_terms = (p - q).square() / q_safe
    inf = torch.full_like(p, torch.inf)
    terms = torch.where(q_pos, ratio_terms, torch.where(p > 0, inf, torch.zeros_like(p)))
    return terms.sum(dim=-1)


def gaussian_kl(
    mean: torch.Tensor, log_std: torch.Tensor, ref_mean: torch.Tensor, ref_log_std: torch.Tensor
) -> torch.Tensor:
    """KL(N(m1, s1^2) || N(m2, s2^2)) for diagonal Gaussians, summed over action dims.

    Per dim: log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2.

    Shape: mean, log_std, ref_mean, ref_log_std (..., K) -> (...)
    """
    var_ratio = torch.exp(2.0 * (log_std - ref_log_std))
    mean_term = (mean - ref_mean).square() * torch.exp(-2.0 * ref_log_std)
    return (ref_log_std - log_std + 0.5 * (var_ratio + mean_term - 1.0)).sum(dim=-1)


def gaussian_chi2(
    mean: torch.Tensor, log_std: torch.Tensor, ref_mean: torch.Tensor, ref_log_std: torch.Tensor
) -> torch.Tensor:
    """chi2(P || Q) = integral p^2 / q - 1 for diagonal Gaussians P = N(m1, s1^2), Q = N(m2, s2^2).

    The integral factorizes over dims; per dim it is finite only when 2 s2^2 > s1^2, and then
        integral p^2 / q = s2^2 / (s1 sqrt(2 s2^2 - s1^2)) * exp((m1 - m2)^2 / (2 s2^2 - s1^2)).
    We sum the logs of those factors and return expm1 of the sum (accurate near P = Q). Entries
    with any dim where 2 s2^2 <= s1^2 are +inf (p^2 / q grows without bound in the tails); their
    gradient is 0 rather than NaN. A finite but huge value can still overflow to inf.

    Shape: mean, log_std, ref_mean, ref_log_std (..., K) -> (...)
    """
    var = torch.exp(2.0 * log_std)
    ref_var = torch.exp(2.0 * ref_log_std)
    gap = 2.0 * ref_var - var
    finite = gap > 0
    gap_safe = torch.where(finite, gap, torch.ones_like(gap))
    log_factor = (
        2.0 * ref_log_std
        - log_std
        - 0.5 * torch.log(gap_safe)
        + (mean - ref_mean).square() / gap_safe
    )
    chi2 = torch.expm1(log_factor.sum(dim=-1))
    return torch.where(finite.all(dim=-1), chi2, torch.full_like(chi2, torch.inf))


def beta_kl(
    alpha: torch.Tensor, beta: torch.Tensor, ref_alpha: torch.Tensor, ref_beta: torch.Tensor
) -> torch.Tensor:
    """KL(Beta(a1, b1) || Beta(a2, b2)), summed over action dims.

    Per dim: ln B(a2, b2) - ln B(a1, b1) + (a1 - a2) psi(a1) + (b1 - b2) psi(b1)
    + (a2 - a1 + b2 - b1) psi(a1 + b1), with B the Beta function and psi the digamma.

    Shape: alpha, beta, ref_alpha, ref_beta (..., K) -> (...)
    """
    dg = torch.special.digamma
    per_dim = (
        _log_beta_fn(ref_alpha, ref_beta)
        - _log_beta_fn(alpha, beta)
        + (alpha - ref_alpha) * dg(alpha)
        + (beta - ref_beta) * dg(beta)
        + (ref_alpha - alpha + ref_beta - beta) * dg(alpha + beta)
    )
    return per_dim.sum(dim=-1)


def beta_chi2(
    alpha: torch.Tensor, beta: torch.Tensor, ref_alpha: torch.Tensor, ref_beta: torch.Tensor
) -> torch.Tensor:
    """chi2(Beta(a1, b1) || Beta(a2, b2)) over independent dims, clipped at >= 0.

    integral p^2 / q = B(2 a1 - a2, 2 b1 - b2) B(a2, b2) / B(a1, b1)^2 per dim, finite only when
    2 a1 > a2 and 2 b1 > b2; otherwise +inf (zero gradient). The clip at 0 matches the seed and
    removes rounding below 0 near P = Q.

    Shape: alpha, beta, ref_alpha, ref_beta (..., K) -> (...)
    """
    a_new = 2.0 * alpha - ref_alpha
    b_new = 2.0 * beta - ref_beta
    finite = (a_new > 0) & (b_new > 0)
    a_safe = torch.where(finite, a_new, torch.ones_like(a_new))
    b_safe = torch.where(finite, b_new, torch.ones_like(b_new))
    log_factor = (
        _log_beta_fn(a_safe, b_safe)
        + _log_beta_fn(ref_alpha, ref_beta)
        - 2.0 * _log_beta_fn(alpha, beta)
    )
    chi2 = torch.expm1(log_factor.sum(dim=-1)).clamp(min=0.0)
    return torch.where(finite.all(dim=-1), chi2, torch.full_like(chi2, torch.inf))


def _log_beta_fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


def chi2_or_kl(chi2: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """chi2 where it is finite, KL where chi2 is infinite (the seed's fallback, §1.5).

    Why: one state with an infinite chi2 would make the whole batch loss infinite; the KL is a
    finite stand-in that still pulls pi towards pi_b there. Gradients flow only through the
    chosen branch.

    Shape: chi2 (...), kl (...) -> (...)
    """
    return torch.where(torch.isinf(chi2), kl, chi2)


def sqrt_chi2(chi2: torch.Tensor, floor: float = SQRT_CHI2_FLOOR) -> torch.Tensor:
    """sqrt(max(chi2, floor)): the AD sqrt_chi2 divergence of §1.5.

    Why: the chi2 theory bounds the proxy/true gap by sqrt(chi2); the floor keeps the gradient of
    the square root finite when pi = pi_b (there it is 0 instead of infinite).

    Shape: chi2 (...) -> (...)
    """
    return torch.sqrt(torch.clamp(chi2, min=floor))


def split_dist_inputs(dist_inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split RLlib-style inputs (..., 2K) = [mean | log_std] or [alpha | beta] into two (..., K)."""
    if dist_inputs.shape[-1] % 2 != 0:
        raise ValueError(f"need an even last dim for [loc | scale] inputs, got {dist_inputs.shape}")
    first, second = dist_inputs.chunk(2, dim=-1)
    return first, second


def action_divergence(
    dist_inputs: torch.Tensor,
    ref_dist_inputs: torch.Tensor,
    family: AdFamily,
    divergence: AdDivergence,
) -> torch.Tensor:
    """D(pi(.|s) || pi_b(.|s)) per state from action-distribution inputs (§1.5).

    `dist_inputs` are logits (categorical), [mean | log_std] (gaussian) or [alpha | beta] (beta,
    both already > 0). chi2 and sqrt_chi2 fall back to the KL where chi2 is infinite, as in the
    seed. Multiply the batch mean by coef / (1 - gamma) to get the loss term.

    Shape: dist_inputs (B, D), ref_dist_inputs (B, D) -> (B,)
    """
    if divergence not in AD_DIVERGENCES:
        raise ValueError(f"unknown AD divergence {divergence!r}; choose from {AD_DIVERGENCES}")
    if family == "categorical":
        kl = categorical_kl(dist_inputs, ref_dist_inputs)
        chi2_fn = categorical_chi2
        args: tuple[torch.Tensor, ...] = (dist_inputs, ref_dist_inputs)
    elif family in ("gaussian", "beta"):
        args = (*split_dist_inputs(dist_inputs), *split_dist_inputs(ref_dist_inputs))
        kl_fn, chi2_fn = (
            (gaussian_kl, gaussian_chi2) if family == "gaussian" else (beta_kl, beta_chi2)
        )
        kl = kl_fn(*args)
    else:
        raise ValueError(
            f"unknown action distribution family {family!r}; choose from {AD_FAMILIES}"
        )
    if divergence == "kl":
        return kl
    chi2 = chi2_or_kl(chi2_fn(*args), kl)
    return chi2 if divergence == "chi2" else sqrt_chi2(chi2)
