"""Preference pairs from the layouts real datasets come in, chosen by `data.format=`.

Formats (`PREFERENCE_FORMATS`):
- `trl`: TRL's `prompt`/`chosen`/`rejected` (explicit prompt), or `chosen`/`rejected` alone
  (implicit prompt: the shared prefix, `formats.split_common_prefix`); text or conversational
  (lists of `{role, content}`); optional `margin`; gold columns `gold_chosen`/`gold_rejected`
  (the toy world's files) are kept for accuracy against gold.
- `hh`: Anthropic HH-RLHF transcripts; the shared turns become a chat prompt (`data.hh`).
- `alpacafarm`: `instruction`, `input`, `output_1`, `output_2`, `preference` (1 or 2).
- `gold_labelled`: the seeds' gold-labelled pairs (Coste et al.'s
  `1.4b-policy_preference_data_gold_labelled`): `instruction`, `input` (or a prompt column),
  `answers` (two texts), `preference` (0 or 1: the index of the preferred answer). Two equal
  answers are kept, as the seeds keep them (a tie gives no Bradley–Terry gradient).
- `scored_generations`: `prompt` (or `instruction` + `input`), `answers`, `gold_scores`, as
  `goodhart bon` and `goodhart score` read them; answers 0-1, 2-3, ... of each row form pairs,
  the higher gold score is chosen, equal scores are no preference and are dropped (counted in
  `ties`). Gold scores are kept for accuracy against gold.
- `auto` (default): chosen from the first row's columns, in the order above.
Key remapping (`prompt_key`, `chosen_key`, `rejected_key`) applies to `trl` and `hh`; a prompt
column named `prompt_key` also replaces `instruction` + `input` in the seeds' layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np

from goodhartlab.config.schemas import PreferenceFormat
from goodhartlab.data.formats import (
    Preference,
    alpacafarm_preference,
    convert_rows,
    read_rows,
    row_prompt,
    scored_row,
    trl_preference,
)
from goodhartlab.data.hh import hh_preference, looks_like_hh
from goodhartlab.data.records import Record

PREFERENCE_FORMATS: tuple[str, ...] = get_args(PreferenceFormat)


@dataclass(frozen=True)
class PairKeys:
    """Column names of the TRL/HH layouts (`prompt=None`: implicit prompt)."""

    prompt: str | None = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    margin: str | None = "margin"


@dataclass
class ImportedPairs:
    """Pairs of one file and how they were read.

    `gold_chosen`/`gold_rejected` (N,) when the format carries gold scores for every pair;
    `skipped`: invalid rows dropped on request (`skip_invalid`); `ties`: equal-gold answer pairs
    of scored generations, which are not preferences.
    """

    pairs: list[Preference]
    format: str
    gold_chosen: np.ndarray | None = None
    gold_rejected: np.ndarray | None = None
    skipped: int = 0
    ties: int = 0


def detect_format(rec: Record, keys: PairKeys) -> str:
    """The format of a file from its first row's columns (see the module docstring)."""
    cols = rec.data
    if keys.chosen in cols and keys.rejected in cols:
        implicit = keys.prompt is None or keys.prompt not in cols
        return "hh" if implicit and looks_like_hh(cols[keys.chosen]) else "trl"
    for fmt, needed in (
        ("alpacafarm", {"output_1", "output_2", "preference"}),
        ("gold_labelled", {"answers", "preference"}),
        ("scored_generations", {"answers", "gold_scores"}),
    ):
        if needed <= set(cols):
            return fmt
    raise rec.error(
        f"cannot tell the preference format from the columns {sorted(cols)}: expected "
        f"{keys.chosen!r}/{keys.rejected!r} (trl, hh), output_1/output_2/preference "
        "(alpacafarm), answers/preference (gold_labelled) or answers/gold_scores "
        f"(scored_generations); set data.format to one of {list(PREFERENCE_FORMATS[1:])}"
    )


def import_preferences(
    path: str | Path,
    fmt: str = "auto",
    keys: PairKeys = PairKeys(),
    *,
    skip_invalid: bool = False,
) -> ImportedPairs:
    """Every pair of `path` (a file, a save_to_disk dir or a hub dataset) in format `fmt`.

    A bad row raises a one-line InputError naming file, line (or row) and field, unless
    `skip_invalid`, which drops it and counts it in `skipped`.
    """
    if fmt not in PREFERENCE_FORMATS:
        raise ValueError(f"unknown preference format {fmt!r}; known: {list(PREFERENCE_FORMATS)}")
    read = read_rows(path, skip_invalid)
    fmt = detect_format(read[0][0], keys) if fmt == "auto" else fmt
    if fmt == "scored_generations":
        return _scored_pairs(path, read, keys, skip_invalid)
    row = _row_function(fmt, keys, read[0][0])
    pairs, kept, skipped = convert_rows(path, row, skip_invalid, read)
    gold_c, gold_r = _gold_columns(kept) if fmt == "trl" else (None, None)
    return ImportedPairs(pairs, fmt, gold_c, gold_r, skipped)


def _row_function(fmt: str, keys: PairKeys, first: Record) -> Callable[[Record], Preference]:
    if fmt == "trl":
        explicit = keys.prompt is not None and keys.prompt in first.data
        prompt_key = keys.prompt if explicit else None
        return lambda rec: trl_preference(rec, prompt_key, keys.chosen, keys.rejected, keys.margin)
    if fmt == "hh":
        return lambda rec: hh_preference(rec, keys.chosen, keys.rejected)
    if fmt == "alpacafarm":
        return alpacafarm_preference
    return lambda rec: gold_labelled_preference(rec, keys.prompt)


def gold_labelled_preference(rec: Record, prompt_key: str | None = "prompt") -> Preference:
    """One row of the seeds' gold-labelled pairs (see the module docstring)."""
    prompt = row_prompt(rec, prompt_key)
    answers = rec.sequence("answers")
    if len(answers) != 2:
        raise rec.error(f"must hold 2 answers, got {len(answers)}", "answers")
    texts = [rec.as_text(a, f"answers[{i}]") for i, a in enumerate(answers)]
    pref = rec.number("preference")
    if pref not in (0.0, 1.0):
        raise rec.error(
            f"must be 0 or 1 (the preferred answer's index), got {pref:g}", "preference"
        )
    return Preference(prompt, texts[int(pref)], texts[1 - int(pref)])


def _gold_columns(records: list[Record]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gold scores of both sides when every row has them (the toy world's files)."""
    if not all("gold_chosen" in r.data and "gold_rejected" in r.data for r in records):
        return None, None
    return (
        np.array([r.number("gold_chosen") for r in records]),
        np.array([r.number("gold_rejected") for r in records]),
    )


def _scored_pairs(
    path: str | Path, read: tuple[list[Record], int], keys: PairKeys, skip_invalid: bool
) -> ImportedPairs:
    """Pairs (answers 2j, 2j+1) of scored generations, chosen by gold; ties dropped, counted."""
    use_prompt = keys.prompt if keys.prompt and keys.prompt in read[0][0].data else None

    def row(rec: Record) -> tuple[list[tuple[Preference, float, float]], int]:
        prompt, answers, gold = scored_row(rec, use_prompt)
        out, ties = [], 0
        for j in range(0, len(answers) - 1, 2):
            (a, ga), (b, gb) = (answers[j], gold[j]), (answers[j + 1], gold[j + 1])
            if ga == gb:
                ties += 1
                continue
            if ga < gb:
                (a, ga), (b, gb) = (b, gb), (a, ga)
            out.append((Preference(prompt, a, b), ga, gb))
        return out, ties

    items, _, skipped = convert_rows(path, row, skip_invalid, read)
    flat = [pair for pairs, _ in items for pair in pairs]
    ties = sum(t for _, t in items)
    if not flat:
        from goodhartlab.errors import input_error

        raise input_error(f"no pair of answers with different gold scores ({ties} ties)", path)
    return ImportedPairs(
        [p for p, _, _ in flat],
        "scored_generations",
        np.array([g for _, g, _ in flat]),
        np.array([g for _, _, g in flat]),
        skipped,
        ties,
    )
