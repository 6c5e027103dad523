"""Evaluation of gym policies for `goodhart orpo`: true and proxy returns with 95% intervals.

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization. The headline metric (specs/orpo.md §1.6) is the episode sum
of the *true* reward of the current policy, sampled stochastically as in the seed's training
metrics; the proxy sum is reported beside it so hacking (proxy up, true down) is visible.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goodhartlab.analysis.plots import curves
from goodhartlab.envs import ENVS
from goodhartlab.models.gym_policy import GymPolicy
from goodhartlab.rollout.gym import collect

Z_95 = 1.959963984540054


def mean_ci(values: np.ndarray | list[float]) -> dict[str, float]:
    """Mean, normal-approximation 95% half-width (1.96 * sample std / sqrt(n)), and n.

    Shape: values (n,) -> {"mean", "ci95", "n"}
    """
    x = np.asarray(values, np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "n": 0}
    half = Z_95 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else float("nan")
    return {"mean": float(x.mean()), "ci95": float(half), "n": int(x.size)}


def evaluate_gym_policy(
    policy: GymPolicy,
    env_name: str,
    env_kwargs: dict[str, Any],
    episodes: int,
    horizon: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Run `episodes` fresh episodes (one per env copy, `horizon` steps) and summarize returns.

    Episodes that end early (termination) restart in the same copy; only the first episode of
    each copy is counted, so every copy contributes exactly one return.
    """
    vec = ENVS[env_name].make_vec(episodes, **env_kwargs)
    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rollout = collect(vec, env_name, policy, horizon, seed=seed, generator=generator)
    first_done = torch.cumsum(rollout.dones.long(), dim=1) - rollout.dones.long()
    in_first = first_done == 0
    true = (rollout.true_rewards * in_first).sum(dim=1).cpu().numpy()
    proxy = (rollout.proxy_rewards * in_first).sum(dim=1).cpu().numpy()
    return {"true": mean_ci(true), "proxy": mean_ci(proxy)}


def plot_returns(run_path: Path, rows: list[dict[str, Any]]) -> Path | None:
    """`returns.png`: true and proxy episode return of the current policy over iterations."""

    rows = [r for r in rows if "reward/true" in r and "reward/proxy" in r]
    if not rows:
        return None
    return curves(
        run_path / "returns.png",
        [r["step"] for r in rows],
        {"true": [r["reward/true"] for r in rows], "proxy": [r["reward/proxy"] for r in rows]},
        xlabel="iteration",
        ylabel="episode return",
        title="ORPO: true vs proxy return",
    )
