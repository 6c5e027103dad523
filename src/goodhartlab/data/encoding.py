"""Turning text into model inputs: prompt formatting, tokenization, padding, SFT labels.

Prompt formatting, in order of precedence: an explicit `template` ("{prompt}" placeholder, plus
{bos}/{eos}/{sep}); else the tokenizer's chat template (the toy tokenizer has one, as do instruct
models); else the raw prompt. Completions are followed by the eos token, because a policy that
never learned to stop is the first thing overoptimization exploits.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from goodhartlab.errors import input_error

IGNORE_INDEX = -100


def format_prompt(tokenizer: Any, prompt: str, template: str | None = None) -> str:
    """The text fed to the model before the response."""
    if template is not None:
        return template.format(
            prompt=prompt,
            bos=tokenizer.bos_token or "",
            eos=tokenizer.eos_token or "",
            sep=tokenizer.sep_token or "",
        )
    if getattr(tokenizer, "chat_template", None):
        rendered = _RENDERED.setdefault(tokenizer, {})
        if prompt not in rendered:
            rendered[prompt] = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return rendered[prompt]
    return prompt


# Chat-template renderings per tokenizer. Why: rendering runs Jinja (~1 ms a prompt), and
# best-of-n and PPO format the same prompt hundreds of times; this was 28% of scoring time.
_RENDERED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompts(
    tokenizer: Any, prompts: Sequence[str], template: str | None = None, device: Any = None
):
    """Left-padded prompt ids (B, P) and bool mask, ready for generation."""
    import torch

    rows = [_ids(tokenizer, format_prompt(tokenizer, p, template)) for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = True
    return ids.to(device), mask.to(device)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt + completion + eos, and where the completion starts."""

    input_ids: list[int]
    completion_start: int


def encode_demonstrations(
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_length: int,
    template: str | None = None,
    source: str | None = None,
) -> list[EncodedExample]:
    """Encode SFT pairs; the completion is truncated to fit, an over-long prompt is an error."""
    out = []
    for row, (prompt, completion) in enumerate(zip(prompts, completions), start=1):
        p_ids = _ids(tokenizer, format_prompt(tokenizer, prompt, template))
        c_ids = [*_ids(tokenizer, completion), tokenizer.eos_token_id]
        if len(p_ids) >= max_length:
            raise input_error(
                f"prompt has {len(p_ids)} tokens, max_length is {max_length}",
                source,
                row,
                "prompt",
            )
        out.append(EncodedExample((p_ids + c_ids)[:max_length], len(p_ids)))
    return out


def collate_sft(batch: Sequence[EncodedExample], pad_token_id: int, device: Any = None):
    """Right-pad a batch: input_ids, attention_mask, labels (IGNORE_INDEX on prompt and pad)."""
    import torch

    width = max(len(ex.input_ids) for ex in batch)
    ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ex in enumerate(batch):
        n = len(ex.input_ids)
        ids[i, :n] = torch.tensor(ex.input_ids)
        mask[i, :n] = 1
        labels[i, ex.completion_start : n] = ids[i, ex.completion_start : n]
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def decode_responses(tokenizer: Any, response_ids: Any, response_mask: Any) -> list[str]:
    """Response texts without specials (eos and pad dropped)."""
    texts = []
    for ids, mask in zip(response_ids.tolist(), response_mask.tolist()):
        kept = [t for t, m in zip(ids, mask) if m]
        texts.append(tokenizer.decode(kept, skip_special_tokens=True).strip())
    return texts
