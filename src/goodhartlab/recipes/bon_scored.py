"""`goodhart bon`'s scored generations: N answers per prompt with gold and per-member proxy
scores, and the file that stores them (RUN/scored_generations.jsonl) so a later run reuses them.

Reads our own file (with `ended` and `proxy_scores`) or the seeds' `gold_labelled_gens` layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from goodhartlab.data.formats import load_scored_generations
from goodhartlab.data.records import read_records, write_jsonl_atomic
from goodhartlab.runs import RunDir

SCORED_FILE = "scored_generations.jsonl"


@dataclass
class Scored:
    """N answers per prompt, in generation order, with every score known so far.

    Shape: answers P lists of N; ended (P, N) bool or None (unknown); gold (P, N) or None;
    proxy maps a member key (its resolved path) to (P, N).
    """

    prompts: list[Any]  # text, or chat messages (rendered by the tokenizer's chat template)
    answers: list[list[str]]
    ended: np.ndarray | None = None
    gold: np.ndarray | None = None
    proxy: dict[str, np.ndarray] = field(default_factory=dict)

    def flat(self) -> tuple[list[str], list[str], tuple[int, int]]:
        """(prompt per answer, answers) in row-major order, and the (P, N) shape to fold back."""
        prompts = [p for p, row in zip(self.prompts, self.answers) for _ in row]
        answers = [a for row in self.answers for a in row]
        return prompts, answers, (len(self.prompts), len(self.answers[0]))

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-able row per prompt: answers, ended, gold and every member's proxy scores."""
        out = []
        for p, prompt in enumerate(self.prompts):
            row: dict[str, Any] = {"prompt": prompt, "answers": self.answers[p]}
            if self.ended is not None:
                row["ended"] = self.ended[p].tolist()
            if self.gold is not None:
                row["gold_scores"] = self.gold[p].tolist()
            row["proxy_scores"] = {k: v[p].tolist() for k, v in self.proxy.items()}
            out.append(row)
        return out


def save_scored(run: RunDir, scored: Scored) -> Path:
    """Write RUN/scored_generations.jsonl (atomically): one row per prompt."""
    return write_jsonl_atomic(run.file(SCORED_FILE), scored.rows())


def load_scored(path: str | Path) -> Scored:
    """Our scored file (with ended and proxy_scores) or the seeds' layout (gold only)."""
    records = read_records(path)  # once: the validated columns and ours come from these rows
    gens = load_scored_generations(path, read=(records, 0))
    n = gens.gold_scores.shape[1]
    prompts = list(gens.prompts)  # chat prompts stay messages: the chat template renders them
    ended, proxy = None, {}
    if "ended" in records[0].data:
        ended = np.array([_fixed_list(r, "ended", n) for r in records], dtype=bool)
    if "proxy_scores" in records[0].data:
        keys = list(records[0].data["proxy_scores"])
        for key in keys:
            proxy[key] = np.array(
                [
                    [r.as_number(x, f"proxy_scores.{key}") for x in _member(r, key, n)]
                    for r in records
                ]
            )
    return Scored(prompts, gens.answers, ended, gens.gold_scores, proxy)


def _fixed_list(rec: Any, key: str, n: int) -> list[Any]:
    """`rec[key]` as a list of exactly n entries (one per answer), else an InputError."""
    values = rec.sequence(key)
    if len(values) != n:
        raise rec.error(f"has {len(values)} entries, answers has {n}", key)
    return values


def _member(rec: Any, key: str, n: int) -> list[Any]:
    """Member `key`'s n proxy scores of a row, else an InputError naming the row and field."""
    scores = rec.data["proxy_scores"]
    if not isinstance(scores, dict) or key not in scores:
        raise rec.error(
            f"proxy_scores has no member {key!r} (the first row has it)", "proxy_scores"
        )
    if not isinstance(scores[key], list) or len(scores[key]) != n:
        raise rec.error(f"must be a list of {n} numbers", f"proxy_scores.{key}")
    return scores[key]
