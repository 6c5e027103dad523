"""`make`: write the toy world's datasets (and its tokenizer) to a directory, deterministically.

Files (formats of DESIGN.md §5, so a user's own data drops in where these go):
    tokenizer/                  the toy tokenizer (save_pretrained)
    prompts_{train,eval}.jsonl  {"prompt"}
    demos_{train,eval}.jsonl    {"prompt", "completion"}: teacher demonstrations (SFT data)
    prefs_{train,eval}.jsonl    {"prompt", "chosen", "rejected", "gold_chosen", "gold_rejected"}:
                                pairs of teacher samples labelled by gold (policy-sample pairs are
                                made by `goodhart train-rm` from an SFT policy)
    world.json                  the spec and measured statistics (teacher gold, correlations)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from goodhartlab.config.toyworld_schema import ToyWorldSpec
from goodhartlab.toyworld.gold import FILLER_BUDGET, breakdown
from goodhartlab.toyworld.preferences import label_pairs
from goodhartlab.toyworld.teacher import demonstrations, sample_prompts


@dataclass(frozen=True)
class TeacherStats:
    """What makes the world interesting: gold of the teacher and its correlated proxies."""

    gold_mean: float
    corr_length_gold: float
    corr_fillers_gold: float
    mean_length: float
    filler_budget: int = FILLER_BUDGET


def teacher_stats(prompts: list[str], completions: list[str]) -> TeacherStats:
    """Mean gold and Pearson r of gold with length and with filler count."""
    parts = [breakdown(p, c, has_eos=True) for p, c in zip(prompts, completions)]
    gold = np.array([b.value for b in parts])
    length = np.array([b.length for b in parts], dtype=float)
    fillers = np.array([b.fillers for b in parts], dtype=float)
    return TeacherStats(
        gold_mean=float(gold.mean()),
        corr_length_gold=float(np.corrcoef(length, gold)[0, 1]),
        corr_fillers_gold=float(np.corrcoef(fillers, gold)[0, 1]),
        mean_length=float(length.mean()),
    )


def _pairs(n: int, rng: np.random.Generator, spec: ToyWorldSpec) -> list[dict]:
    prompts = sample_prompts(n, rng)
    first, second = demonstrations(prompts, rng), demonstrations(prompts, rng)
    texts = [p.text for p in prompts]
    labelled = label_pairs(texts, first, second, rng, spec.label_temperature, spec.label_flip_prob)
    return [
        {
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "gold_chosen": p.gold_chosen,
            "gold_rejected": p.gold_rejected,
        }
        for p in labelled
    ]


def make(out_dir: str | Path, spec: ToyWorldSpec | None = None) -> TeacherStats:
    """Write the toy world to `out_dir` (atomically per file); returns the teacher statistics."""
    from goodhartlab.data.records import write_jsonl_atomic
    from goodhartlab.runs.atomic import atomic_directory, atomic_write_json
    from goodhartlab.toyworld.vocab import build_tokenizer

    spec = spec or ToyWorldSpec()
    out = Path(out_dir)
    rng = np.random.default_rng(spec.seed)
    stats = None
    for split, n in (("train", spec.n_train_demos), ("eval", spec.n_eval_prompts)):
        prompts = [p.text for p in sample_prompts(n, rng)]
        completions = demonstrations([_parse(p) for p in prompts], rng)
        write_jsonl_atomic(out / f"prompts_{split}.jsonl", [{"prompt": p} for p in prompts])
        rows = [{"prompt": p, "completion": c} for p, c in zip(prompts, completions)]
        write_jsonl_atomic(out / f"demos_{split}.jsonl", rows)
        if split == "train":
            stats = teacher_stats(prompts, completions)
    for split, n in (("train", spec.n_train_pairs), ("eval", spec.n_eval_pairs)):
        write_jsonl_atomic(out / f"prefs_{split}.jsonl", _pairs(n, rng, spec))
    with atomic_directory(out / "tokenizer") as tmp:
        build_tokenizer().save_pretrained(tmp)
    assert stats is not None
    atomic_write_json(out / "world.json", {"spec": asdict(spec), "teacher": asdict(stats)})
    return stats


def _parse(text: str):
    from goodhartlab.toyworld.gold import parse_prompt

    return parse_prompt(text)
