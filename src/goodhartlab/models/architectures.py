"""Tiny random-init models of the architectures users bring: Llama, Qwen2, GPT-2, GPT-NeoX.

Why: every recipe must work on the model families the seeds and their users train (Pythia is
GPT-NeoX; AlpacaFarm's policies are Llama; Qwen2 and GPT-2 are the usual small checkpoints), and
each family has its own quirks (learned vs rotary positions, fused vs split attention
projections, tied embeddings, where the score head sits). These configs exercise them on CPU in
seconds with the toy tokenizer, built here, with no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goodhartlab.errors import input_error

ARCHITECTURES = ("llama", "qwen2", "gpt2", "gpt_neox")


def tiny_config(arch: str, tokenizer: Any, hidden: int = 32, layers: int = 2, heads: int = 4):
    """A transformers config of `arch` sized for the toy tokenizer (dropout off: repeatable)."""
    import transformers

    ids = {
        # Padded to a multiple of 16 like real checkpoints (Pythia: 50277 tokens, 50304 rows),
        # which also leaves room for the <|endoftext|> that transformers 5 adds when it loads
        # a Qwen2 model dir's tokenizer as Qwen2Tokenizer.
        "vocab_size": -(-(len(tokenizer) + 1) // 16) * 16,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": False,
    }
    positions = tokenizer.model_max_length
    if arch == "gpt2":
        return transformers.GPT2Config(
            n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids,
        )  # fmt: skip
    if arch == "gpt_neox":
        return transformers.GPTNeoXConfig(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=4 * hidden, max_position_embeddings=positions, rotary_pct=0.25,
            hidden_dropout=0.0, attention_dropout=0.0, **ids,
        )  # fmt: skip
    classes = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}
    if arch not in classes:
        raise input_error(f"unknown architecture {arch!r} (allowed: {', '.join(ARCHITECTURES)})")
    return classes[arch](
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads // 2, intermediate_size=2 * hidden,
        max_position_embeddings=positions, attention_dropout=0.0, **ids,
    )  # fmt: skip


def save_tiny_policy(arch: str, out_dir: str | Path, seed: int = 0) -> Path:
    """A random-init causal LM of `arch` with the toy tokenizer, saved as a model dir (the
    starting point of SFT, like a hub checkpoint would be)."""
    import torch
    from transformers import AutoModelForCausalLM

    from goodhartlab.models.loading import save_model
    from goodhartlab.toyworld.vocab import build_tokenizer

    tok = build_tokenizer(padding_side="left")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(tiny_config(arch, tok))
    return save_model(model, tok, out_dir)
