"""`goodhart evaluate`: answer held-out prompts with a policy checkpoint; proxy and gold scores.

Writes the seed's `gold_eval_with_response_ids.json` (instruction, answers, answers_ids,
proxy_scores, gold_scores; with `reference=DIR` also each answer's `kl` to that policy) beside
the checkpoint (or to `output`), and RUN/evaluate_summary.json (with `kl/*` given a reference).
The evaluation itself is `ppo_eval.evaluate_policy`, the one `goodhart ppo` runs every
`eval.every` iterations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goodhartlab.config.ppo_schema import EvaluateConfig
from goodhartlab.errors import ConfigError, input_error
from goodhartlab.models import freeze, load_policy
from goodhartlab.recipes.ppo_eval import eval_prompts, evaluate_policy
from goodhartlab.recipes.ppo_reward import load_reward_models
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.runs import RunDir
from goodhartlab.runs.atomic import atomic_write_json


def prompt_range(cfg: EvaluateConfig) -> list[Any]:
    """Prompts [prompt_start, prompt_start + n_prompts) of the file; a start past the end is an
    error, a short file gives what it has.

    Toy prompts take no range: the toy stream is drawn whole for each length (its categories
    come after all its counts), so [0, 5) and [5, 10) would not be the first 10 prompts.
    """
    if cfg.prompts == "toy" and cfg.prompt_start:
        raise ConfigError(
            f"field 'prompt_start': {cfg.prompt_start} needs a prompt file (prompts=FILE); "
            "toy prompts are drawn whole for each n_prompts, so ranges of them do not tile"
        )
    prompts = eval_prompts(cfg.prompts, cfg.prompt_start + cfg.n_prompts)[cfg.prompt_start :]
    if not prompts:
        raise input_error(f"prompt_start={cfg.prompt_start} is past the last prompt", cfg.prompts)
    return prompts


def per_prompt_rows(rows: list[dict[str, Any]], n: int, start: int) -> list[dict[str, Any]]:
    """The seed's layout with n answers per prompt: consecutive rows of one prompt merged,
    lists of length n, plus `prompt_index` (the prompt's index in the file); `kl` too when the
    rows have it (a reference policy was given)."""
    out = []
    for i in range(0, len(rows), n):
        group = rows[i : i + n]
        merged: dict[str, Any] = {
            "instruction": group[0]["instruction"],
            "prompt_index": start + i // n,
        }
        for key in ("answers", "answers_ids", "proxy_scores", "gold_scores", "kl"):
            if key in group[0]:
                merged[key] = [value for row in group for value in row[key]]
        out.append(merged)
    return out


def output_path(cfg: EvaluateConfig, n_prompts: int) -> Path:
    """`output`, else the seed's file beside the checkpoint; a range that does not start at 0
    carries its bounds in the name, so the jobs of one prompt file (`prompt_start=0`, `=400`,
    ...) do not overwrite each other's answers."""
    if cfg.output:
        return Path(cfg.output)
    name = "gold_eval_with_response_ids"
    if cfg.prompt_start:
        name += f"_{cfg.prompt_start}-{cfg.prompt_start + n_prompts}"
    return Path(cfg.checkpoint) / f"{name}.json"


def run(cfg: EvaluateConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """`goodhart evaluate`: answer held-out prompts with a checkpoint; proxy and gold scores."""
    if not cfg.checkpoint:
        raise ConfigError("goodhart evaluate needs checkpoint=DIR (a policy directory)")
    # step 1. read the prompts first: a bad or empty file fails in milliseconds, not after the
    # policy and reward models have loaded
    prompts = prompt_range(cfg)
    # step 2. the frozen policy and the reward models that score its answers
    policy, tok = load_policy(cfg.checkpoint, device=cfg.device)
    freeze(policy)
    reference = None
    if cfg.reference:  # the SFT policy each answer's KL is measured against
        reference, _ = load_policy(resolve_source(cfg.reference), device=cfg.device)
        freeze(reference)
    models = load_reward_models(cfg.reward, next(policy.parameters()).device)
    repeated = [p for p in prompts for _ in range(cfg.n_samples)]  # step 3. answer and score
    result = evaluate_policy(
        policy, reference, tok, cfg.reward, models, repeated, cfg.generation, cfg.seed,
        cfg.template, cfg.repetition_penalty,
    )  # fmt: skip
    output = output_path(cfg, len(prompts))
    atomic_write_json(output, per_prompt_rows(result.rows, cfg.n_samples, cfg.prompt_start))
    run_dir.write_json("evaluate_summary.json", {"output": str(output), **result.metrics})
    shown = ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if k.startswith("reward/"))
    print(f"evaluate: {shown} on {len(prompts)} prompts x {cfg.n_samples} -> {output}")
    return result.metrics
