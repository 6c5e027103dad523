"""`envs.ENVS`: every entry is complete and consistent, so a recipe can ask it everything."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from goodhartlab.config import find_configs_dir, load_config
from goodhartlab.config.orpo_schema import OrpoConfig
from goodhartlab.envs import ENVS, resolve


@pytest.mark.parametrize("name", sorted(ENVS))
def test_entry_encoder_controller_and_discriminator_state_fit_the_env(name: str) -> None:
    info = ENVS[name]
    assert gym.spec(info.gym_id).entry_point == info.entry_point
    vec = info.make_vec(3, horizon=5)
    obs, _ = vec.reset(seed=0)
    encoded = info.encode(obs)
    assert encoded.shape == (3, info.obs_dim) and encoded.dtype == np.float32
    state = info.discriminator_state(encoded)
    assert state.shape == (3, info.discriminator_state_dim)
    actions = info.make_controller(3, seed=0)(obs)
    assert vec.action_space.contains(actions)
    if info.action_family == "categorical":
        assert vec.single_action_space.n == info.action_dim
    else:
        assert vec.single_action_space.shape == (info.action_dim,)
        assert (vec.single_action_space.low, vec.single_action_space.high) == (
            pytest.approx(info.action_low),
            pytest.approx(info.action_high),
        )
    _, _, _, _, step_info = vec.step(actions)
    assert all(f"{fun}_reward" in step_info for fun in info.reward_funs)


@pytest.mark.parametrize("name", sorted(ENVS))
def test_every_env_has_its_budget_preset_and_is_an_orpo_choice(name: str) -> None:
    preset = find_configs_dir() / "orpo" / f"{name}.yaml"
    assert load_config(OrpoConfig, preset).env == name


def test_resolve_names_code_by_module_and_attribute() -> None:
    assert resolve("goodhartlab.envs:ENVS") is ENVS
    with pytest.raises(AttributeError):
        resolve("goodhartlab.envs:NOPE")
