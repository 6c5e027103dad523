"""Batched sampling from a causal LM with a KV cache: response ids, masks and per-token logprobs.

Why our own loop instead of `model.generate`: PPO needs the log-probability of every sampled
token, and the toy world's policies are so small that `generate()`'s per-step machinery (logits
processors, stopping criteria, cache bookkeeping) costs more than the model itself. One prompt
forward pass fills the cache; each step then feeds one token per row. Rows that emitted eos keep
being fed pad (masked out) until every row is done or the token limit is reached.

Conventions: prompts are left-padded (`data.encoding.encode_prompts`), so position ids are the
running count of real tokens; responses are right-padded with `pad_token_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from goodhartlab.rollout.neox_decode import decode_step, forward_arguments


@dataclass(frozen=True)
class Generation:
    """The result of `sample` for B prompts and at most T new tokens.

    Shape: prompt_ids/prompt_mask (B, P); response_ids/response_mask/logprobs (B, T), where
    T <= max_new_tokens is the longest response of the batch (so later teacher-forced passes
    do not pay for columns of padding); ended (B,). response_mask is True on generated tokens, the eos included; logprobs are
    log-probabilities of the sampled tokens under the distribution sampled from
    (softmax(logits / temperature) after top-k / top-p), 0 where the mask is False.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    logprobs: torch.Tensor
    ended: torch.Tensor


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k tokens, or outside the smallest set of mass >= top_p, to -inf.

    Shape: logits (B, V) -> (B, V). The most likely token always survives.
    """
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the mass strictly before it already reaches top_p
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float
) -> torch.Tensor:
    """CTRL's repetition penalty as transformers applies it: the logit of every token already in
    the row (prompt or response) is divided by `penalty` when positive, multiplied when not.

    Shape: logits (B, V) float, seen (B, V) bool -> (B, V). penalty 1 changes nothing.
    """
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalized, logits)


def _next_token(
    logits: torch.Tensor,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample (or take the argmax when temperature is 0) and return (token, its logprob)."""
    logits = logits.float()
    if temperature == 0:
        logprobs = logits.log_softmax(dim=-1)
        token = logits.argmax(dim=-1)
    else:
        if temperature != 1.0:  # x / 1.0 == x: skip the copy
            logits = logits / temperature
        logprobs = filter_logits(logits, top_k, top_p).log_softmax(dim=-1)
        token = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(-1)
    return token, logprobs.gather(-1, token[:, None]).squeeze(-1)


@dataclass
class _Buffers:
    """The (B, max_new_tokens) outputs and which rows of the full batch still generate."""

    tokens: torch.Tensor
    logprobs: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor

    @classmethod
    def empty(cls, batch: int, width: int, pad: int, device: torch.device) -> _Buffers:
        return cls(
            torch.full((batch, width), pad, dtype=torch.long, device=device),
            torch.zeros((batch, width), dtype=torch.float32, device=device),
            torch.zeros((batch, width), dtype=torch.bool, device=device),
            torch.arange(batch, device=device),
        )

    def write(self, t: int, token: torch.Tensor, logprob: torch.Tensor) -> None:
        if len(self.rows) == self.tokens.shape[0]:  # nobody has left yet: plain column writes
            self.tokens[:, t], self.logprobs[:, t], self.mask[:, t] = token, logprob, True
        else:
            self.tokens[self.rows, t], self.logprobs[self.rows, t] = token, logprob
            self.mask[self.rows, t] = True


def _check_arguments(max_new_tokens: int, temperature: float) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")


def _seen_tokens(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, vocab: int, penalty: float
) -> torch.Tensor | None:
    """(B, V) bool: the tokens of each prompt (padding excluded), or None without a penalty."""
    if penalty == 1.0:
        return None
    counts = torch.zeros((len(prompt_ids), vocab), dtype=torch.long, device=prompt_ids.device)
    return counts.scatter_add_(1, prompt_ids, prompt_mask.long()) > 0


def _prompt_pass(model: Any, prompt_ids: torch.Tensor, attention: torch.Tensor, lean: bool):
    """One forward over the prompts: (last logits (B, V), positions (B, P), the decode step)."""
    positions = (attention.cumsum(dim=1) - 1).clamp_min(0)
    cache_arg, last_logits_only = forward_arguments(model)
    out = model(
        input_ids=prompt_ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **last_logits_only,
    )
    return out.logits[:, -1], positions, decode_step(model, out.get(cache_arg), cache_arg, lean)


@torch.no_grad()  # not inference_mode: PPO feeds these tensors into autograd later
def sample(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    repetition_penalty: float = 1.0,
    lean: bool = True,
) -> Generation:
    """Sample up to `max_new_tokens` per left-padded prompt, stopping each row at eos.

    Deterministic for a seeded `generator` on the same device. The model's train/eval mode is
    left as it is (callers put frozen policies in eval mode; dropout stays theirs to choose).
    `repetition_penalty` != 1 penalizes tokens already in the row (`apply_repetition_penalty`;
    padding does not count) before temperature and top-k/top-p, as transformers orders them;
    the logprobs are then those of the penalized distribution.
    `lean=False` forces transformers' forward for every step (`rollout.neox_decode`: the lean
    GPT-NeoX step gives the same bits; the switch is there to show it).
    """
    _check_arguments(max_new_tokens, temperature)
    attention = prompt_mask.long()
    logits, positions, step = _prompt_pass(model, prompt_ids, attention, lean)
    out = _Buffers.empty(len(prompt_ids), max_new_tokens, pad_token_id, prompt_ids.device)
    seen = _seen_tokens(prompt_ids, prompt_mask, logits.shape[-1], repetition_penalty)
    next_position = positions[:, -1:] + 1
    for t in range(max_new_tokens):
        if seen is not None:
            logits = apply_repetition_penalty(logits.float(), seen[out.rows], repetition_penalty)
        token, token_logprob = _next_token(logits, temperature, top_k, top_p, generator)
        if seen is not None:
            seen[out.rows, token] = True
        out.write(t, token, token_logprob)
        alive = token != eos_token_id
        width = t + 1
        if width == max_new_tokens or not bool(alive.any()):
            break
        if not bool(alive.all()):
            # Drop finished rows from the batch and the cache: later steps cost what the
            # unfinished rows need, not what the longest row needs times the whole batch.
            keep = alive.nonzero().squeeze(1)
            out.rows, token, attention = out.rows[keep], token[keep], attention[keep]
            next_position = next_position[keep]
            step.keep(keep)
        attention = torch.cat([attention, attention.new_ones((len(token), 1))], dim=1)
        logits = step(token, next_position, attention)
        next_position = next_position + 1
    tokens, mask = out.tokens[:, :width], out.mask[:, :width]
    ended = ((tokens == eos_token_id) & mask).any(dim=1)
    return Generation(prompt_ids, prompt_mask, tokens, mask, out.logprobs[:, :width], ended)
