"""Gym actor-critic policies: densities match torch's, Beta sampler moments, save/load."""

from __future__ import annotations

import pytest
import torch

from goodhartlab.errors import InputError
from goodhartlab.models.gym_policy import (
    GymPolicy,
    PolicySpec,
    load_gym_policy,
    sample_gamma,
    save_gym_policy,
)


def test_beta_policy_density_and_samples_stay_in_box() -> None:
    torch.manual_seed(0)
    policy = GymPolicy(PolicySpec(5, 1, "beta", [8], 0.0, 0.1))
    obs = torch.randn(4, 5)
    inputs = policy.dist_inputs(obs)
    assert torch.all(inputs >= 1.0)  # softplus + 1
    actions = policy.sample(inputs, torch.Generator().manual_seed(0))
    assert actions.shape == (4, 1) and torch.all((actions > 0) & (actions < 0.1))
    logprobs, entropy = policy.log_prob_entropy(inputs, actions)
    ref = torch.distributions.Beta(inputs[:, :1], inputs[:, 1:])
    torch.testing.assert_close(logprobs, ref.log_prob(actions / 0.1).sum(-1))
    torch.testing.assert_close(entropy, ref.entropy().sum(-1))
    per_dim = policy.log_prob_entropy_per_dim(inputs, actions)
    torch.testing.assert_close(per_dim[0], ref.log_prob(actions / 0.1))
    torch.testing.assert_close(per_dim[1], ref.entropy())


def test_gamma_sampler_moments() -> None:
    shape = torch.tensor([1.0, 2.5, 7.0]).repeat(20000, 1)
    x = sample_gamma(shape, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), torch.tensor([1.0, 2.5, 7.0]), rtol=0.03, atol=0.0)
    torch.testing.assert_close(x.var(0), torch.tensor([1.0, 2.5, 7.0]), rtol=0.06, atol=0.0)


@pytest.mark.parametrize("family", ["categorical", "gaussian"])
def test_save_load_roundtrip(tmp_path, family: str) -> None:
    torch.manual_seed(0)
    policy = GymPolicy(PolicySpec(6, 3, family, [8, 8]))
    save_gym_policy(policy, tmp_path / "p")
    loaded = load_gym_policy(tmp_path / "p")
    obs = torch.randn(5, 6)
    torch.testing.assert_close(loaded.dist_inputs(obs), policy.dist_inputs(obs))
    torch.testing.assert_close(loaded.values(obs), policy.values(obs))
    assert loaded.spec == policy.spec


def test_load_missing_dir_is_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="not a gym policy"):
        load_gym_policy(tmp_path / "nope")
