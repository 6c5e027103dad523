"""The bandit world: one step, K actions, a known reference policy π_0 and rewards r.

Why: it is the test oracle for regularised policy optimisation (DESIGN.md §3). Its optima are
known in closed form, so PPO with a regulariser must converge to them:
- KL:  argmax_π E_π[r] − β·KL(π‖π_0)  = π_0·exp(r/β)/Z.
- χ²:  argmax_π E_π[r] − β·χ²(π‖π_0)  = π_0·max(0, 1 + (r − λ)/(2β)), with λ such that the
  weights sum to 1 (stationarity r_a − 2β·π_a/π_0,a = const on the support; actions whose
  reward is too low get probability exactly 0, unlike the KL optimum).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def kl_optimum(ref_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """π_0·exp(r/β)/Z, computed in log space.

    Shape: ref_probs, rewards (K,) -> (K,)
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return torch.softmax(torch.log(ref_probs) + rewards / beta, dim=-1)


def _chi2_weights(ref_probs: torch.Tensor, rewards: torch.Tensor, beta: float, lam: float):
    return ref_probs * torch.clamp(1.0 + (rewards - lam) / (2.0 * beta), min=0.0)


def chi2_lambda(
    ref_probs: torch.Tensor, rewards: torch.Tensor, beta: float, tol: float = 1e-13
) -> float:
    """λ with Σ_a π_0,a·max(0, 1 + (r_a − λ)/(2β)) = 1, by bisection.

    Why: the sum is continuous and decreasing in λ; it is ≥ 1 at λ = E_π0[r] (all weights
    positive there sum to exactly 1, clamping only adds) and 0 at λ = max r + 2β.

    Shape: ref_probs, rewards (K,) -> float
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    p, r = ref_probs.double(), rewards.double()
    low, high = float((p * r).sum()), float(r.max()) + 2.0 * beta
    while high - low > tol * max(1.0, abs(high)):
        mid = 0.5 * (low + high)
        if float(_chi2_weights(p, r, beta, mid).sum()) > 1.0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def chi2_optimum(ref_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """π_0·max(0, 1 + (r − λ)/(2β)), renormalised to absorb the solver's last-digit error.

    Shape: ref_probs, rewards (K,) -> (K,)
    """
    weights = _chi2_weights(ref_probs, rewards, beta, chi2_lambda(ref_probs, rewards, beta))
    return weights / weights.sum()


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) = Σ p·log(p/q), with 0·log 0 = 0.

    Shape: p, q (..., K) -> (...)
    """
    terms = p * (torch.log(p) - torch.log(q))
    return torch.where(p > 0, terms, torch.zeros_like(terms)).sum(dim=-1)


def categorical_chi2(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """χ²(p‖q) = Σ p²/q − 1.

    Shape: p, q (..., K) -> (...)
    """
    return (p**2 / q).sum(dim=-1) - 1.0


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """½ Σ |p − q|.

    Shape: p, q (..., K) -> (...)
    """
    return 0.5 * (p - q).abs().sum(dim=-1)


@dataclass(frozen=True)
class BanditWorld:
    """A K-armed one-step bandit: reference logits (π_0 = softmax) and deterministic rewards."""

    ref_logits: torch.Tensor
    rewards: torch.Tensor

    @property
    def ref_probs(self) -> torch.Tensor:
        return torch.softmax(self.ref_logits, dim=-1)

    def expected_reward(self, probs: torch.Tensor) -> torch.Tensor:
        return (probs * self.rewards).sum(dim=-1)

    def kl_optimum(self, beta: float) -> torch.Tensor:
        return kl_optimum(self.ref_probs, self.rewards, beta)

    def chi2_optimum(self, beta: float) -> torch.Tensor:
        return chi2_optimum(self.ref_probs, self.rewards, beta)
