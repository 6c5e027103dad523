"""Gym rollout collection: shapes, episode bookkeeping, truncation bootstrap, GAE vs a loop."""

from __future__ import annotations

import numpy as np
import torch

from goodhartlab.envs import ENVS
from goodhartlab.models.gym_policy import GymPolicy, PolicySpec
from goodhartlab.rollout.gym import GymRollout, collect, rollout_advantages


def _tomato_rollout(envs: int = 3, steps: int = 10, horizon: int = 4) -> GymRollout:
    torch.manual_seed(0)
    policy = GymPolicy(PolicySpec(36, 4, "categorical", [8]))
    vec = ENVS["tomato"].make_vec(envs, horizon=horizon)
    return collect(vec, "tomato", policy, steps, seed=0, generator=torch.Generator().manual_seed(1))


def test_collect_shapes_and_episode_bookkeeping() -> None:
    r = _tomato_rollout()
    assert r.obs.shape == (3, 10, 36)
    for name in ("actions", "logprobs", "values", "rewards", "true_rewards", "dones"):
        assert getattr(r, name).shape == (3, 10), name
    assert r.bootstrap.shape == (3,)
    assert r.dones.dtype == torch.bool and r.actions.dtype == torch.int64
    # horizon 4: every copy truncates at steps 3 and 7 -> 2 completed episodes per copy
    expected = torch.zeros(3, 10, dtype=torch.bool)
    expected[:, [3, 7]] = True
    assert torch.equal(r.dones, expected)
    assert len(r.episode_true) == 6
    # truncation values are V(final obs) exactly at the truncations, 0 elsewhere
    assert torch.all(r.truncation_values[~expected] == 0)
    assert torch.all(r.truncation_values[expected] != 0)
    # the returned episode sums are the sums of the logged per-step true rewards
    np.testing.assert_allclose(
        sorted(r.episode_true),
        sorted(r.true_rewards[:, :8].reshape(3, 2, 4).sum(-1).flatten()),
        rtol=1e-6,
    )
    # proxy run: the training reward is the proxy reward
    assert torch.allclose(r.rewards, r.proxy_rewards)
    assert r.flat("obs").shape == (30, 36)


def test_collect_is_reproducible_for_fixed_seeds() -> None:
    a, b = _tomato_rollout(), _tomato_rollout()
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)


def test_gae_matches_a_brute_force_loop_with_truncation() -> None:
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0, 2.0, 3.0, -1.0], [0.5, 0.0, 1.0, 2.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 0.3], [1.0, 0.0, -1.0, 0.5]])
    dones = torch.tensor([[False, True, False, False], [False, False, False, True]])
    trunc = torch.tensor([[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # env 0 cut at t=1
    bootstrap = torch.tensor([4.0, 7.0])
    z = torch.zeros(2, 4)
    r = GymRollout(z, z.long(), z, values, z, z, z, dones, trunc, bootstrap, [], [])
    adv, ret = rollout_advantages(r, rewards, gamma, lam)
    assert adv.shape == ret.shape == (2, 4)
    expected = torch.zeros(2, 4)
    for e in range(2):
        running = 0.0
        for t in reversed(range(4)):
            nxt = bootstrap[e] if t == 3 else values[e, t + 1]
            alive = 0.0 if dones[e, t] else 1.0
            delta = rewards[e, t] + gamma * trunc[e, t] + gamma * nxt * alive - values[e, t]
            running = delta + gamma * lam * alive * running
            expected[e, t] = running
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)
