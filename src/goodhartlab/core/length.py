"""Length interventions on the PPO reward (Singhal et al., spec inform_length.md §B.4).

"A Long Way to Go" shows that much of RLHF's reward gain comes from longer answers. Its PPO script
offers three reward transforms, applied in this order: len_only (replace the reward by a function
of length alone), len_penalty (r + 2σ̄(1 − 0.01·L)), scale_reward (clip((r − μ̄)/σ̄, ±0.3)).
μ̄ and σ̄ are running statistics: the means of the last 10 per-batch reward means and standard
deviations, computed on the raw reward (before any transform) and including the current batch.
Lengths are in tokens (the response, including eos).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

SEED_WINDOW = 10
SEED_SCALE_CLIP = 0.3
SEED_PENALTY_SCALE = 2.0
SEED_PENALTY_PER_TOKEN = 0.01


@dataclass(frozen=True)
class RunningRewardStats:
    """Per-batch reward means and stds of the last `window` batches."""

    window: int = SEED_WINDOW
    means: tuple[float, ...] = ()
    stds: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        """μ̄: the mean of the stored batch means (0 before the first batch)."""
        return sum(self.means) / len(self.means) if self.means else 0.0

    @property
    def std(self) -> float:
        """σ̄: the mean of the stored batch standard deviations (1 before the first batch)."""
        return sum(self.stds) / len(self.stds) if self.stds else 1.0


def update_reward_stats(
    stats: RunningRewardStats, rewards: torch.Tensor, ddof: int = 1
) -> RunningRewardStats:
    """Append this batch's mean and std (with `ddof`) and keep the last `window` batches.

    Why: the seed normalises by a short moving window rather than all history, so the scale
    follows the policy as its rewards drift. The seed's ddof is not documented; 1 (torch's
    default) is used unless told otherwise, and a one-element batch has std 0.

    Shape: rewards (B,) -> new state
    """
    flat = rewards.detach().double().flatten()
    if flat.numel() == 0:
        raise ValueError("cannot update reward statistics with an empty batch")
    std = float(flat.std(correction=ddof)) if flat.numel() > ddof else 0.0
    means = (*stats.means, float(flat.mean()))[-stats.window :]
    stds = (*stats.stds, std)[-stats.window :]
    return replace(stats, means=means, stds=stds)


def scale_reward(
    rewards: torch.Tensor,
    mean: float,
    std: float,
    clip: float = SEED_SCALE_CLIP,
    eps: float = 1e-8,
) -> torch.Tensor:
    """clip((r − μ̄)/σ̄, −clip, +clip); σ̄ is floored at eps so a constant reward stays finite.

    Why: "reward scaling" from Secrets of RLHF/PPO. The tight ±0.3 clip caps how much any one
    answer (for instance a very long one) can gain over the running average.

    Shape: rewards (B,) -> (B,)
    """
    return torch.clamp((rewards - mean) / max(std, eps), -clip, clip)


def length_penalty(
    rewards: torch.Tensor,
    lengths: torch.Tensor,
    sigma: float,
    scale: float = SEED_PENALTY_SCALE,
    per_token: float = SEED_PENALTY_PER_TOKEN,
) -> torch.Tensor:
    """r + scale·σ̄·(1 − per_token·L) = r + 2σ̄(1 − 0.01·L) with the seed's constants.

    Why: a length term in units of the reward's spread: zero at L = 100 tokens, +2σ̄ at L = 0,
    −1σ̄ at 150 and −2σ̄ at 200, so longer answers must earn their extra tokens.

    Shape: rewards, lengths (B,) -> (B,)
    """
    return rewards + scale * sigma * (1.0 - per_token * lengths.to(rewards.dtype))


def len_only_reward(lengths: torch.Tensor, target: float) -> torch.Tensor:
    """1 − |L/N − 1|: peaks at 1 when the length L equals the target N (the seed's LPPO).

    Why: a reward that sees nothing but length, to measure how much of RLHF's "improvement"
    length alone reproduces.

    Shape: lengths (B,) -> (B,) float
    """
    if target <= 0:
        raise ValueError(f"len_only target length must be > 0, got {target}")
    return 1.0 - (lengths.to(torch.float32) / target - 1.0).abs()


def apply_length_interventions(
    rewards: torch.Tensor,
    lengths: torch.Tensor,
    stats: RunningRewardStats,
    len_only: float | None = None,
    len_penalty: bool = False,
    scale: bool = False,
    ddof: int = 1,
) -> tuple[torch.Tensor, RunningRewardStats]:
    """The seed's pipeline: update μ̄, σ̄ on the raw rewards, then len_only → len_penalty → scale.

    Shape: rewards, lengths (B,) -> (B,), new state
    """
    stats = update_reward_stats(stats, rewards, ddof)
    out = rewards
    if len_only is not None:
        out = len_only_reward(lengths, len_only).to(rewards.dtype)
    if len_penalty:
        out = length_penalty(out, lengths, stats.std)
    if scale:
        out = scale_reward(out, stats.mean, stats.std)
    return out, stats
