"""DESIGN.md §9's model-loading names are importable from `goodhartlab.models`."""

from __future__ import annotations

import pytest


def test_reward_model_loaders_are_public_names_of_models() -> None:
    import goodhartlab.models as models
    from goodhartlab.models import load_policy, load_reward_model, load_reward_models, reward

    assert load_reward_model is reward.load_reward_model
    assert load_reward_models is reward.load_reward_models
    assert callable(load_policy)
    with pytest.raises(AttributeError, match="has no attribute 'load_rewards'"):
        models.load_rewards  # noqa: B018
