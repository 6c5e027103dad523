"""Gymnasium environments of the ORPO experiments; importing this package registers them.

`gymnasium.make("goodhartlab/Tomato-v0", reward_fun="true")` and
`gymnasium.make("goodhartlab/Glucose-v0")` give one environment; `ENVS[name].make_vec(n, **kw)`
gives the numpy-batched version that RL collection should use. `ENVS` also holds the per-env
numbers the ORPO recipe needs (specs/orpo.md §4): horizon, discount, the reward std used to scale
sqrt-chi^2 coefficients, the per-step reward scale used to scale KL coefficients, and the
discriminator reward clip.

Environment modules are imported lazily (inside the `make_vec` factories and by gymnasium's string
entry points), so importing this package costs only the registration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvInfo:
    """Per-environment constants (specs/orpo.md §4.1 and §4.3)."""

    gym_id: str
    entry_point: str  # "module:SingleEnvClass"
    vec_entry_point: str  # "module:VecEnvClass"
    horizon: int
    gamma: float
    reward_std: float  # sigma of the per-step proxy reward under the base policy (sqrt_chi2 scale)
    kl_reward_scale: float  # per-step reward scale that multiplies KL coefficients
    discriminator_reward_clip: float

    def make_vec(self, num_envs: int, **kwargs: Any) -> gym.vector.VectorEnv:
        """Build the batched environment with `num_envs` copies."""
        module, name = self.vec_entry_point.split(":")
        factory: Callable[..., gym.vector.VectorEnv] = getattr(
            importlib.import_module(module), name
        )
        return factory(num_envs, **kwargs)


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
    ),
}


def register_all() -> None:
    """Register every entry of `ENVS` with gymnasium (idempotent)."""
    for info in ENVS.values():
        if info.gym_id not in gym.registry:
            gym.register(id=info.gym_id, entry_point=info.entry_point)


register_all()

__all__ = ["ENVS", "EnvInfo", "register_all"]
