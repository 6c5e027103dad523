"""PPO per-element losses against hand-computed numbers."""

from __future__ import annotations

import math

import torch

from goodhartlab.core.ppo import (
    approx_kl,
    clip_fraction,
    entropy_from_logits,
    policy_loss,
    value_loss,
)

LN = math.log


def test_policy_loss_clips_pessimistically() -> None:
    old = torch.zeros(4)
    # ratios 1.5, 1.5, 0.5, 1.1 with eps 0.2
    new = torch.tensor([LN(1.5), LN(1.5), LN(0.5), LN(1.1)])
    adv = torch.tensor([2.0, -2.0, 1.0, -1.0])
    out = policy_loss(new, old, adv, clip_eps=0.2)
    # A>0, ratio 1.5: max(-3, -2.4) = -2.4 ; A<0, ratio 1.5: max(3, 2.4) = 3
    # A>0, ratio 0.5: max(-0.5, -0.8) = -0.5 ; inside the clip: -A*ratio = 1.1
    torch.testing.assert_close(out, torch.tensor([-2.4, 3.0, -0.5, 1.1]))


def test_policy_loss_gradient_vanishes_when_clipped() -> None:
    new = torch.tensor([LN(1.5), LN(1.1)], requires_grad=True)
    policy_loss(new, torch.zeros(2), torch.tensor([2.0, 2.0]), 0.2).sum().backward()
    torch.testing.assert_close(new.grad, torch.tensor([0.0, -2.0 * 1.1]))


def test_value_loss_clipped_and_unclipped() -> None:
    values = torch.tensor([1.0, 0.0, 0.5])
    old = torch.tensor([0.0, 0.0, 0.4])
    returns = torch.tensor([0.0, 1.0, 0.0])
    # row 0: unclipped 1, clipped V=0.2 -> 0.04, max 1 -> 0.5
    # row 1: both (0-1)^2 = 1 -> 0.5 ; row 2: unclipped 0.25, clipped 0.5 (in range) -> 0.125
    torch.testing.assert_close(
        value_loss(values, old, returns, 0.2), torch.tensor([0.5, 0.5, 0.125])
    )
    # clipping can make the loss larger: V moves toward R past the clip
    out = value_loss(torch.tensor([0.9]), torch.tensor([0.0]), torch.tensor([1.0]), 0.2)
    torch.testing.assert_close(out, torch.tensor([0.5 * 0.8**2]))
    out = value_loss(torch.tensor([0.9]), torch.tensor([0.0]), torch.tensor([1.0]), None)
    torch.testing.assert_close(out, torch.tensor([0.5 * 0.1**2]))


def test_entropy_from_logits() -> None:
    logits = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [0.0, -1e9, -1e9, -1e9], [LN(3.0), 0.0, -1e9, -1e9]]
    )
    expected = torch.tensor([LN(4.0), 0.0, -(0.75 * LN(0.75) + 0.25 * LN(0.25))])
    torch.testing.assert_close(entropy_from_logits(logits), expected)


def test_clip_fraction_and_approx_kl() -> None:
    new = torch.tensor([LN(1.5), LN(1.1), LN(0.7)])
    old = torch.zeros(3)
    torch.testing.assert_close(clip_fraction(new, old, 0.2), torch.tensor([1.0, 0.0, 1.0]))
    expected = torch.tensor([0.5 - LN(1.5), 0.1 - LN(1.1), -0.3 - LN(0.7)])
    torch.testing.assert_close(approx_kl(new, old), expected)
    assert (approx_kl(new, old) >= 0).all()
