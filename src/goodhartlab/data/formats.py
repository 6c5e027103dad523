"""Prompts, demonstrations, preferences and scored generations in the ecosystem's formats.

Every loader reads any format `read_records` knows (JSONL, JSON, CSV, Parquet, a `datasets`
directory), lets the caller rename the columns, and validates each row: a missing column, a
wrong type (a number where text is expected), an empty completion or a NaN score raises a
one-line `InputError` naming `file:line` (or `file row i`) and the field. With
`skip_invalid=True` bad rows are dropped and the loader returns `(items, n_skipped)`.

Chat prompts. A prompt is either a string or chat messages, a list of `{"role", "content"}`
dicts (the TRL conversational form). Loaders return a string prompt as `str` and a chat
prompt as a validated `list[dict[str, str]]`, kept as messages all the way to the tokenizer:
`data.encoding.format_prompt` applies its chat template (with the generation prompt), or,
without one, `messages_to_text`.

Responses (completions, chosen, rejected, answers) are always returned as `str`. A
conversational response (a list of messages after the prompt) becomes the content of its
single message, or `messages_to_text` of several.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from goodhartlab.data.records import Record, read_records
from goodhartlab.errors import InputError, input_error

Message = dict[str, str]
Prompt = str | list[Message]
T = TypeVar("T")

_ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


@dataclass(frozen=True)
class Demonstration:
    """A prompt and the completion to imitate (SFT)."""

    prompt: Prompt
    completion: str


@dataclass(frozen=True)
class Preference:
    """A prompt with a preferred (`chosen`) and a dispreferred (`rejected`) response."""

    prompt: Prompt
    chosen: str
    rejected: str
    margin: float | None = None


@dataclass(frozen=True)
class ScoredGenerations:
    """N sampled answers per prompt with their gold scores, in generation order (best-of-n).

    `gold_scores` has shape (P, N), float64; `answers[p][i]` was scored `gold_scores[p, i]`.
    """

    prompts: list[Prompt]
    answers: list[list[str]]
    gold_scores: np.ndarray


def messages_to_text(messages: list[Message], add_generation_prompt: bool = False) -> str:
    """Render chat messages as plain text, for models without a chat template.

    Template: `"<Role>: <content>"` per message (user -> User, assistant -> Assistant,
    system -> System, any other role capitalized), joined by a blank line; with
    `add_generation_prompt` a final `"\\n\\nAssistant:"` cues the answer.
    """
    text = "\n\n".join(
        f"{_ROLE_NAMES.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages
    )
    return text + "\n\nAssistant:" if add_generation_prompt else text


def split_common_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two full texts into (prompt, chosen_response, rejected_response).

    The prompt is the longest common prefix, cut back to just after its last whitespace
    character when it does not already end in whitespace, so no word is split between the
    prompt and the responses ("Q: cats" / "Q: cars" -> "Q: ", "cats", "cars"). No whitespace in
    the common part gives an empty prompt.
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    if n and not chosen[n - 1].isspace():
        n = max((i + 1 for i, ch in enumerate(chosen[:n]) if ch.isspace()), default=0)
    return chosen[:n], chosen[n:], rejected[n:]


def _messages(rec: Record, key: str, value: list[Any]) -> list[Message]:
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise rec.error("expected a message object {role, content}", f"{key}[{i}]")
        for part in ("role", "content"):
            if not isinstance(msg.get(part), str):
                raise rec.error("missing or not text", f"{key}[{i}].{part}")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def text_or_messages(rec: Record, key: str) -> str | list[Message]:
    """A non-empty string, or a non-empty list of validated chat messages (prompt or response)."""
    value = rec.require(key)
    if isinstance(value, list):
        if not value:
            raise rec.error("is an empty list of messages", key)
        return _messages(rec, key, value)
    return rec.text(key)


def response_text(rec: Record, key: str, response: str | list[Message]) -> str:
    """The response as text: itself, its single message's content, or `messages_to_text`."""
    if isinstance(response, list):
        if not response:
            raise rec.error("has no messages after the shared prompt", key)
        response = response[0]["content"] if len(response) == 1 else messages_to_text(response)
    if not response:
        raise rec.error("is an empty response (after removing any shared prompt)", key)
    return response


def instruction_prompt(rec: Record) -> str:
    """AlpacaFarm prompt: `instruction`, plus `"\\n" + input` when `input` is non-empty."""
    instruction = rec.text("instruction")
    extra = rec.text("input", allow_empty=True) if rec.data.get("input") is not None else ""
    return f"{instruction}\n{extra}" if extra else instruction


def row_prompt(rec: Record, prompt_key: str | None = "prompt") -> Prompt:
    """A prompt column when the row has one, else the seeds' instruction + input.

    An `instruction` that holds chat messages is the prompt itself: our eval files (ppo's
    eval/eval-{step}.json, `goodhart evaluate` output) keep Coste's column name for chat prompts.
    """
    if prompt_key and prompt_key in rec.data:
        return text_or_messages(rec, prompt_key)
    if isinstance(rec.data.get("instruction"), list):
        return text_or_messages(rec, "instruction")
    return instruction_prompt(rec)


def read_rows(path: str | Path, skip_invalid: bool) -> tuple[list[Record], int]:
    if skip_invalid:
        return read_records(path, skip_invalid=True)
    return read_records(path), 0


def convert_rows(
    path: str | Path,
    fn: Callable[[Record], T],
    skip_invalid: bool,
    read: tuple[list[Record], int] | None = None,
) -> tuple[list[T], list[Record], int]:
    """Apply `fn` to every record (of `read`, else of the file); bad rows raise, or are counted.

    Returns (items, the records they came from, rows skipped).
    """
    records, skipped = read if read is not None else read_rows(path, skip_invalid)
    items, kept = [], []
    for rec in records:
        try:
            items.append(fn(rec))
            kept.append(rec)
        except InputError:
            if not skip_invalid:
                raise
            skipped += 1
    if not items:
        raise input_error(f"no valid rows ({skipped} invalid rows skipped)", path)
    return items, kept, skipped


def _result(items: list[T], skipped: int, skip_invalid: bool) -> list[T] | tuple[list[T], int]:
    return (items, skipped) if skip_invalid else items


def load_prompts(
    path: str | Path, prompt_key: str = "prompt", *, skip_invalid: bool = False
) -> list[Prompt] | tuple[list[Prompt], int]:
    """Prompts (str, or chat messages) from column `prompt_key`; see the module docstring.

    When the first row has no such column, the layouts the seeds' prompt sets come in are read:
    `context_messages` (the length paper's PPO prompts) or `instruction` (+ `input`, the
    AlpacaFarm splits). Returns the list, or `(prompts, n_skipped)` with `skip_invalid=True`.
    """
    read = read_rows(path, skip_invalid)
    first = read[0][0].data
    key = prompt_key if prompt_key in first else next(
        (k for k in ("context_messages", "instruction") if k in first), prompt_key
    )  # fmt: skip

    def row(rec: Record) -> Prompt:
        return row_prompt(rec, None) if key == "instruction" else text_or_messages(rec, key)

    items, _, skipped = convert_rows(path, row, skip_invalid, read)
    return _result(items, skipped, skip_invalid)


def load_demonstrations(
    path: str | Path,
    prompt_key: str = "prompt",
    completion_key: str = "completion",
    *,
    skip_invalid: bool = False,
) -> list[Demonstration] | tuple[list[Demonstration], int]:
    """SFT pairs from columns `prompt_key` and `completion_key` (non-empty text or messages)."""

    def row(rec: Record) -> Demonstration:
        return trl_demonstration(rec, prompt_key, completion_key)

    items, _, skipped = convert_rows(path, row, skip_invalid)
    return _result(items, skipped, skip_invalid)


def trl_demonstration(rec: Record, prompt_key: str, completion_key: str) -> Demonstration:
    """One prompt/completion row (each non-empty text or messages)."""
    prompt = text_or_messages(rec, prompt_key)
    completion = response_text(rec, completion_key, text_or_messages(rec, completion_key))
    return Demonstration(prompt, completion)


def load_preferences(
    path: str | Path,
    prompt_key: str | None = "prompt",
    chosen_key: str = "chosen",
    rejected_key: str = "rejected",
    margin_key: str | None = "margin",
    *,
    skip_invalid: bool = False,
) -> list[Preference] | tuple[list[Preference], int]:
    """Preference pairs in TRL's explicit-prompt or implicit-prompt form, text or conversational.

    Explicit form (the first row has `prompt_key`): every row needs a prompt, and `chosen` /
    `rejected` hold only the responses. Implicit form (no prompt column, or `prompt_key=None`):
    `chosen` and `rejected` are full texts (or full conversations); the prompt is their longest
    common prefix, see `split_common_prefix` (for conversations: the longest run of identical
    leading messages). `margin` is optional: a finite number, or absent/null for None.
    """
    read = read_rows(path, skip_invalid)
    explicit = prompt_key is not None and prompt_key in read[0][0].data
    keys = (prompt_key if explicit else None, chosen_key, rejected_key, margin_key)
    items, _, skipped = convert_rows(
        path, lambda rec: trl_preference(rec, *keys), skip_invalid, read
    )
    return _result(items, skipped, skip_invalid)


def trl_preference(
    rec: Record,
    prompt_key: str | None,
    chosen_key: str = "chosen",
    rejected_key: str = "rejected",
    margin_key: str | None = "margin",
) -> Preference:
    """One TRL row: explicit prompt (`prompt_key` set) or implicit (None), text or messages."""
    chosen, rejected = text_or_messages(rec, chosen_key), text_or_messages(rec, rejected_key)
    if prompt_key is not None:
        prompt: Prompt = text_or_messages(rec, prompt_key)
    else:
        prompt, chosen, rejected = _split_implicit(rec, chosen_key, chosen, rejected)
    if prompt_key is not None and chosen == rejected and not _gold_labelled(rec):
        raise rec.error("chosen and rejected are identical", chosen_key)
    margin = rec.optional_number(margin_key) if margin_key else None
    return Preference(
        prompt,
        response_text(rec, chosen_key, chosen),
        response_text(rec, rejected_key, rejected),
        margin,
    )


def _gold_labelled(rec: Record) -> bool:
    """A row labelled by a known gold program (the toy world writes gold_chosen/gold_rejected):
    there two equal samples are a genuine tie, kept so the toy data stay as they were made."""
    return "gold_chosen" in rec.data and "gold_rejected" in rec.data


def _split_implicit(
    rec: Record, chosen_key: str, chosen: str | list[Message], rejected: str | list[Message]
) -> tuple[Prompt, str | list[Message], str | list[Message]]:
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise rec.error("chosen and rejected must both be text or both be messages", chosen_key)
    if chosen == rejected:
        raise rec.error("chosen and rejected are identical", chosen_key)
    if isinstance(chosen, str):
        assert isinstance(rejected, str)
        return split_common_prefix(chosen, rejected)
    assert isinstance(rejected, list)
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        raise rec.error("chosen and rejected share no leading message to use as prompt", chosen_key)
    return chosen[:n], chosen[n:], rejected[n:]


def import_alpacafarm(
    path: str | Path, *, skip_invalid: bool = False
) -> list[Preference] | tuple[list[Preference], int]:
    """AlpacaFarm / RLCD rows (`instruction`, `input`, `output_1`, `output_2`, `preference`).

    `preference` is 1 (output_1 preferred) or 2. The prompt is the instruction, plus a newline
    and the input when the input is non-empty (a missing `input` column counts as empty).
    Empty outputs are errors (the seed code drops them silently; use `skip_invalid`).
    """

    items, _, skipped = convert_rows(path, alpacafarm_preference, skip_invalid)
    return _result(items, skipped, skip_invalid)


def alpacafarm_preference(rec: Record) -> Preference:
    """One AlpacaFarm row (see `import_alpacafarm`)."""
    prompt = instruction_prompt(rec)
    out1, out2 = rec.text("output_1"), rec.text("output_2")
    pref = rec.number("preference")
    if pref not in (1.0, 2.0):
        raise rec.error(f"must be 1 or 2, got {rec.data['preference']!r}", "preference")
    return Preference(prompt, out1, out2) if pref == 1.0 else Preference(prompt, out2, out1)


def load_scored_generations(
    path: str | Path,
    prompt_key: str = "prompt",
    answers_key: str = "answers",
    gold_key: str = "gold_scores",
    *,
    truncate_to_min: bool = False,
    skip_invalid: bool = False,
    read: tuple[list[Record], int] | None = None,
) -> ScoredGenerations | tuple[ScoredGenerations, int]:
    """Best-of-n input: per row a prompt, `answers` (list of str) and `gold_scores` (same length).

    The prompt is `prompt_key`, or, when the first row has no such column, the seeds'
    `instruction` + `input` (as in `import_alpacafarm`). Scores must be finite numbers; a NaN
    names its row and index. Every row must have the same N, unless `truncate_to_min=True`,
    which keeps the first min-N answers of each row (generation order, so estimates stay
    unbiased). Empty answer strings are allowed: a policy may stop at once. `read`: the file's
    (records, rows skipped) when the caller has read them already (a large file is read once).
    """
    read = read if read is not None else read_rows(path, skip_invalid)
    use_prompt = prompt_key in read[0][0].data

    def row(rec: Record) -> tuple[Prompt, list[str], list[float]]:
        return scored_row(rec, prompt_key if use_prompt else None, answers_key, gold_key)

    items, records, skipped = convert_rows(path, row, skip_invalid, read)
    n_min = min(len(answers) for _, answers, _ in items)
    if not truncate_to_min:
        n_first = len(items[0][1])
        for rec, (_, answers, _) in zip(records, items):
            if len(answers) != n_first:
                raise rec.error(
                    f"has {len(answers)} answers but {records[0].location()} has {n_first}; "
                    f"pass truncate_to_min=True to keep the first {n_min} of every row",
                    answers_key,
                )
    result = ScoredGenerations(
        prompts=[p for p, _, _ in items],
        answers=[list(a[:n_min]) for _, a, _ in items],
        gold_scores=np.array([g[:n_min] for _, _, g in items], dtype=np.float64),
    )
    return (result, skipped) if skip_invalid else result


def scored_row(
    rec: Record, prompt_key: str | None, answers_key: str = "answers", gold_key: str = "gold_scores"
) -> tuple[Prompt, list[str], list[float]]:
    """One scored-generations row: (prompt, answers, gold scores of the same length).

    The prompt is column `prompt_key`, or with None the seeds' `instruction` + `input`.
    """
    prompt = text_or_messages(rec, prompt_key) if prompt_key else row_prompt(rec, None)
    answers = [
        rec.as_text(a, f"{answers_key}[{i}]", allow_empty=True)
        for i, a in enumerate(rec.sequence(answers_key))
    ]
    scores = rec.sequence(gold_key)
    if len(scores) != len(answers):
        raise rec.error(f"has {len(scores)} scores for {len(answers)} answers", gold_key)
    return prompt, answers, [rec.as_number(s, f"{gold_key}[{i}]") for i, s in enumerate(scores)]
