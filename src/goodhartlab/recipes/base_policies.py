"""Scripted "safe" controllers and behaviour cloning: the base policies ORPO regularizes towards.

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization. Spec: specs/orpo.md §4.2. The pipeline is: run a scripted
controller in the env (its own actions drive the env) -> a dataset of (encoded obs, controller
action) -> fit a `GymPolicy` by maximum likelihood (minus an entropy bonus) -> save it as a policy
directory that `base_policies` can name.

Controllers (vectorized over the copies of a vector env):
  * tomato: walk to the nearest dry tomato (shortest path on the board); with probability
    `eps` a uniformly random action instead (the spec's categorical_eps smoothing). Not the
    spec's tomato base (a 3-iteration PPO on the true reward, built by the orpo recipe), but a
    clean target to test cloning with.
  * glucose: a PID on CGM around 120 mg/dL (kp -1e-4, ki -5e-7, kd -1e-2, per the spec) on top of
    the ideal basal rate, plus N(0, 0.003) action noise, clipped to [0, 0.1].
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from goodhartlab.models.gym_policy import GymPolicy
from goodhartlab.rollout.gym import OBS_ENCODERS

PID_SETPOINT, PID_KP, PID_KI, PID_KD, PID_NOISE = 120.0, -1e-4, -5e-7, -1e-2, 0.003


def _board_distances() -> np.ndarray:
    """Shortest-path length between every pair of tomato-board cells (BFS). Shape: (26, 26)"""
    from goodhartlab.envs.tomato import N_CELLS, NEXT_CELL

    dist = np.full((N_CELLS, N_CELLS), N_CELLS * 2, np.int64)
    for source in range(N_CELLS):
        dist[source, source] = 0
        queue = deque([source])
        while queue:
            cell = queue.popleft()
            for nxt in NEXT_CELL[cell, :4]:
                if dist[source, nxt] > dist[source, cell] + 1:
                    dist[source, nxt] = dist[source, cell] + 1
                    queue.append(nxt)
    return dist


class TomatoController:
    """Greedy walk to the nearest dry tomato (ties: lowest action index)."""

    def __init__(self, eps: float = 0.0, seed: int = 0) -> None:
        from goodhartlab.envs.tomato import N_TOMATOES, NEXT_CELL

        self.next_cell = NEXT_CELL[:, :4]
        self.to_tomato = _board_distances()[:, :N_TOMATOES]  # (26, 9): tomato i is cell i
        self.eps = eps
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: dict) -> np.ndarray:
        """Shape: obs agent (N,), tomatoes (N, 10) -> actions (N,) int64"""
        agent = np.asarray(obs["agent"])
        dry = np.asarray(obs["tomatoes"])[:, : self.to_tomato.shape[1]] == 0
        after = self.next_cell[agent]  # (N, 4) cell after each action
        far = self.to_tomato[after]  # (N, 4, 9)
        score = np.where(dry[:, None, :], far, 10**6).min(axis=2)
        actions = score.argmin(axis=1)
        noisy = self.rng.random(len(agent)) < self.eps
        return np.where(noisy, self.rng.integers(4, size=len(agent)), actions)


class GlucosePID:
    """Vectorized PID insulin controller on the latest CGM reading (action units, [0, 0.1])."""

    def __init__(self, num_envs: int, seed: int = 0, noise: float = PID_NOISE) -> None:
        from goodhartlab.envs import glucose

        self.scale = glucose.ACTION_SCALE
        self.basal = glucose.patient.IDEAL_BASAL
        self.high = glucose.ACTION_HIGH
        self.integral = np.zeros(num_envs)
        self.prev_error: np.ndarray | None = None
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Shape: obs (N, 2, 48) -> actions (N, 1) float32"""
        from goodhartlab.envs.glucose import STEP_MINUTES

        error = PID_SETPOINT - np.asarray(obs)[:, 0, -1]
        prev = error if self.prev_error is None else self.prev_error
        self.integral += error * STEP_MINUTES
        derivative = (error - prev) / STEP_MINUTES
        self.prev_error = error
        insulin = self.basal + PID_KP * error + PID_KI * self.integral + PID_KD * derivative
        action = insulin / self.scale + self.rng.normal(0.0, self.noise, len(error))
        return np.clip(action, 0.0, self.high).astype(np.float32)[:, None]


def controller_for(env_name: str, num_envs: int, seed: int, eps: float = 0.0):
    """The env's scripted safe controller."""
    if env_name == "tomato":
        return TomatoController(eps=eps, seed=seed)
    return GlucosePID(num_envs, seed=seed)


def collect_controller_data(
    vec_env, env_name: str, controller, steps: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Run `controller` for `steps` steps of every copy; return (obs, actions, episode true returns).

    Shape: -> obs (N*steps, obs_dim) float32, actions (N*steps,) int64 or (N*steps, K) float32
    """
    encode = OBS_ENCODERS[env_name]
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
) -> list[float]:
    """Minimize -mean log pi(a_ctrl | s) - entropy_coef * H(pi(.|s)) with Adam; per-epoch losses.

    Why the entropy bonus: the spec's glucose/traffic base policies use 1, so the clone stays
    stochastic enough for its occupancy measure to overlap the learner's.
    """
    device = next(policy.parameters()).device
    obs, actions = obs.to(device), actions.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(obs), minibatch_size):
            idx = order[start : start + minibatch_size]
            logprobs, entropy = policy.log_prob_entropy(policy.dist_inputs(obs[idx]), actions[idx])
            loss = -(logprobs + entropy_coef * entropy).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(obs))
    return losses
