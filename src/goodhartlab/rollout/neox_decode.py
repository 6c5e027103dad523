"""One-token decode steps for the sampler: transformers' forward, or a lean GPT-NeoX step.

Why a lean step: on the toy world's policies (2 layers, d=64) a transformers forward for one new
token per row spends most of its time outside arithmetic: output dataclasses, mask building
(`create_causal_mask`), the cache object, decorators. `NeoXStep` runs the same tensor operations
as transformers' GPT-NeoX with sdpa attention (embedding, layer norms, fused qkv, partial rotary,
`scaled_dot_product_attention` over the cached keys, parallel or sequential residual, final
norm, unembedding), on the same weights, in the same order and shapes, so its logits are
bit-identical (tests/rollout/test_neox_decode.py compares them with `torch.equal`), and so are the
samples drawn from them. Any other model (or attention implementation) goes through `HFStep`.

Both steps own the per-layer key/value cache and drop finished rows from it (`keep`).
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import torch
import torch.nn.functional as F


class DecodeStep(Protocol):
    def __call__(
        self, token: torch.Tensor, positions: torch.Tensor, attention: torch.Tensor
    ) -> torch.Tensor:
        """token (b,), positions (b, 1), attention (b, L) incl. this token -> logits (b, V)."""

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these rows of the cache (indices into the current rows)."""


def forward_arguments(model: Any) -> tuple[str, dict[str, int]]:
    """The KV-cache argument's name and the prompt pass's "last logits only" option.

    Why: transformers 5 names the cache `cache` (4.x: `past_key_values`) and the option
    `logits_to_keep` (early 4.x: `num_logits_to_keep`, older: none).
    """
    # A peft (LoRA) wrapper's forward takes **kwargs: read the wrapped model's names (else
    # the prompt pass would compute logits at every position instead of the last only).
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    cache_arg = "cache" if "cache" in params else "past_key_values"
    keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache_arg, ({keep: 1} if keep else {})


class HFStep:
    """The model's own forward with its cache object: any causal LM transformers supports."""

    def __init__(self, model: Any, cache: Any, cache_arg: str) -> None:
        self.model, self.cache, self.cache_arg = model, cache, cache_arg

    def __call__(
        self, token: torch.Tensor, positions: torch.Tensor, attention: torch.Tensor
    ) -> torch.Tensor:
        out = self.model(
            input_ids=token[:, None],
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **{self.cache_arg: self.cache},
        )
        self.cache = out.get(self.cache_arg)
        return out.logits[:, -1]

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.reorder_cache(rows)


def lean_step_supported(model: Any) -> bool:
    """GPT-NeoX causal LM with sdpa attention, default rotary and no active dropout (a peft
    wrapper is another type: its adapters run only in its own forward, so it takes `HFStep`)."""
    config = getattr(model, "config", None)
    if type(model).__name__ != "GPTNeoXForCausalLM" or config is None:
        return False
    rope = getattr(config, "rope_parameters", None) or {}
    dropout = max(config.hidden_dropout, config.attention_dropout) if model.training else 0.0
    return (
        config._attn_implementation == "sdpa"
        and rope.get("rope_type", "default") == "default"
        and dropout == 0.0
    )


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' `apply_rotary_pos_emb` for one tensor: rotate the first cos.shape[-1] dims."""
    rot, rest = x[..., : cos.shape[-1]], x[..., cos.shape[-1] :]
    half = rot.shape[-1] // 2
    rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    return torch.cat([(rot * cos) + (rotated * sin), rest], dim=-1)


class NeoXStep:
    """The lean GPT-NeoX decode step (see the module docstring); cache = the prompt pass's."""

    def __init__(self, model: Any, cache: Any) -> None:
        self.model, self.neox = model, model.gpt_neox
        self.keys = [layer.keys for layer in cache.layers]
        self.values = [layer.values for layer in cache.layers]
        self.inv_freq = self.neox.rotary_emb.inv_freq.float()
        self.heads = model.config.num_attention_heads
        self.head_size = model.config.hidden_size // self.heads
        self.parallel = model.config.use_parallel_residual

    def keep(self, rows: torch.Tensor) -> None:
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]

    def __call__(
        self, token: torch.Tensor, positions: torch.Tensor, attention: torch.Tensor
    ) -> torch.Tensor:
        # transformers drops an all-ones padding mask for sdpa (None), else a (b, 1, 1, L) bool
        mask = None if bool(attention.all()) else attention.bool()[:, None, None, :]
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        hidden = self.neox.embed_in(token[:, None])
        for i, layer in enumerate(self.neox.layers):
            hidden = self._layer(i, layer, hidden, cos, sin, mask)
        norm = self.neox.final_layer_norm
        hidden = F.layer_norm(hidden, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        return F.linear(hidden, self.model.lm_head.weight)[:, -1]

    def _layer(self, i: int, layer: Any, hidden: torch.Tensor, cos, sin, mask) -> torch.Tensor:
        attn, b = layer.attention, hidden.shape[0]
        ln1, ln2 = layer.input_layernorm, layer.post_attention_layernorm
        x = F.layer_norm(hidden, ln1.normalized_shape, ln1.weight, ln1.bias, ln1.eps)
        qkv = F.linear(x, attn.query_key_value.weight, attn.query_key_value.bias)
        q, k, v = qkv.view(b, 1, -1, 3 * self.head_size).transpose(1, 2).chunk(3, dim=-1)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        self.keys[i] = torch.cat([self.keys[i], k], dim=-2)
        self.values[i] = torch.cat([self.values[i], v], dim=-2)
        out = F.scaled_dot_product_attention(
            q, self.keys[i], self.values[i], attn_mask=mask, dropout_p=0.0, scale=attn.scaling
        )
        out = out.reshape(b, -1, 1, self.head_size).transpose(1, 2).contiguous()
        out = F.linear(out.reshape(b, 1, -1).contiguous(), attn.dense.weight, attn.dense.bias)
        mlp = layer.mlp
        if self.parallel:
            y = F.layer_norm(hidden, ln2.normalized_shape, ln2.weight, ln2.bias, ln2.eps)
            return mlp.dense_4h_to_h(mlp.act(mlp.dense_h_to_4h(y))) + out + hidden
        out = out + hidden
        y = F.layer_norm(out, ln2.normalized_shape, ln2.weight, ln2.bias, ln2.eps)
        return mlp.dense_4h_to_h(mlp.act(mlp.dense_h_to_4h(y))) + out


def decode_step(model: Any, cache: Any, cache_arg: str, lean: bool = True) -> DecodeStep:
    """The lean step where `lean_step_supported` (and the cache exposes its layers), else HF's."""
    if lean and lean_step_supported(model) and hasattr(cache, "layers"):
        return NeoXStep(model, cache)
    return HFStep(model, cache, cache_arg)
