"""`goodhart score GENERATIONS --rm RM [--rm RM2] [--gold GOLD]`: score an existing generation file.

The length paper's `rmsco_outs`: answers sampled once (by `goodhart evaluate`, our PPO eval
files, or any other tool) are scored by reward models afterwards. Reads top to bottom:
1 the generation file (`data.generations`: prompt or instruction + input, answers or a single
response), 2 every proxy member ({seed} filled, ensembles expanded), one at a time, the texts
tokenized once per distinct tokenizer, 3 the members combined (`objective`) and gold (toy
program or a gold RM), 4 each row written back with `proxy_scores` (one per answer),
`member_scores` (with several members) and `gold_scores`, plus RUN/score_summary.json with the
means and the proxy's Pearson r with answer length in tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from goodhartlab.analysis.correlation import pearson
from goodhartlab.config.score_schema import ScoreConfig
from goodhartlab.config.seed_paths import expand_seeds
from goodhartlab.core.ensemble import aggregate
from goodhartlab.data.encoding import SharedEncodings
from goodhartlab.data.generations import load_generations
from goodhartlab.data.records import write_jsonl_atomic
from goodhartlab.errors import ConfigError, input_error
from goodhartlab.recipes.rm_members import member_names, resolve_members, score_member
from goodhartlab.runs import RunDir
from goodhartlab.toyworld import gold_reward

SCORED_FILE = "scored.jsonl"


def check_config(cfg: ScoreConfig) -> None:
    """Fails before anything loads: no file, nothing to score with, a bad {seed} pattern."""
    if not cfg.generations:
        raise ConfigError("goodhart score needs a generation file: goodhart score FILE --rm RM")
    if not cfg.reward_models and cfg.gold is None:
        raise ConfigError("nothing to score with: give --rm RM (reward_models=[...]) or --gold")
    expand_seeds(cfg.reward_models, cfg.seeds, "reward_models")


def gold_scores(cfg: ScoreConfig, rows: list, prompts: list, answers: list, encodings: Any):
    """Step 3 (gold): the toy gold program (eos flags from the file, else ended) or a gold RM."""
    if cfg.gold == "toy":
        ended = [e for r in rows for e in (r.ended or [True] * len(r.answers))]
        try:
            return np.asarray(gold_reward(prompts, answers, ended), dtype=np.float64)
        except ValueError as exc:
            raise input_error(f"toy gold cannot score these generations ({exc})", "gold") from None
    return score_member(cfg.gold, encodings, cfg.device, cfg.batch_size)[0]


def scored_rows(rows: list, columns: dict[str, Any], counts: list[int]) -> list[dict]:
    """Step 4: each row as read, plus its slice of every score column (lists per answer)."""
    ends = np.cumsum(counts)
    out = []
    for row, end, n in zip(rows, ends, counts):
        item = dict(row.data)
        for key, values in columns.items():
            if isinstance(values, dict):
                item[key] = {k: v[end - n : end].tolist() for k, v in values.items()}
            else:
                item[key] = values[end - n : end].tolist()
        out.append(item)
    return out


def run(cfg: ScoreConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; returns the summary also written to RUN/score_summary.json."""
    check_config(cfg)
    rows = load_generations(cfg.generations, cfg.prompt_key, cfg.answers_key)  # 1
    members = resolve_members(cfg.reward_models, cfg.seeds)  # 2 (a bad path fails at once)
    counts = [len(r.answers) for r in rows]
    prompts = [r.prompt for r in rows for _ in r.answers]
    answers = [a for r in rows for a in r.answers]
    encodings = SharedEncodings(prompts, answers, cfg.template)
    columns: dict[str, Any] = {}
    summary: dict[str, Any] = {"n_rows": len(rows), "n_answers": len(answers)}
    if members:
        scored = [score_member(m, encodings, cfg.device, cfg.batch_size) for m in members]
        stacked = np.stack([values for values, _ in scored])
        proxy = stacked[0] if len(members) == 1 else aggregate(
            stacked, cfg.objective, uwo_coef=cfg.uwo_coef, ddof=cfg.ddof
        )  # fmt: skip
        columns["proxy_scores"] = np.asarray(proxy, dtype=np.float64)
        if len(members) > 1:
            columns["member_scores"] = dict(zip(member_names(members), stacked))
        lengths = encodings.get(scored[0][1]).response_lengths  # the first member's tokens
        summary |= {"members": [str(m) for m in members], "proxy_mean": float(proxy.mean()),
                    "proxy_length_pearson": pearson(proxy, lengths)}  # fmt: skip
    if cfg.gold is not None:  # 3
        columns["gold_scores"] = gold_scores(cfg, rows, prompts, answers, encodings)
        summary["gold_mean"] = float(columns["gold_scores"].mean())
    output = Path(cfg.output) if cfg.output else run_dir.file(SCORED_FILE)
    write_jsonl_atomic(output, scored_rows(rows, columns, counts))  # 4
    summary["output"] = str(output)
    run_dir.write_json("score_summary.json", summary)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if k.endswith("_mean"))
    print(f"score: {shown} over {len(answers)} answers -> {output}")
    return summary
