"""Closed-form oracle: PPO through the shared `ppo_update` converges to the regularised optimum.

One-step bandit, K = 5, π_0 = softmax(fixed logits), known rewards r. A tabular policy samples
actions from itself, uses advantage = reward − batch mean, and is trained with `ppo_update` (T = 1).
- KL in the loss (exact categorical KL) or in the reward (k1 per sample): π_0·exp(r/β)/Z.
- χ² in the loss (exact categorical χ²): π_0·max(0, 1 + (r − λ)/(2β)) with λ from the solver.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from goodhartlab.rl.ppo_update import ForwardOut, PPOHyperparams, ppo_update
from goodhartlab.toyworld.bandit import (
    BanditWorld,
    categorical_chi2,
    categorical_kl,
    chi2_lambda,
    chi2_optimum,
    kl_optimum,
    total_variation,
)

DT = torch.float64
WORLD = BanditWorld(
    ref_logits=torch.tensor([0.5, 0.0, -0.5, 1.0, -1.0], dtype=DT),
    rewards=torch.tensor([1.0, 0.2, 0.8, -0.5, 0.0], dtype=DT),
)


def test_chi2_solver_hand_cases() -> None:
    half = torch.tensor([0.5, 0.5], dtype=DT)
    r = torch.tensor([1.0, 0.0], dtype=DT)
    # both actions kept: λ = 0.5, π = (0.625, 0.375)
    assert chi2_lambda(half, r, beta=1.0) == pytest.approx(0.5, abs=1e-10)
    torch.testing.assert_close(chi2_optimum(half, r, 1.0), torch.tensor([0.625, 0.375], dtype=DT))
    # small β: the worse action is dropped, λ = 1 − 2β
    assert chi2_lambda(half, r, beta=0.1) == pytest.approx(0.8, abs=1e-10)
    torch.testing.assert_close(chi2_optimum(half, r, 0.1), torch.tensor([1.0, 0.0], dtype=DT))


def test_closed_forms_are_optimal() -> None:
    """No random perturbation of the closed forms improves the regularised objective."""
    p0, r = WORLD.ref_probs, WORLD.rewards
    g = torch.Generator().manual_seed(0)
    cases = [(kl_optimum(p0, r, 0.5), lambda p: (p * r).sum() - 0.5 * categorical_kl(p, p0)),
             (chi2_optimum(p0, r, 0.25), lambda p: (p * r).sum() - 0.25 * categorical_chi2(p, p0))]  # fmt: skip
    for best, objective in cases:
        assert best.sum().item() == pytest.approx(1.0, abs=1e-12)
        for _ in range(200):
            other = torch.softmax(
                torch.log(best + 1e-12) + 0.3 * torch.randn(5, generator=g, dtype=DT), -1
            )
            assert objective(other) <= objective(best) + 1e-12
    assert (chi2_optimum(p0, r, 0.25) == 0).any()  # χ² drops bad actions entirely


class TabularPolicy(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, -1)

    def forward(self, minibatch: dict[str, torch.Tensor]) -> ForwardOut:
        return ForwardOut(torch.log_softmax(self.logits, -1)[minibatch["actions"]])


def train(
    penalty: Callable[[torch.Tensor], torch.Tensor] | None,
    reward_coef: float = 0.0,
    iterations: int = 250,
    n: int = 1024,
) -> torch.Tensor:
    """PPO on the bandit; `penalty(probs)` is an exact in-loss term, `reward_coef` a k1 reward."""
    policy = TabularPolicy(WORLD.ref_logits)
    ref_logprobs = torch.log_softmax(WORLD.ref_logits, -1)
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.05, 1 - i / (2 * iterations)))
    hp = PPOHyperparams(epochs=2, minibatch_size=n // 2, clip_eps=0.2, clip_eps_value=None)
    g = torch.Generator().manual_seed(0)
    extra = None
    if penalty is not None:
        extra = lambda minibatch, out: (penalty(policy.probs()), {})  # noqa: E731
    for _ in range(iterations):
        with torch.no_grad():
            actions = torch.multinomial(policy.probs(), n, replacement=True, generator=g)[:, None]
            old_logprobs = torch.log_softmax(policy.logits, -1)[actions]
            rewards = WORLD.rewards[actions] - reward_coef * (old_logprobs - ref_logprobs[actions])
        batch = {
            "actions": actions,
            "old_logprobs": old_logprobs,
            "advantages": rewards - rewards.mean(),
            "mask": torch.ones(n, 1, dtype=torch.bool),
        }
        ppo_update(batch, policy, opt, hp, g, extra)
        sched.step()
    return policy.probs().detach()


BETA_KL, BETA_CHI2 = 0.5, 0.25


def test_kl_in_the_loss_converges_to_the_kl_optimum() -> None:
    p0 = WORLD.ref_probs
    learned = train(lambda p: BETA_KL * categorical_kl(p, p0))
    target = WORLD.kl_optimum(BETA_KL)
    assert total_variation(learned, target) < 0.05
    assert total_variation(p0, target) > 0.2  # the test is not trivially passed at the start


def test_kl_in_the_reward_converges_to_the_kl_optimum() -> None:
    learned = train(None, reward_coef=BETA_KL)
    assert total_variation(learned, WORLD.kl_optimum(BETA_KL)) < 0.05


def test_chi2_in_the_loss_converges_to_the_chi2_optimum() -> None:
    p0 = WORLD.ref_probs
    learned = train(lambda p: BETA_CHI2 * categorical_chi2(p, p0))
    target = WORLD.chi2_optimum(BETA_CHI2)
    assert total_variation(learned, target) < 0.05
    # and it is a different answer from the KL optimum at the same β
    assert total_variation(target, WORLD.kl_optimum(BETA_CHI2)) > 0.1
    assert math.isfinite(float(categorical_chi2(learned, p0)))
