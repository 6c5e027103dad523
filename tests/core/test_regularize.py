"""Divergence in the reward / in the loss, and the KL controllers, against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from goodhartlab.core.regularize import (
    KLController,
    kl_reward_penalty,
    last_valid_index,
    loss_penalty,
    per_sequence_kl,
    place_terminal,
    sequence_log_ratio,
    token_rewards,
    update_kl_coef,
)

LOGPROBS = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -3.0, -9.0]])
REF = torch.tensor([[-1.5, -1.0, -0.5], [-0.3, -7.0, 0.0]])
MASK = torch.tensor([[True, True, True], [True, False, False]])


def test_terminal_placement_and_last_index() -> None:
    assert last_valid_index(MASK).tolist() == [2, 0]
    out = place_terminal(torch.tensor([5.0, -1.0]), MASK)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 5.0], [-1.0, 0.0, 0.0]]))


def test_token_rewards_are_k1_penalty_plus_score_at_the_end() -> None:
    out = token_rewards(torch.tensor([2.0, 3.0]), LOGPROBS, REF, MASK, coef=0.1)
    # L = [[0.5, -1, 0], [0.2, pad, pad]]
    expected = torch.tensor([[-0.05, 0.1, 2.0], [-0.02 + 3.0, 0.0, 0.0]])
    torch.testing.assert_close(out, expected)


def test_terminal_penalty_sums_the_sequence() -> None:
    out = kl_reward_penalty(LOGPROBS, REF, MASK, coef=1.0, placement="terminal")
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.5], [-0.2, 0.0, 0.0]]))
    k2 = kl_reward_penalty(LOGPROBS, REF, MASK, coef=1.0, estimator="k2")
    torch.testing.assert_close(k2, torch.tensor([[-0.125, -0.5, 0.0], [-0.02, 0.0, 0.0]]))


def test_sequence_log_ratio_and_per_sequence_kl() -> None:
    torch.testing.assert_close(sequence_log_ratio(LOGPROBS, REF, MASK), torch.tensor([-0.5, 0.2]))
    k3 = per_sequence_kl(LOGPROBS, REF, MASK)
    expected = [math.exp(-0.5) - 1 + 0.5 + math.exp(1) - 1 - 1, math.exp(-0.2) - 1 + 0.2]
    torch.testing.assert_close(k3, torch.tensor(expected))


def test_loss_penalties() -> None:
    seq = torch.tensor([-0.5, 0.2], dtype=torch.float64, requires_grad=True)
    kl = loss_penalty(seq, "kl", coef=0.5)
    k3 = [math.exp(0.5) - 1 - 0.5, math.exp(-0.2) - 1 + 0.2]
    c2 = [math.exp(-0.5) + math.exp(0.5) - 2, math.exp(0.2) + math.exp(-0.2) - 2]
    assert math.isclose(kl.loss.item(), 0.5 * sum(k3) / 2, rel_tol=1e-12)
    assert math.isclose(kl.chi2.item(), sum(c2) / 2, rel_tol=1e-12)
    sq = loss_penalty(seq, "sqrt_chi2", coef=0.5)
    assert math.isclose(sq.loss.item(), 0.5 * math.sqrt(sum(c2) / 2), rel_tol=1e-12)
    assert math.isclose(loss_penalty(seq, "chi2", coef=2.0).loss.item(), sum(c2), rel_tol=1e-12)
    # gradient of mean k3 w.r.t. L_b is (1 - e^{-L_b}) / B
    kl.loss.backward()
    expected = [0.5 * (1 - math.exp(0.5)) / 2, 0.5 * (1 - math.exp(-0.2)) / 2]
    torch.testing.assert_close(seq.grad, torch.tensor(expected, dtype=torch.float64))
    with pytest.raises(ValueError, match="divergence"):
        loss_penalty(seq, "tv", coef=1.0)  # type: ignore[arg-type]


def test_fixed_controller_never_moves() -> None:
    ctrl = KLController(coef=0.3)
    assert update_kl_coef(ctrl, current_kl=100.0, n_steps=32) == ctrl


def test_adaptive_controller_matches_trlx_formula() -> None:
    ctrl = KLController(coef=0.1, target=6.0, horizon=10000)
    up = update_kl_coef(ctrl, current_kl=12.0, n_steps=32)  # error clipped to +0.2
    assert math.isclose(up.coef, 0.1 * (1 + 0.2 * 32 / 10000))
    down = update_kl_coef(ctrl, current_kl=5.4, n_steps=32)  # error -0.1
    assert math.isclose(down.coef, 0.1 * (1 - 0.1 * 32 / 10000))
    assert update_kl_coef(ctrl, current_kl=6.0, n_steps=32).coef == 0.1
