"""Generation files to (re)score: a prompt and one or more answers per row, rows kept whole.

Why its own loader: `goodhart score` scores what other tools sampled (the length paper's
`rmsco_outs` re-scores `generate_outs` files), so it accepts the layouts those files come in
and writes every row back with its other columns untouched. Accepted per row:
- prompt: column `prompt_key` (text or chat messages), else the seeds' `instruction` (+ `input`);
- answers: column `answers_key` (a list, as Coste's and our eval files hold), else a single
  `response` or `output` string (our SFT `samples.jsonl`, AlpacaFarm outputs) as a list of one;
- optional `ended` (one bool per answer; the toy gold program penalizes a missing eos).
Rows may hold different numbers of answers. Empty answers are allowed (a policy may stop at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.data.formats import Prompt, convert_rows, read_rows, row_prompt
from goodhartlab.data.records import Record

SINGLE_ANSWER_KEYS = ("response", "output")


@dataclass(frozen=True)
class GenerationRow:
    """One row: its prompt, answers, eos flags (None: unknown) and the row as read."""

    prompt: Prompt
    answers: list[str]
    ended: list[bool] | None
    data: dict[str, Any]


def _answers(rec: Record, answers_key: str) -> tuple[str, list[str]]:
    """(column used, answers) of a row; see the module docstring."""
    if answers_key in rec.data:
        values = rec.sequence(answers_key)
        return answers_key, [
            rec.as_text(a, f"{answers_key}[{i}]", allow_empty=True) for i, a in enumerate(values)
        ]
    for key in SINGLE_ANSWER_KEYS:
        if key in rec.data:
            return key, [rec.text(key, allow_empty=True)]
    raise rec.error(f"missing column (nor a single {' or '.join(SINGLE_ANSWER_KEYS)})", answers_key)


def generation_row(rec: Record, prompt_key: str, answers_key: str) -> GenerationRow:
    """Parse and validate one row (one-line errors naming file, line and field)."""
    prompt = row_prompt(rec, prompt_key)
    used, answers = _answers(rec, answers_key)
    ended = None
    if "ended" in rec.data:
        flags = rec.data["ended"]
        flags = flags if isinstance(flags, list) else [flags]
        if len(flags) != len(answers) or not all(isinstance(f, bool) for f in flags):
            raise rec.error(f"must be {len(answers)} booleans, one per answer of '{used}'", "ended")
        ended = list(flags)
    return GenerationRow(prompt, answers, ended, dict(rec.data))


def load_generations(
    path: str | Path, prompt_key: str = "prompt", answers_key: str = "answers"
) -> list[GenerationRow]:
    """Every row of a generation file (or dataset); a bad row is a one-line InputError."""
    read = read_rows(path, skip_invalid=False)
    rows, _, _ = convert_rows(
        path, lambda rec: generation_row(rec, prompt_key, answers_key), False, read
    )
    return rows
