"""Model loading and saving (the only package that touches weights). See `loading`."""

from goodhartlab.models.loading import (
    freeze,
    load_model,
    load_tokenizer,
    resolve_device,
    save_model,
    write_pretrained,
)


def load_policy(source: str, **kwargs):
    """(causal LM, tokenizer) from a hub id, a local dir or a toy spec."""
    return load_model(source, role="policy", **kwargs)


# DESIGN.md §9's public names that live in `models.reward`: imported on first use, because that
# module imports torch and this package is imported on light paths.
_FROM_REWARD = ("load_reward_model", "load_reward_models")


def __getattr__(name: str):
    if name in _FROM_REWARD:
        from goodhartlab.models import reward

        return getattr(reward, name)
    raise AttributeError(f"module 'goodhartlab.models' has no attribute {name!r}")


__all__ = [
    "freeze",
    "load_model",
    "load_policy",
    "load_reward_model",
    "load_reward_models",
    "load_tokenizer",
    "resolve_device",
    "save_model",
    "write_pretrained",
]
