"""Gymnasium environments of the ORPO experiments, and `ENVS`: the one registry of what a recipe
needs to know about each of them. Importing this package registers them with gymnasium.

`gymnasium.make("goodhartlab/Tomato-v0", reward_fun="true")` and
`gymnasium.make("goodhartlab/Glucose-v0")` (and `Traffic-v0`, with SUMO) give one environment; `ENVS[name].make_vec(n, **kw)`
gives the numpy-batched version that RL collection uses. An `EnvInfo` entry holds everything else
the ORPO recipe asks about an env (specs/orpo.md §4): horizon and discount, the policy's
observation encoder and action space, the observation columns the discriminator sees, the reward
scales that turn scale-free coefficients into reward units, the discriminator reward clip, the
scripted controller and how the default ('auto') base policy is built. The env's budget preset is
`configs/orpo/<name>.yaml` (a test checks that every entry has one).

Adding an environment = its own module (`envs/<name>.py`: the env, its batched twin, an obs
encoder, a scripted controller) + one `EnvInfo` line here. Code is named by "module:attr" strings
and imported on first use, so importing this package costs only gymnasium's registration, and
`envs/` imports nothing of ours outside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import gymnasium as gym
import numpy as np

ActionFamily = Literal["categorical", "beta", "gaussian"]


@cache
def resolve(ref: str) -> Any:
    """The object a "package.module:attr" string names (imported on first use)."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class EnvInfo:
    """One environment, as the recipes see it (specs/orpo.md §2 and §4.1-4.3)."""

    gym_id: str
    entry_point: str  # "module:SingleEnvClass"
    vec_entry_point: str  # "module:VecEnvClass", called as (num_envs, **env_kwargs)
    horizon: int
    gamma: float
    reward_std: float  # sigma of the per-step proxy reward under the base policy (sqrt_chi2 scale)
    kl_reward_scale: float  # per-step reward scale that multiplies KL coefficients
    discriminator_reward_clip: float  # |OM shaping reward| bound per step (§1.4)
    obs_encoder: str  # "module:fn": raw vector-env obs -> (N, obs_dim) float32 policy input
    obs_dim: int
    action_family: ActionFamily
    action_dim: int  # number of actions (categorical) or action-vector size (continuous)
    controller: str  # "module:Class", called as (num_envs, seed, eps): obs -> actions
    # 'auto' base policy: "ppo" = a short PPO on the true reward with random actions (the env
    # must accept `randomness_eps`), "bc" = behaviour cloning of `controller`
    default_base: Literal["ppo", "bc"]
    action_low: float = 0.0  # continuous families: the action box
    action_high: float = 1.0
    disc_columns: tuple[int, int] | None = None  # encoded-obs columns [a, b) the discriminator
    # sees as the state (None = all): glucose shows it only the latest CGM reading (§1.2)
    reward_funs: tuple[str, ...] = ("proxy", "true")
    bc_action_mask: str | None = None  # "module:fn": encoded obs (N, obs_dim) -> (N, action_dim)
    # bool, the action entries the env reads and BC fits (None = all; traffic: slots with a bus)
    named_controllers: bool = False  # the controller also takes `names=` (`bc.schedules`): the
    # scripted variants it pools (pandemic: a subset of its stage schedules)

    def make_vec(self, num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
        """Build the batched environment with `num_envs` copies."""
        factory: Callable[..., gym.vector.VectorEnv] = resolve(self.vec_entry_point)
        return factory(num_envs, **kwargs)

    def encode(self, obs: Any) -> np.ndarray:
        """The policy's input for a batch of raw observations. Shape: -> (N, obs_dim) float32"""
        return resolve(self.obs_encoder)(obs)

    def bc_mask(self, obs: np.ndarray) -> np.ndarray | None:
        """The action entries BC fits for these encoded observations (None = all).
        Shape: (N, obs_dim) -> (N, action_dim) bool"""
        return None if self.bc_action_mask is None else resolve(self.bc_action_mask)(obs)

    def make_controller(
        self, num_envs: int, seed: int, eps: float = 0.0, names: list[str] | None = None
    ) -> Callable:
        """The env's scripted safe controller (the base policies clone it; specs/orpo.md §4.2);
        `names` picks which of its scripted variants it pools (None = all of them)."""
        if names is None:
            return resolve(self.controller)(num_envs, seed, eps)
        if not self.named_controllers:
            raise ValueError(f"{self.gym_id}'s controller has no named variants to choose")
        return resolve(self.controller)(num_envs, seed, eps, names=names)

    def discriminator_state(self, obs: Any) -> Any:
        """The part of the encoded obs the discriminator sees. Shape: (N, obs_dim) -> (N, S)"""
        if self.disc_columns is None:
            return obs
        return obs[:, self.disc_columns[0] : self.disc_columns[1]]

    @property
    def discriminator_state_dim(self) -> int:
        """S, the width of `discriminator_state`."""
        if self.disc_columns is None:
            return self.obs_dim
        return self.disc_columns[1] - self.disc_columns[0]


ENVS: dict[str, EnvInfo] = {
    "tomato": EnvInfo(
        gym_id="goodhartlab/Tomato-v0",
        entry_point="goodhartlab.envs.tomato:TomatoEnv",
        vec_entry_point="goodhartlab.envs.tomato:TomatoVecEnv",
        horizon=100,
        gamma=0.99,
        reward_std=0.05,
        kl_reward_scale=0.8,
        discriminator_reward_clip=1000.0,
        obs_encoder="goodhartlab.envs.tomato:encode_obs",
        obs_dim=36,
        action_family="categorical",
        action_dim=4,
        controller="goodhartlab.envs.tomato:TomatoController",
        default_base="ppo",
    ),
    "glucose": EnvInfo(
        gym_id="goodhartlab/Glucose-v0",
        entry_point="goodhartlab.envs.glucose:GlucoseEnv",
        vec_entry_point="goodhartlab.envs.glucose:GlucoseVecEnv",
        horizon=5760,
        gamma=0.99,
        reward_std=0.05,
        kl_reward_scale=0.03,
        discriminator_reward_clip=1e10,
        obs_encoder="goodhartlab.envs.glucose:encode_obs",
        obs_dim=96,
        action_family="beta",
        action_dim=1,
        action_low=0.0,
        action_high=0.1,
        controller="goodhartlab.envs.glucose:GlucosePID",
        default_base="bc",
        disc_columns=(47, 48),
    ),
    "traffic": EnvInfo(  # needs the [traffic] extra (SUMO); without it, make raises one line
        gym_id="goodhartlab/Traffic-v0",
        entry_point="goodhartlab.envs.traffic:TrafficEnv",
        vec_entry_point="goodhartlab.envs.traffic:TrafficVecEnv",
        horizon=300,
        gamma=0.99,
        reward_std=2e-4,
        kl_reward_scale=5e-4,
        discriminator_reward_clip=1.0,
        obs_encoder="goodhartlab.envs.traffic:encode_obs",
        obs_dim=50,
        action_family="beta",  # the seed's TrafficBeta: a Beta per bus on [-1.5, 1.5]
        action_dim=10,
        action_low=-1.5,
        action_high=1.5,
        controller="goodhartlab.envs.traffic:IDMController",
        default_base="bc",
        bc_action_mask="goodhartlab.envs.traffic:occupied_slots",
    ),
    "pandemic": EnvInfo(
        gym_id="goodhartlab/Pandemic-v0",
        entry_point="goodhartlab.envs.pandemic:PandemicEnv",
        vec_entry_point="goodhartlab.envs.pandemic:PandemicVecEnv",
        horizon=192,
        gamma=0.99,
        reward_std=0.08,
        kl_reward_scale=0.06,
        discriminator_reward_clip=100.0,
        obs_encoder="goodhartlab.envs.pandemic:encode_obs",
        obs_dim=312,
        action_family="categorical",
        action_dim=3,
        controller="goodhartlab.envs.pandemic:StageSchedules",
        default_base="bc",
        named_controllers=True,
        disc_columns=(299, 312),  # the latest of the 24 observation rows (§1.2)
    ),
}
ENV_NAMES = tuple(ENVS)


def register_all() -> None:
    """Register every entry of `ENVS` with gymnasium (idempotent)."""
    for info in ENVS.values():
        if info.gym_id not in gym.registry:
            gym.register(id=info.gym_id, entry_point=info.entry_point)


register_all()

__all__ = ["ENVS", "ENV_NAMES", "EnvInfo", "register_all", "resolve"]
