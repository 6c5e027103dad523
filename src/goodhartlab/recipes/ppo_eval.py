"""Evaluate a policy on fixed held-out prompts: proxy, gold, divergences to the reference, length.

Used every `eval.every` iterations of `goodhart ppo` (metrics prefixed `eval/`, and the samples
in RUN/eval/eval-{step}.json, see `write_eval_samples`), by `goodhart evaluate`
(`recipes/evaluate.py`) and by `goodhart evaluate-latents`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goodhartlab.config.schemas import GenerationConfig
from goodhartlab.core.regularize import per_sequence_kl
from goodhartlab.data.encoding import decode_responses, encode_prompts, prompt_key
from goodhartlab.data.formats import load_prompts
from goodhartlab.recipes.ppo_reward import score_metrics, score_responses
from goodhartlab.recipes.ppo_step import divergence_metrics
from goodhartlab.rollout.generate import sample
from goodhartlab.rollout.llm import SequenceBatch, policy_pass
from goodhartlab.runs import RunDir
from goodhartlab.runs.atomic import atomic_write_text, json_safe
from goodhartlab.runs.seeding import HELD_OUT_PROMPTS
from goodhartlab.toyworld.teacher import sample_prompts


def eval_prompts(source: str, n: int) -> list[Any]:
    """Toy prompts from a fixed stream apart from training, or the first n of a prompt file
    (text, or chat messages that the tokenizer's chat template renders)."""
    if source == "toy":
        return [p.text for p in sample_prompts(n, np.random.default_rng(HELD_OUT_PROMPTS))]

    return load_prompts(source)[:n]  # chat prompts stay messages: the chat template renders them


# Encoded held-out batches per tokenizer. Why: `goodhart ppo` evaluates the same fixed prompts
# every eval.every iterations, and tokenizing and padding them anew was ~6% of an evaluation.
_BATCHES: weakref.WeakKeyDictionary[Any, dict[tuple, tuple[torch.Tensor, torch.Tensor]]] = (
    weakref.WeakKeyDictionary()
)


def encoded_batch(
    tokenizer: Any, prompts: list[Any], template: str | None, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """`encode_prompts` of one evaluation batch, computed once per tokenizer, template, device
    and prompts (the tensors are only read: sampling and the passes never write to them)."""
    cache = _BATCHES.setdefault(tokenizer, {})
    key = (template, str(device), tuple(prompt_key(p) for p in prompts))
    if key not in cache:
        cache[key] = encode_prompts(tokenizer, prompts, template, device)
    return cache[key]


@dataclass
class Evaluation:
    """Mean metrics, the seed's per-prompt rows (with each answer's `kl` to the reference when
    there is one), per-sample length (tokens) and eos flag, and the scores (`ppo_reward.Scores`:
    every member's, for the hacking detectors)."""

    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    lengths: list[int] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    scores: Any = None


EVAL_DIR = "eval"


def sample_rows(evaluation: Evaluation, kl_list: list[float] | None = None) -> list[dict[str, Any]]:
    """Per prompt, Coste's layout without token ids: instruction, answers, proxy_scores,
    gold_scores, plus lengths (response tokens, eos included) and ended (one entry per answer),
    `kl` (each answer's KL to the SFT policy: the sum over its tokens of log pi - log pi_ref),
    and with several reward models Coste's `ensemble_variance` (the members' variance, ddof 1
    as torch.var; of the scores as combined, i.e. z-scored when reward.normalize). Row 0 gets
    Coste's `kl_list` when given: the training rollouts' KL history (k2), whose last entry is
    the x-value his plotting scripts read.

    Why no answers_ids: these files are written at every evaluation of a run, and the length
    analysis needs only the length; ids would multiply their size several times over.
    """
    members = None if evaluation.scores is None else evaluation.scores.members
    variance = members.var(axis=0, ddof=1) if members is not None and len(members) > 1 else None
    out = []
    for i, (row, n, e) in enumerate(zip(evaluation.rows, evaluation.lengths, evaluation.ended)):
        keys = ("instruction", "answers", "proxy_scores", "gold_scores", "kl")
        sample = {key: row[key] for key in keys if key in row}
        sample |= {"lengths": [int(n)], "ended": [bool(e)]}
        if variance is not None:
            sample["ensemble_variance"] = [float(variance[i])]
        out.append(sample)
    if out and kl_list is not None:
        out[0]["kl_list"] = [float(k) for k in kl_list]
    return out


def write_eval_samples(
    run_dir: RunDir, step: int, evaluation: Evaluation, kl_list: list[float] | None = None
) -> Path:
    """RUN/eval/eval-{step}.json, atomically: a JSON list, one row per line (small, greppable).

    Why per step: the length analysis (report) compares the samples of the first and the last
    evaluation: reward within length bins, the "non-length reward gain".
    """
    import json

    rows = sample_rows(evaluation, kl_list)
    lines = [json.dumps(json_safe(r), allow_nan=False) for r in rows]
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    return atomic_write_text(run_dir.file(f"{EVAL_DIR}/eval-{int(step)}.json"), text)


def divergences(
    policy: Any, reference: Any, batch: SequenceBatch, temperature: float
) -> tuple[dict[str, float], list[float]]:
    """The batch's divergence metrics to the reference, and each answer's KL (k1 sum over its
    response tokens), both from one pass of each model under the sampling temperature."""
    logprobs = policy_pass(policy, batch, temperature).logprobs
    ref = policy_pass(reference, batch, temperature).logprobs
    per_answer = per_sequence_kl(logprobs, ref, batch.response_mask, "k1")
    return divergence_metrics(logprobs, ref, batch.response_mask), per_answer.tolist()


@torch.no_grad()
def evaluate_policy(
    policy: Any,
    reference: Any | None,
    tokenizer: Any,
    reward_cfg: Any,
    reward_models: Any,
    prompts: list[str],
    generation: GenerationConfig,
    seed: int,
    template: str | None = None,
    repetition_penalty: float = 1.0,
) -> Evaluation:
    """Sample one answer per prompt (seeded), score it, and measure divergences to `reference`."""

    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    texts, ids_rows, ended, lengths, divs, kls = [], [], [], [], [], []
    for start in range(0, len(prompts), generation.batch_size):
        chunk = prompts[start : start + generation.batch_size]
        ids, mask = encoded_batch(tokenizer, chunk, template, device)
        out = sample(
            policy, ids, mask, max_new_tokens=generation.max_new_tokens,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            temperature=generation.temperature, top_k=generation.top_k, top_p=generation.top_p,
            generator=generator, repetition_penalty=repetition_penalty,
        )  # fmt: skip
        texts += decode_responses(tokenizer, out.response_ids, out.response_mask)
        full = torch.cat([out.prompt_ids, out.response_ids], dim=1)
        ids_rows += [
            row[: mask.shape[1] + int(n)] for row, n in zip(full.tolist(), out.response_mask.sum(1))
        ]
        ended += out.ended.tolist()
        lengths += out.response_mask.sum(dim=1).tolist()
        if reference is not None:
            batch = SequenceBatch(ids, mask, out.response_ids, out.response_mask)
            chunk_metrics, chunk_kls = divergences(
                policy, reference, batch, generation.temperature or 1.0
            )
            divs.append((chunk_metrics, len(chunk)))
            kls += chunk_kls
    scores = score_responses(reward_cfg, reward_models, prompts, texts, ended)
    metrics = {
        **score_metrics(scores),
        "length/mean": float(np.mean(lengths)),
        "eos_rate": float(np.mean(ended)),
    }
    for key in divs[0][0] if divs else []:
        metrics[key] = sum(d[key] * n for d, n in divs) / len(prompts)
    proxy = scores.proxy if scores.proxy is not None else [None] * len(prompts)
    rows = [
        {"instruction": p, "answers": [t], "answers_ids": [i],
         "proxy_scores": [None if s is None else float(s)], "gold_scores": [float(g)]}
        for p, t, i, s, g in zip(prompts, texts, ids_rows, proxy, scores.gold)
    ]  # fmt: skip
    for row, kl in zip(rows, kls):  # empty without a reference
        row["kl"] = [float(kl)]
    return Evaluation(metrics, rows, [int(n) for n in lengths], [bool(e) for e in ended], scores)
