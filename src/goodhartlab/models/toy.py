"""Tiny GPT-NeoX configurations for the toy world (random init, trained here).

Why GPT-NeoX through `transformers`: the toy world must exercise the real Hugging Face
save/load path (the seeds use Pythia, a GPT-NeoX model). Sizes are "toy:<role>[-<size>]" specs.
"""

from __future__ import annotations

from typing import Any

from goodhartlab.errors import input_error

TOY_SIZES: dict[str, dict[str, int]] = {
    # ~115k parameters: the size the DESIGN prototype measured.
    "tiny": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4},
    "small": {"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 4},
}
TOY_ROLES = ("policy", "rm", "value")


def parse_toy_spec(spec: str) -> tuple[str, str]:
    """'toy:policy-small' -> ('policy', 'small'); size defaults to 'tiny'."""
    body = spec.removeprefix("toy:")
    role, _, size = body.partition("-")
    size = size or "tiny"
    if role not in TOY_ROLES:
        raise input_error(f"unknown toy role {role!r} (allowed: {', '.join(TOY_ROLES)})", spec)
    if size not in TOY_SIZES:
        raise input_error(f"unknown toy size {size!r} (allowed: {', '.join(TOY_SIZES)})", spec)
    return role, size


def toy_config(size: str, tokenizer: Any, num_labels: int | None = None):
    """A GPTNeoXConfig for the toy tokenizer. Dropout is off so runs are exactly repeatable."""
    from transformers import GPTNeoXConfig

    dims = TOY_SIZES[size]
    extra = {"num_labels": num_labels} if num_labels is not None else {}
    return GPTNeoXConfig(
        vocab_size=len(tokenizer),
        intermediate_size=4 * dims["hidden_size"],
        max_position_embeddings=tokenizer.model_max_length,
        rotary_pct=0.25,
        use_parallel_residual=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **dims,
        **extra,
    )
