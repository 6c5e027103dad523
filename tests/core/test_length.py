"""Length interventions with the seed's constants (spec inform_length.md §B.4)."""

from __future__ import annotations

import math

import pytest
import torch

from goodhartlab.core.length import (
    RunningRewardStats,
    apply_length_interventions,
    len_only_reward,
    length_penalty,
    scale_reward,
    update_reward_stats,
)


def test_len_only_peaks_at_the_target() -> None:
    out = len_only_reward(torch.tensor([0, 78, 156, 180, 312]), 156)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.5, 1.0, 1 - 24 / 156, 0.0]))


def test_length_penalty_is_zero_at_100_tokens() -> None:
    out = length_penalty(torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0, 100, 150, 200]), 0.5)
    torch.testing.assert_close(out, torch.tensor([2.0, 1.0, 0.5, 0.0]))


def test_scale_reward_clips_at_0_3() -> None:
    out = scale_reward(torch.tensor([1.0, 1.1, 5.0, -3.0]), mean=1.0, std=2.0)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.05, 0.3, -0.3]))


def test_running_stats_keep_the_last_window() -> None:
    stats = RunningRewardStats(window=2)
    stats = update_reward_stats(stats, torch.tensor([0.0, 2.0]))  # mean 1, std √2
    stats = update_reward_stats(stats, torch.tensor([4.0, 4.0]))  # mean 4, std 0
    stats = update_reward_stats(stats, torch.tensor([1.0, 3.0, 5.0]))  # mean 3, std 2
    assert stats.means == (4.0, 3.0)
    assert stats.mean == 3.5 and stats.std == pytest.approx(1.0)


def test_pipeline_uses_raw_stats_then_penalty_then_scaling() -> None:
    rewards = torch.tensor([1.0, 3.0])
    lengths = torch.tensor([50, 150])
    out, stats = apply_length_interventions(
        rewards, lengths, RunningRewardStats(), len_penalty=True, scale=True
    )
    sigma = math.sqrt(2.0)
    assert stats.mean == 2.0 and stats.std == pytest.approx(sigma)
    penalised = torch.tensor([1.0 + 2 * sigma * 0.5, 3.0 - 2 * sigma * 0.5])
    torch.testing.assert_close(out, torch.clamp((penalised - 2.0) / sigma, -0.3, 0.3))
    out, _ = apply_length_interventions(rewards, lengths, RunningRewardStats(), len_only=100)
    torch.testing.assert_close(out, torch.tensor([0.5, 0.5]))
