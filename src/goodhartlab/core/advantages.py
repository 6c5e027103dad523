"""Generalized advantage estimation (GAE) for both language-model episodes and gym rollouts.

Why one function: the LLM PPO and the gym PPO must share their math (DESIGN.md §2). Both are
(B, T) tensors with time along dim 1; they differ only in how an episode ends:
- LLM: one episode per row, right-padded. `mask` marks the real response tokens; the value after
  the last real token is 0 (the episode is over), as in trlx.
- gym: each row is one environment's stream of T steps; `dones[b, t]` says the episode ended at
  step t (so nothing is carried across it), and `bootstrap[b]` is the value of the state after
  the last step, used when the stream was cut mid-episode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Advantages(NamedTuple):
    """GAE output; both (B, T), zero at padding."""

    advantages: torch.Tensor
    returns: torch.Tensor


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor | None = None,
    bootstrap: torch.Tensor | None = None,
    gamma: float = 1.0,
    gae_lambda: float = 0.95,
    mask: torch.Tensor | None = None,
) -> Advantages:
    """A_t = Σ_k (γλ)^k δ_{t+k}, δ_t = r_t + γ·alive_t·V_{t+1} − V_t; returns = A + V.

    Why: GAE trades bias (λ→0, one-step TD) against variance (λ→1, Monte Carlo). `alive_t` is 0
    where the episode ends at t: dones[t] is True, or t is the last valid token (mask), in which
    case both the next value and the carried advantage are cut. The next value after the last
    column is `bootstrap` (0 when None). `mask` must mark a valid prefix of each row (right
    padding); any invalid position ends the episode before it.

    Shape: rewards, values, dones, mask (B, T); bootstrap (B,) -> advantages (B, T), returns (B, T)
    """
    if rewards.shape != values.shape or rewards.ndim != 2:
        raise ValueError(f"rewards {tuple(rewards.shape)} and values must both be (B, T)")
    b, t_len = rewards.shape
    valid = torch.ones_like(rewards, dtype=torch.bool) if mask is None else mask.bool()
    ended = torch.zeros_like(valid) if dones is None else dones.bool()
    # the episode stops after t when it is done at t or when t+1 is padding
    next_valid = torch.cat([valid[:, 1:], torch.ones_like(valid[:, :1])], dim=1)
    alive = ~ended & next_valid
    last_value = torch.zeros(b, dtype=values.dtype, device=values.device)
    if bootstrap is not None:
        last_value = bootstrap.to(values.dtype).reshape(b)
    next_values = torch.cat([values[:, 1:], last_value[:, None]], dim=1)
    zero = torch.zeros_like(rewards)
    # torch.where, not multiplication by 0, so inf/NaN in padding cannot leak in
    deltas = rewards + gamma * torch.where(alive, next_values, zero) - values
    advantages = torch.zeros_like(rewards)
    running = zero[:, 0]
    for t in reversed(range(t_len)):
        carried = torch.where(alive[:, t], gamma * gae_lambda * running, zero[:, t])
        running = deltas[:, t] + carried
        advantages[:, t] = running
    advantages = torch.where(valid, advantages, zero)
    returns = torch.where(valid, advantages + values, zero)
    return Advantages(advantages, returns)
