"""Turning text into model inputs: prompt formatting, tokenization, padding, SFT labels.

Prompt formatting, in order of precedence: an explicit `template` ("{prompt}" placeholder, plus
{bos}/{eos}/{sep}); else the tokenizer's chat template (the toy tokenizer has one, as do instruct
models); else the raw prompt. Completions are followed by the eos token, because a policy that
never learned to stop is the first thing overoptimization exploits. Reward-model rows
(`encode_reward_inputs`) are tokenized in one call per list and kept ragged (`RewardInputs`), and
`SharedEncodings` holds them per distinct tokenizer, so an ensemble encodes its texts once.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from goodhartlab.data.formats import Prompt, messages_to_text
from goodhartlab.errors import input_error

IGNORE_INDEX = -100


def format_prompt(tokenizer: Any, prompt: Prompt, template: str | None = None) -> str:
    """The text fed to the model before the response.

    A chat prompt (a list of `{role, content}` messages, e.g. an HH transcript) goes through
    the tokenizer's chat template with the generation prompt; without a chat template it is
    rendered as plain text (`formats.messages_to_text`, ending in "Assistant:"). With an
    explicit `template` its `{prompt}` is that plain text without the final cue.
    """
    if template is not None:
        text = prompt if isinstance(prompt, str) else messages_to_text(prompt)
        return template.format(
            prompt=text,
            bos=tokenizer.bos_token or "",
            eos=tokenizer.eos_token or "",
            sep=tokenizer.sep_token or "",
        )
    if getattr(tokenizer, "chat_template", None):
        rendered = _RENDERED.setdefault(tokenizer, {})
        key = prompt_key(prompt)
        if key not in rendered:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            rendered[key] = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return rendered[key]
    return prompt if isinstance(prompt, str) else messages_to_text(prompt, True)


def prompt_key(prompt: Prompt) -> str:
    """A hashable key of a prompt: the text itself, or the messages as JSON (chat prompts)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


# Chat-template renderings per tokenizer. Why: rendering runs Jinja (~1 ms a prompt), and
# best-of-n and PPO format the same prompt hundreds of times; this was 28% of scoring time.
_RENDERED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompts(
    tokenizer: Any, prompts: Sequence[Prompt], template: str | None = None, device: Any = None
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
    prompts: Sequence[Prompt],
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


@dataclass(frozen=True)
class RewardInputs:
    """Reward-model token rows (prompt + response + eos) of N texts, stored back to back.

    Why ragged and not padded: best-of-n holds 100k+ rows whose lengths vary; padding happens
    per batch (`padded`), after the scorer has grouped rows of like length.
    `response_lengths`: each response's own token count before any cut (no prompt, no eos), known
    when the rows were encoded from texts; `goodhart score` correlates scores with it.
    Shape: ids (T,) int64, every row concatenated; starts, lengths, response_lengths (N,) int64.
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pad_token_id: int | None
    response_lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], pad_token_id: int | None) -> RewardInputs:
        """Pack ready token rows (e.g. a training batch) for vectorized padding."""
        return cls(*_ragged(rows), pad_token_id)

    def rows(self) -> list[list[int]]:
        """The token rows as Python lists (the layout `train-rm` keeps per pair)."""
        ends = self.starts + self.lengths
        return [self.ids[a:b].tolist() for a, b in zip(self.starts.tolist(), ends.tolist())]

    def padded(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded (ids, mask) of rows `index` (default all, in order), as wide as the
        longest of them; one gather, no loop over rows.

        Shape: index (B,) -> ids (B, W) int64, mask (B, W) int64 (1 = token), W = max length.
        """
        if self.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; reward batches are right-padded")
        index = np.arange(len(self)) if index is None else np.asarray(index)
        lengths = self.lengths[index]
        cols = np.arange(int(lengths.max()) if len(index) else 0)
        mask = cols[None, :] < lengths[:, None]
        gather = np.where(mask, self.starts[index][:, None] + cols, 0)
        ids = np.where(mask, self.ids[gather] if self.ids.size else 0, self.pad_token_id)
        return ids.astype(np.int64, copy=False), mask.astype(np.int64)


def _ragged(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat ids, starts, lengths) of token lists."""
    lengths = np.fromiter(map(len, lists), np.int64, len(lists))
    flat = np.fromiter(chain.from_iterable(lists), np.int64, int(lengths.sum()))
    return flat, np.cumsum(lengths) - lengths, lengths


def _batch_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Ids of each text, no specials, from one tokenizer call (a fast tokenizer encodes the
    list in Rust; the same ids as one call per text). Empty texts give [] without a call."""
    filled = [t for t in texts if t]
    if not filled:
        return [[] for _ in texts]
    ids = tokenizer(
        filled, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False
    )["input_ids"]
    if len(filled) == len(texts):
        return ids
    encoded = iter(ids)
    return [next(encoded) if t else [] for t in texts]


def encode_reward_inputs(
    tokenizer: Any,
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    template: str | None = None,
    max_length: int | None = None,
) -> RewardInputs:
    """Token rows of prompt (formatted, `format_prompt`) + response + eos, for reward models.

    Prompt and response are tokenized apart (as the per-row path always did, so a merge across
    the seam cannot change ids); each distinct prompt once. A row longer than `max_length`
    (default: the tokenizer's model_max_length) is cut to max_length - 1 tokens, then eos.
    Why batched and vectorized: the per-row loop was ~23% of `goodhart bon` wall time.
    Shape: N prompts, N responses -> RewardInputs of N rows.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; reward rows end with eos")
    keep = max(min(max_length or tokenizer.model_max_length, 2**62) - 1, 0)
    keys = [prompt_key(p) for p in prompts]  # chat prompts (lists) are not hashable
    firsts = dict(zip(keys, prompts))
    distinct = {k: i for i, k in enumerate(firsts)}
    formatted = [format_prompt(tokenizer, firsts[k], template) for k in distinct]
    p_flat, p_starts, p_lengths = _ragged(_batch_ids(tokenizer, formatted))
    r_flat, r_starts, r_lengths = _ragged(_batch_ids(tokenizer, responses))
    which = np.fromiter(map(distinct.__getitem__, keys), np.int64, len(prompts))
    n_prompt = np.minimum(p_lengths[which], keep)  # tokens kept of each part
    n_resp = np.minimum(r_lengths, keep - n_prompt)
    lengths = n_prompt + n_resp + 1
    starts = np.cumsum(lengths) - lengths
    row = np.repeat(np.arange(len(prompts)), lengths)
    pos = np.arange(int(lengths.sum())) - starts[row]  # position of each output token in its row
    ids = np.full(len(pos), tokenizer.eos_token_id, dtype=np.int64)
    in_prompt = pos < n_prompt[row]
    ids[in_prompt] = p_flat[p_starts[which][row][in_prompt] + pos[in_prompt]]
    in_resp = ~in_prompt & (pos < (n_prompt + n_resp)[row])
    ids[in_resp] = r_flat[r_starts[row][in_resp] + (pos - n_prompt[row])[in_resp]]
    return RewardInputs(ids, starts, lengths, tokenizer.pad_token_id, r_lengths)


def tokenizer_key(tokenizer: Any) -> str:
    """A digest of everything that decides a tokenizer's reward rows: equal keys, equal ids.

    Why: each ensemble member loads its own tokenizer object, usually identical (a seed
    ensemble), sometimes not (mixed ensembles, a gold RM); scoring must never reuse another
    tokenizer's ids. A fast tokenizer is its backend JSON (vocab, merges, normalizer,
    pre-tokenizer, added tokens; not the padding/truncation state calls may leave behind) plus
    what `format_prompt` and the row layout read. A slow tokenizer's behaviour lives in code
    and files, so it only matches itself (holders must keep it alive so the id is not reused).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return f"object:{id(tokenizer)}"
    spec = json.loads(backend.to_str())
    spec.pop("padding", None)
    spec.pop("truncation", None)
    parts = [
        type(tokenizer).__name__,
        spec,
        getattr(tokenizer, "chat_template", None),
        [tokenizer.bos_token, tokenizer.eos_token, tokenizer.sep_token],
        [tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.model_max_length],
    ]
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class SharedEncodings:
    """One set of (prompt, response) texts, encoded once per distinct tokenizer, on demand.

    Why: best-of-n scores the same 100k+ answers with every ensemble member, and members of a
    seed ensemble share one tokenizer; re-encoding per member was most of the scoring overhead.
    """

    def __init__(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        template: str | None = None,
        max_length: int | None = None,
    ) -> None:
        self.prompts, self.responses = prompts, responses
        self.template, self.max_length = template, max_length
        self._by_key: dict[str, tuple[Any, RewardInputs]] = {}  # key -> (tokenizer, inputs)

    def get(self, tokenizer: Any) -> RewardInputs:
        """The rows as this tokenizer encodes them (encoded now if no equal tokenizer was seen)."""
        key = tokenizer_key(tokenizer)
        if key not in self._by_key:
            inputs = encode_reward_inputs(
                tokenizer, self.prompts, self.responses, self.template, self.max_length
            )
            self._by_key[key] = (tokenizer, inputs)  # the tokenizer kept alive: see tokenizer_key
        return self._by_key[key][1]

    def __len__(self) -> int:
        """How many distinct encodings are held."""
        return len(self._by_key)
