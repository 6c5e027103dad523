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


__all__ = [
    "freeze",
    "load_model",
    "load_policy",
    "load_tokenizer",
    "resolve_device",
    "save_model",
    "write_pretrained",
]
