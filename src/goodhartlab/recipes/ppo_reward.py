"""What the language-model PPO optimizes and what it is judged by: proxy, gold, length rewards.

Why a module of its own: training (`ppo_step`) and evaluation (`ppo_eval`, `goodhart evaluate`)
score responses the same way, and the length paper's interventions (len_only, len_penalty,
scale_reward, omit_long) act on exactly these scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goodhartlab.config.ppo_schema import PPORewardConfig
from goodhartlab.core.ensemble import aggregate, ensemble_std
from goodhartlab.core.length import apply_length_interventions
from goodhartlab.core.masked import normalize
from goodhartlab.errors import ConfigError, GoodhartError
from goodhartlab.models.loading import freeze
from goodhartlab.models.reward import (
    load_reward_model,
    score_members,
    score_texts,
)
from goodhartlab.recipes.rm_members import resolve_members
from goodhartlab.toyworld import gold_reward


@dataclass
class RewardModels:
    """Frozen proxy members (model, tokenizer) and the gold scorer ('toy' or a frozen RM)."""

    members: list[tuple[Any, Any]]
    member_paths: list[Path]
    gold: Any
    member_stats: list[tuple[float, float]] = field(default_factory=list)  # (mean, std) each


@dataclass(frozen=True)
class Scores:
    """Per response: the combined proxy, every member's score, their std, and gold.

    With no reward models (allowed for reward.kind gold / len_only) `proxy` is None and K = 0.

    Shape: proxy, member_std, gold (B,); members (K, B). float64 numpy.
    """

    proxy: np.ndarray | None
    members: np.ndarray
    member_std: np.ndarray
    gold: np.ndarray


def load_reward_models(cfg: PPORewardConfig, device: Any) -> RewardModels:
    """Load every proxy member ({seed} filled, ensembles expanded) and the gold RM, frozen."""

    paths = resolve_members(cfg.reward_models, cfg.seeds, "reward.reward_models")
    if not paths and cfg.kind == "proxy":
        raise ConfigError("reward.kind=proxy needs at least one entry in reward.reward_models")
    members, stats = [], []
    for path in paths:
        model, tok = load_reward_model(str(path), device=str(device))
        members.append((freeze(model), tok))
        stats.append(stored_score_stats(model, path) if cfg.normalize else (0.0, 1.0))
    gold: Any = cfg.gold
    if cfg.gold != "toy":
        model, tok = load_reward_model(cfg.gold, device=str(device))
        gold = (freeze(model), tok)
    return RewardModels(members, paths, gold, stats)


def stored_score_stats(model: Any, path: Path) -> tuple[float, float]:
    """The eval-set score mean/std that train-rm saved into the RM's config (or (0, 1))."""
    config = getattr(model, "inform_config", None) or model.config
    mean, std = getattr(config, "score_mean", None), getattr(config, "score_std", None)
    if mean is None or not std:
        print(f"ppo: {path} stores no score mean/std; its raw scores are used")
        return 0.0, 1.0
    return float(mean), float(std)


def score_responses(
    cfg: PPORewardConfig,
    models: RewardModels,
    prompts: Sequence[str],
    responses: Sequence[str],
    ended: Sequence[bool],
    batch_size: int = 512,
) -> Scores:
    """Score with every member, combine with the ensemble objective, and score gold."""

    n = len(responses)
    raw = score_members(  # answers tokenized once for every member that shares a tokenizer
        models.members, list(prompts), list(responses), batch_size=batch_size, template=cfg.template
    )
    for scores, path in zip(raw, models.member_paths):  # PPO and `goodhart evaluate` both stop
        check_finite(np.asarray(scores, dtype=np.float64), f"reward model {path}: its score")
    members = np.stack(
        [(r - mean) / std for r, (mean, std) in zip(raw, models.member_stats)] or [np.zeros(n)]
    )[: len(models.members)]
    proxy, spread = None, np.zeros(n)
    if len(members) > 1:
        proxy = aggregate(members, cfg.objective, uwo_coef=cfg.uwo_coef, ddof=cfg.ddof)
        spread = ensemble_std(members, ddof=0)
    elif len(members) == 1:
        proxy = members[0]
    if models.gold == "toy":
        gold = np.asarray(gold_reward(list(prompts), list(responses), list(ended)))
    else:
        model, tok = models.gold
        gold = score_texts(model, tok, prompts, responses, batch_size=batch_size)
        check_finite(np.asarray(gold, dtype=np.float64), f"gold reward model {cfg.gold}: its score")
    proxy = None if proxy is None else np.asarray(proxy, dtype=np.float64)
    return Scores(proxy, members, spread, gold)


def gather_scores(scores: Scores) -> Scores:
    """Every rank's scores of its shard, concatenated in rank order (`runs.distributed`)."""
    from goodhartlab.runs import distributed

    def cat(values: np.ndarray, axis: int = 0) -> np.ndarray:
        rows = torch.from_numpy(np.ascontiguousarray(np.moveaxis(values, axis, 0)))
        return np.moveaxis(distributed.gather(rows).numpy(), 0, axis)

    proxy = None if scores.proxy is None else cat(scores.proxy)
    return Scores(proxy, cat(scores.members, 1), cat(scores.member_std), cat(scores.gold))


def check_finite(values: np.ndarray, what: str) -> None:
    """A NaN or inf reward would silently poison every later update: stop with a clear line."""

    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise GoodhartError(f"{what} is not finite for response {int(bad[0])} ({values[bad[0]]})")


def omit_long_index(ended: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Row map that replaces each truncated (no eos) sample by a random finished one.

    Why: Singhal et al.'s `omit_long`: truncated samples then contribute no gradient of their
    own. Unlike the seed, the replacement keeps its own reward (the seed scored the truncated
    text). With no finished sample in the batch, nothing is replaced.

    Shape: ended (B,) bool -> (B,) long
    """
    rows = torch.arange(ended.shape[0], device=ended.device)
    finished = rows[ended]
    if finished.numel() == 0 or bool(ended.all()):
        return rows
    picks = torch.randint(
        finished.numel(), (ended.shape[0],), generator=generator, device=generator.device
    )
    return torch.where(ended, rows, finished[picks.to(ended.device)])


def training_scores(
    cfg: PPORewardConfig, scores: Scores, lengths: torch.Tensor, stats: Any
) -> tuple[torch.Tensor, Any]:
    """The scalar reward per response: kind, clip, length interventions, whitening.

    Shape: lengths (B,) -> rewards (B,) float32, new running stats
    """

    raw = scores.gold if cfg.kind == "gold" else scores.proxy
    if raw is None:  # len_only without RMs: the running stats then follow gold
        raw = scores.gold
    check_finite(raw, f"the {cfg.kind} reward")
    rewards = torch.as_tensor(raw, dtype=torch.float32, device=lengths.device)
    if cfg.clip is not None:
        rewards = rewards.clamp(-cfg.clip, cfg.clip)
    len_only = cfg.len_only if cfg.kind == "len_only" else None
    if cfg.kind == "len_only" and len_only is None:
        raise ConfigError("reward.kind=len_only needs reward.len_only=N (target length in tokens)")
    rewards, stats = apply_length_interventions(
        rewards,
        lengths,
        stats,
        len_only=len_only,
        len_penalty=cfg.len_penalty,
        scale=cfg.scale_reward,
    )
    if cfg.whiten:
        rewards = normalize(rewards, torch.ones_like(rewards, dtype=torch.bool))
    return rewards, stats


def score_metrics(scores: Scores) -> dict[str, float]:
    """Batch means: reward/gold, reward/proxy (when there are RMs), ensemble/std."""
    out = {
        "reward/gold": float(scores.gold.mean()),
        "ensemble/std": float(scores.member_std.mean()),
    }
    if scores.proxy is not None:
        out["reward/proxy"] = float(scores.proxy.mean())
    return out
