"""Teacher-forced passes over (prompt + response) for PPO: per-token logprobs, entropy, values.

Why here: the language-model PPO needs the same quantities at rollout time (old, reference) and
inside every minibatch (with gradient); one function keeps the position ids, masks and the
one-token shift identical everywhere. The gym PPO has its own counterpart in `rollout.gym`.

Layout: prompts left-padded (P columns), responses right-padded (T columns); the logit that
predicts response token t sits at column P − 1 + t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from goodhartlab.core.ppo import entropy_from_logits


@dataclass(frozen=True)
class SequenceBatch:
    """Shape: prompt_ids/prompt_mask (B, P); response_ids/response_mask (B, T)."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor

    def inputs(self) -> dict[str, torch.Tensor]:
        ids = torch.cat([self.prompt_ids, self.response_ids], dim=1)
        attention = torch.cat([self.prompt_mask, self.response_mask], dim=1).long()
        positions = (attention.cumsum(dim=1) - 1).clamp_min(0)
        return {"input_ids": ids, "attention_mask": attention, "position_ids": positions}

    @property
    def prompt_width(self) -> int:
        return int(self.prompt_ids.shape[1])


@dataclass(frozen=True)
class PolicyPass:
    """Shape: logprobs, entropy (B, T); hidden (B, T, d) or None."""

    logprobs: torch.Tensor
    entropy: torch.Tensor
    hidden: torch.Tensor | None = None


def policy_pass(
    policy: Any, batch: SequenceBatch, temperature: float = 1.0, want_hidden: bool = False
) -> PolicyPass:
    """Logprobs of the response tokens under softmax(logits / temperature); grad as enabled.

    Positions after a response ends are computed but meaningless: callers mask them.
    """
    out = policy(**batch.inputs(), output_hidden_states=want_hidden)
    start = batch.prompt_width - 1
    logits = out.logits[:, start:-1].float()
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    logprobs = logits.log_softmax(dim=-1).gather(-1, batch.response_ids[..., None]).squeeze(-1)
    hidden = out.hidden_states[-1][:, start:-1] if want_hidden else None
    return PolicyPass(logprobs, entropy_from_logits(logits), hidden)


def value_pass(value_model: Any, batch: SequenceBatch) -> torch.Tensor:
    """V(state before response token t) from a token-level value network: (B, T)."""
    out = value_model(**batch.inputs())
    start = batch.prompt_width - 1
    return out.logits[:, start:-1, 0].float()
