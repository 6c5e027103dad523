"""Sample responses for many text prompts in batches and decode them.

Why a layer over `generate.sample`: every recipe (SFT check, best-of-n, PPO evaluation, demo)
needs "prompts in, texts + eos flags out" with a progress bar, the same batching, and the same
seeded generator; writing that once keeps their numbers comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from goodhartlab.data.encoding import decode_responses, encode_prompts
from goodhartlab.rollout.generate import sample


@dataclass(frozen=True)
class SampledText:
    """One sampled response: text without specials, whether it ended with eos, token count."""

    prompt: str
    response: str
    ended: bool
    n_tokens: int


def sample_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 256,
    seed: int = 0,
    template: str | None = None,
    progress: Any = None,
) -> list[SampledText]:
    """Sample one response per prompt (repeat prompts for several); deterministic for `seed`."""
    import torch

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out: list[SampledText] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        ids, mask = encode_prompts(tokenizer, chunk, template, device)
        gen = sample(
            model,
            ids,
            mask,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
        )
        texts = decode_responses(tokenizer, gen.response_ids, gen.response_mask)
        lengths = gen.response_mask.sum(dim=1).tolist()
        for p, t, e, n in zip(chunk, texts, gen.ended.tolist(), lengths):
            out.append(SampledText(p, t, bool(e), int(n)))
        if progress is not None:
            progress(len(chunk))
    return out
