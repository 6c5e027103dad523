"""Collect rollouts from a batched gymnasium env into (envs, steps) tensors, and GAE over them.

Why a layer: ORPO (the occupancy-measure regularized PPO of Laidlaw et al., not TRL's
odds-ratio preference optimization) collects, every iteration, fresh rollouts of the current
policy and of each base policy, then reshapes the current policy's rewards before GAE. Both need
the same tensors: observations (already encoded as flat float vectors), actions, log-probs,
values, the env's training reward and both `info` rewards, and episode boundaries.

Conventions (the vector envs reset finished copies in the same step):
  * `dones[e, t]` = terminated or truncated at step t; the next row is the new episode's start.
  * A *truncated* (not terminated) episode continues in principle, so its last reward gets
    gamma * V(final_obs) added before GAE (`truncation_values` holds V(final_obs) there, 0
    elsewhere). Terminated steps bootstrap with 0.
  * `bootstrap[e]` = V(obs after the last step), used by GAE when the rollout ends mid-episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from goodhartlab.core.advantages import gae
from goodhartlab.envs import ENVS
from goodhartlab.models.gym_policy import GymPolicy


@dataclass
class GymRollout:
    """Shapes: E envs, T steps, D obs features; actions (E, T) int64 or (E, T, K) float."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor  # the env's training reward (reward_fun, scaled)
    true_rewards: torch.Tensor  # info["true_reward"], unscaled
    proxy_rewards: torch.Tensor  # info["proxy_reward"], unscaled
    dones: torch.Tensor  # bool
    truncation_values: torch.Tensor  # V(final_obs) where truncated and not terminated, else 0
    bootstrap: torch.Tensor  # (E,)
    episode_true: list[float]  # returns of episodes completed in this rollout
    episode_proxy: list[float]

    def flat(self, name: str) -> torch.Tensor:
        """A field with (E, T) merged into one leading dim. Shape: (E, T, *F) -> (E*T, *F)"""
        value = getattr(self, name)
        return value.reshape(-1, *value.shape[2:])


def _truncation_values(
    policy: GymPolicy, encode, truncated, terminated, info: dict, device
) -> torch.Tensor:
    """V(final_obs) where a copy was truncated (not terminated) this step, else 0. Shape: (N,)"""
    cut = np.asarray(truncated) & ~np.asarray(terminated)
    values = torch.zeros(len(cut), device=device)
    if cut.any():
        final = torch.as_tensor(encode(info["final_obs"]), device=device)
        values = torch.where(torch.as_tensor(cut, device=device), policy.values(final), values)
    return values


class _EpisodeReturns:
    """Running true/proxy returns per copy; an episode's sums are kept when it ends."""

    def __init__(self, num_envs: int) -> None:
        self.running = np.zeros((2, num_envs))
        self.true: list[float] = []
        self.proxy: list[float] = []

    def add(self, info: dict, done: np.ndarray) -> None:
        self.running += np.stack([info["true_reward"], info["proxy_reward"]])
        for e in np.flatnonzero(done):
            self.true.append(float(self.running[0, e]))
            self.proxy.append(float(self.running[1, e]))
            self.running[:, e] = 0.0


@torch.no_grad()
def collect(
    vec_env,
    env_name: str,
    policy: GymPolicy,
    steps: int,
    seed: int,
    generator: torch.Generator,
    greedy: bool = False,
) -> GymRollout:
    """Reset `vec_env` with `seed` and step it `steps` times with `policy` sampling from `generator`.

    Each call starts fresh episodes, so an iteration's data depends only on (weights, seed,
    generator state): that makes resume exact without saving env state.
    """
    encode = ENVS[env_name].encode
    device = next(policy.parameters()).device
    obs_np, _ = vec_env.reset(seed=seed)
    obs = torch.as_tensor(encode(obs_np), device=device)
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in GymRollout.__dataclass_fields__}
    episodes = _EpisodeReturns(vec_env.num_envs)
    for _ in range(steps):
        dist_inputs = policy.dist_inputs(obs)
        actions = policy.sample(dist_inputs, generator, greedy)
        logprobs, _ = policy.log_prob_entropy(dist_inputs, actions)
        next_np, rewards, terminated, truncated, info = vec_env.step(actions.cpu().numpy())
        done = np.asarray(terminated) | np.asarray(truncated)
        trunc_values = _truncation_values(policy, encode, truncated, terminated, info, device)
        episodes.add(info, done)
        step_cols = {
            "obs": obs,
            "actions": actions,
            "logprobs": logprobs,
            "values": policy.values(obs),
            "rewards": rewards,
            "true_rewards": info["true_reward"],
            "proxy_rewards": info["proxy_reward"],
            "dones": done,
            "truncation_values": trunc_values,
        }
        for key, value in step_cols.items():
            cols[key].append(torch.as_tensor(value, device=device))
        obs = torch.as_tensor(encode(next_np), device=device)
    stacked = {
        k: torch.stack(v, dim=1).float() if k not in ("actions", "dones") else torch.stack(v, 1)
        for k, v in cols.items()
        if v
    }
    return GymRollout(
        **stacked,
        bootstrap=policy.values(obs),
        episode_true=episodes.true,
        episode_proxy=episodes.proxy,
    )


def rollout_advantages(
    rollout: GymRollout,
    rewards: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the time axis of each env, with truncation bootstrapping folded into rewards.

    `rewards` is the (possibly shaped) training reward; r_t + gamma * V(final_obs) at a
    truncation makes the truncated episode's last step look like a cut, not an end.

    Shape: rewards (E, T) -> advantages (E, T), returns (E, T)
    """
    augmented = rewards + gamma * rollout.truncation_values
    out = gae(
        augmented,
        rollout.values,
        rollout.dones,
        rollout.bootstrap,
        gamma=gamma,
        gae_lambda=gae_lambda,
    )
    return out.advantages, out.returns
