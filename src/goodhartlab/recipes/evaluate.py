"""`goodhart evaluate`: answer held-out prompts with a policy checkpoint; proxy and gold scores.

Writes the seed's `gold_eval_with_response_ids.json` (instruction, answers, answers_ids,
proxy_scores, gold_scores) beside the checkpoint (or to `output`), and RUN/evaluate_summary.json.
The evaluation itself is `ppo_eval.evaluate_policy`, the one `goodhart ppo` runs every
`eval.every` iterations.
"""

from __future__ import annotations

from pathlib import Path

from goodhartlab.config.ppo_schema import EvaluateConfig
from goodhartlab.errors import ConfigError
from goodhartlab.models import freeze, load_policy
from goodhartlab.recipes.ppo_eval import eval_prompts, evaluate_policy
from goodhartlab.recipes.ppo_reward import load_reward_models
from goodhartlab.runs import RunDir
from goodhartlab.runs.atomic import atomic_write_json


def run(cfg: EvaluateConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """`goodhart evaluate`: answer held-out prompts with a checkpoint; proxy and gold scores."""
    if not cfg.checkpoint:
        raise ConfigError("goodhart evaluate needs checkpoint=DIR (a policy directory)")
    # step 1. read the prompts first: a bad or empty file fails in milliseconds, not after the
    # policy and reward models have loaded
    prompts = eval_prompts(cfg.prompts, cfg.n_prompts)
    # step 2. the frozen policy and the reward models that score its answers
    policy, tok = load_policy(cfg.checkpoint, device=cfg.device)
    freeze(policy)
    models = load_reward_models(cfg.reward, next(policy.parameters()).device)
    result = evaluate_policy(
        policy, None, tok, cfg.reward, models, prompts, cfg.generation, cfg.seed, cfg.template
    )
    output = Path(cfg.output or Path(cfg.checkpoint) / "gold_eval_with_response_ids.json")
    atomic_write_json(output, result.rows)
    run_dir.write_json("evaluate_summary.json", {"output": str(output), **result.metrics})
    shown = ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items() if k.startswith("reward/"))
    print(f"evaluate: {shown} on {len(prompts)} prompts -> {output}")
    return result.metrics
