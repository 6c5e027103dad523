"""What the numpy-batched environments share: per-copy seeds and the one-copy single env.

Why: a vector env whose copy i is seeded with s + i follows, step for step, a single env seeded
with s + i; the single env *is* a 1-copy vector env, so the two cannot drift apart. That is what
the "batched equals N single envs" tests check.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np


def copy_seeds(seed: int | list[int] | None, n: int) -> list[Any]:
    """Seeds of the n copies: None -> fresh entropy each, int s -> s, s+1, ..., list -> itself."""
    if seed is None:
        return [None] * n
    if isinstance(seed, int):
        return [seed + i for i in range(n)]
    if len(seed) != n:
        raise ValueError(f"got {len(seed)} seeds for {n} environments")
    return list(seed)


class OneCopyEnv(gym.Env):
    """A gymnasium env over a 1-copy vector env built with `autoreset=False`.

    The first `reset()` without a seed draws one from gymnasium's `np_random`; later unseeded
    resets continue the copy's own random stream, as the vector env's autoreset does.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, vec: gym.vector.VectorEnv) -> None:
        self._vec = vec
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(2**31))
        self._seeded = True
        obs, _ = self._vec.reset(seed=seed)
        return obs[0], {}

    def step(self, action: Any) -> tuple:
        batched = np.reshape(action, (1, *self.action_space.shape))
        obs, rewards, terminated, truncated, infos = self._vec.step(batched)
        info = {key: float(value[0]) for key, value in infos.items()}
        return obs[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0]), info
