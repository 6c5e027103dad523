"""Behaviour cloning of an env's scripted "safe" controller: the base policies ORPO regularizes
towards.

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization. Spec: specs/orpo.md §4.2. The pipeline is: run the env's
scripted controller (`ENVS[env].make_controller`, written in the env's own module) in the env (its
own actions drive the env) -> a dataset of (encoded obs, controller action) -> fit a `GymPolicy`
by maximum likelihood (minus an entropy bonus) -> save it as a policy directory that
`base_policies` can name.
"""

from __future__ import annotations

import numpy as np
import torch

from goodhartlab.envs import ENVS
from goodhartlab.models.gym_policy import GymPolicy


def collect_controller_data(
    vec_env, env_name: str, controller, steps: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Run `controller` for `steps` steps of every copy; return (obs, actions, episode true returns).

    Shape: -> obs (N*steps, obs_dim) float32, actions (N*steps,) int64 or (N*steps, K) float32
    """
    encode = ENVS[env_name].encode
    obs, _ = vec_env.reset(seed=seed)
    all_obs, all_actions, returns, running = [], [], [], np.zeros(vec_env.num_envs)
    for _ in range(steps):
        actions = controller(obs)
        all_obs.append(encode(obs))
        all_actions.append(actions)
        obs, _, terminated, truncated, info = vec_env.step(actions)
        running += info["true_reward"]
        done = np.asarray(terminated) | np.asarray(truncated)
        returns += running[done].tolist()
        running[done] = 0.0
    obs_t = torch.as_tensor(np.concatenate(all_obs))
    actions_t = torch.as_tensor(np.concatenate(all_actions))
    return obs_t, actions_t, np.asarray(returns)


def behaviour_clone(
    policy: GymPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    epochs: int,
    minibatch_size: int,
    lr: float,
    entropy_coef: float,
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
) -> list[float]:
    """Minimize -mean log pi(a_ctrl | s) - entropy_coef * H(pi(.|s)) with Adam; per-epoch losses.

    Why the entropy bonus: the spec's glucose/traffic base policies use 1, so the clone stays
    stochastic enough for its occupancy measure to overlap the learner's.
    `mask` (N, action_dim) bool, continuous families only: fit just these action entries (their
    mean over the minibatch). Why: traffic's controller gives 0 in the ~93% of slots that hold no
    bus, which the env ignores; fitting those exact zeros drives their Beta concentration up
    without bound and the loss never attends to the slots that drive a bus.
    """
    device = next(policy.parameters()).device
    obs, actions = obs.to(device), actions.to(device)
    mask = None if mask is None else mask.to(device).float()
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(obs), minibatch_size):
            idx = order[start : start + minibatch_size]
            part = None if mask is None else mask[idx]
            loss = _bc_loss(policy, obs[idx], actions[idx], entropy_coef, part)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(obs))
    return losses


def _bc_loss(
    policy: GymPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    entropy_coef: float,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """-(log-likelihood + entropy_coef * entropy): per sample, or per masked action entry."""
    if mask is None:
        logprobs, entropy = policy.log_prob_entropy(policy.dist_inputs(obs), actions)
        return -(logprobs + entropy_coef * entropy).mean()
    logprobs, entropy = policy.log_prob_entropy_per_dim(policy.dist_inputs(obs), actions)
    return -((logprobs + entropy_coef * entropy) * mask).sum() / mask.sum().clamp(min=1.0)
