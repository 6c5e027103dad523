"""GAE against a brute-force loop, for LLM-shaped (mask) and gym-shaped (dones, bootstrap) input."""

from __future__ import annotations

import torch

from goodhartlab.core.advantages import gae


def brute_force(rewards, values, dones, bootstrap, gamma, lam, lengths):
    b, t_len = rewards.shape
    adv = torch.zeros(b, t_len, dtype=torch.float64)
    for i in range(b):
        n = lengths[i]
        for t in range(n):
            total, discount = 0.0, 1.0
            for k in range(t, n):
                if k + 1 < n:
                    nxt = values[i, k + 1]
                elif n == t_len:
                    nxt = bootstrap[i]
                else:
                    nxt = 0.0
                alive = 0.0 if dones[i, k] else 1.0
                delta = rewards[i, k] + gamma * alive * nxt - values[i, k]
                total += discount * delta
                if alive == 0.0:
                    break
                discount *= gamma * lam
            adv[i, t] = total
    return adv


def test_llm_episodes_with_right_padding() -> None:
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(3, 5, generator=g, dtype=torch.float64)
    values = torch.randn(3, 5, generator=g, dtype=torch.float64)
    lengths = [5, 3, 1]
    mask = torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]
    values_padded = torch.where(mask, values, torch.full_like(values, float("nan")))
    out = gae(rewards, values_padded, gamma=0.9, gae_lambda=0.8, mask=mask)
    no_dones = torch.zeros(3, 5, dtype=torch.bool)
    expected = brute_force(rewards, values, no_dones, [0.0] * 3, 0.9, 0.8, lengths)
    torch.testing.assert_close(out.advantages, expected)
    torch.testing.assert_close(out.returns, torch.where(mask, expected + values, 0.0))


def test_gym_rollouts_with_dones_and_bootstrap() -> None:
    g = torch.Generator().manual_seed(1)
    rewards = torch.randn(2, 6, generator=g, dtype=torch.float64)
    values = torch.randn(2, 6, generator=g, dtype=torch.float64)
    dones = torch.tensor([[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 1, 1]], dtype=torch.bool)
    bootstrap = torch.tensor([2.5, -1.0], dtype=torch.float64)
    out = gae(rewards, values, dones, bootstrap, gamma=0.99, gae_lambda=0.95)
    # brute force: each step's advantage sums deltas until its episode ends
    expected = torch.zeros(2, 6, dtype=torch.float64)
    for i in range(2):
        for t in range(6):
            total, discount = 0.0, 1.0
            for k in range(t, 6):
                nxt = values[i, k + 1] if k + 1 < 6 else bootstrap[i]
                alive = 0.0 if dones[i, k] else 1.0
                total += discount * (rewards[i, k] + 0.99 * alive * nxt - values[i, k])
                if not alive:
                    break
                discount *= 0.99 * 0.95
            expected[i, t] = total
    torch.testing.assert_close(out.advantages, expected)
    torch.testing.assert_close(out.returns, expected + values)


def test_lambda_one_gamma_one_gives_return_to_go_minus_value() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.3, 9.0]])
    mask = torch.tensor([[True, True, True, False]])
    out = gae(rewards, values, gamma=1.0, gae_lambda=1.0, mask=mask)
    torch.testing.assert_close(out.advantages, torch.tensor([[0.5, 0.8, 0.7, 0.0]]))
    torch.testing.assert_close(out.returns, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
