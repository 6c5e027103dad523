"""The one PPO update, shared by the language-model PPO and the gym PPO (DESIGN.md §2).

Both callers hand over a batch of (B, T) tensors with a bool `mask` (True = counts): an LLM batch
has one response per row (T tokens, right padding); a gym batch has one environment step per row
(T = 1). Only `forward_fn` differs: it recomputes log-probs (and values, entropy) for a minibatch
with gradient. The losses are token-level masked means over the whole minibatch (the trlx
convention), so a row of T valid tokens weighs the same as T rows of one token: the LLM and gym
paths give identical losses on identical tensors.

Per minibatch: optionally whiten the advantages over its valid entries, split it into
`grad_accum_steps` micro-batches whose losses are normalised by the *minibatch's* valid count (so
the accumulated gradient equals the whole minibatch's gradient), clip the gradient norm, step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Required, TypedDict

import torch

from goodhartlab.core.masked import masked_sum, masked_var, normalize
from goodhartlab.core.ppo import approx_kl, clip_fraction, policy_loss, value_loss
from goodhartlab.core.regularize import (
    SEED_EXP_LIMIT,
    SEED_SQRT_CHI2_FLOOR,
    LossDivergence,
    loss_penalty,
    sequence_log_ratio,
)
from goodhartlab.runs import distributed


class PPOBatch(TypedDict, total=False):
    """The update's batch contract: (B, T) tensors, bool `mask` True where a token counts.

    Required: old_logprobs (rollout-time), advantages, mask. With a value function: old_values
    and returns. With an in-loss divergence (`divergence_loss_fn`): ref_logprobs. Callers add
    what their forward_fn / extra_loss_fn read (leading dim B): `SequencePPOBatch` for language
    models; the gym PPO adds obs/actions. `_check_batch` checks shapes at run time.
    """

    old_logprobs: Required[torch.Tensor]
    advantages: Required[torch.Tensor]
    mask: Required[torch.Tensor]
    old_values: torch.Tensor
    returns: torch.Tensor
    ref_logprobs: torch.Tensor


class SequencePPOBatch(PPOBatch):
    """The language-model PPO batch: prompts (B, P) left-padded, responses (B, T)."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor


REQUIRED_KEYS = ("old_logprobs", "advantages", "mask")  # PPOBatch's Required keys
VALUE_KEYS = ("old_values", "returns")


@dataclass(frozen=True)
class PPOHyperparams:
    """Settings of one PPO update. Defaults follow trlx as configured by Coste et al. (§5.1).

    clip_eps_value None turns the value clip off; max_grad_norm None turns gradient clipping
    off (the norm is still logged); whiten_advantages whitens per minibatch over valid entries.
    """

    epochs: int = 4
    minibatch_size: int = 32
    clip_eps: float = 0.2
    clip_eps_value: float | None = 0.2
    vf_coef: float = 1.0
    ent_coef: float = 0.0
    max_grad_norm: float | None = None
    whiten_advantages: bool = False
    grad_accum_steps: int = 1
    target_kl: float | None = None  # stop the epochs once an epoch's mean approx KL exceeds it

    def __post_init__(self) -> None:
        for name in ("epochs", "minibatch_size", "grad_accum_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOHyperparams.{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_eps <= 0:
            raise ValueError(f"PPOHyperparams.clip_eps must be > 0, got {self.clip_eps}")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError(f"PPOHyperparams.target_kl must be > 0 or None, got {self.target_kl}")


class ForwardOut(NamedTuple):
    """What `forward_fn` returns for a minibatch of b rows: (b, T) tensors with gradient."""

    logprobs: torch.Tensor
    values: torch.Tensor | None = None
    entropy: torch.Tensor | None = None


Batch = PPOBatch  # any PPOBatch (subclass); rows are taken with `_take`
ForwardFn = Callable[[Batch], ForwardOut]
ExtraLossFn = Callable[[Batch, ForwardOut], tuple[torch.Tensor, dict]]


def _check_batch(batch: Batch) -> int:
    missing = [k for k in REQUIRED_KEYS if k not in batch]
    if missing:
        raise ValueError(f"ppo_update batch is missing {missing}; it has {sorted(batch)}")
    shape = batch["mask"].shape
    if len(shape) != 2:
        raise ValueError(f"batch['mask'] must be (B, T), got {tuple(shape)}")
    for key in (*REQUIRED_KEYS, *VALUE_KEYS):
        if key in batch and batch[key].shape != shape:
            raise ValueError(
                f"batch[{key!r}] has shape {tuple(batch[key].shape)}, mask {tuple(shape)}"
            )
    for key, value in batch.items():
        if value.shape[0] != shape[0]:
            raise ValueError(f"batch[{key!r}] has {value.shape[0]} rows, mask has {shape[0]}")
    return int(shape[0])


def _take(batch: Batch, rows: torch.Tensor) -> Batch:
    return {key: value[rows] for key, value in batch.items()}  # type: ignore[return-value]


def ppo_loss(
    out: ForwardOut,
    minibatch: Batch,
    advantages: torch.Tensor,
    hp: PPOHyperparams,
    n_valid: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """policy + vf_coef·value − ent_coef·entropy, each Σ mask·term / n_valid.

    Why: dividing by the valid count of the enclosing minibatch (not of this micro-batch) makes
    the losses of micro-batches add up to the minibatch's masked mean.

    Shape: out and minibatch (b, T), advantages (b, T), n_valid () -> scalar loss, metrics
    """
    mask = minibatch["mask"].bool()
    old_logprobs = minibatch["old_logprobs"]

    def mean(x: torch.Tensor) -> torch.Tensor:
        return masked_sum(x, mask) / n_valid

    pg = mean(policy_loss(out.logprobs, old_logprobs, advantages, hp.clip_eps))
    total = pg
    metrics = {
        "loss/policy": pg.detach(),
        "ppo/clip_frac": mean(clip_fraction(out.logprobs, old_logprobs, hp.clip_eps)),
        "ppo/approx_kl": mean(approx_kl(out.logprobs, old_logprobs)),
    }
    if out.values is not None:
        missing = [k for k in VALUE_KEYS if k not in minibatch]
        if missing:
            raise ValueError(f"forward_fn returned values but the batch has no {missing}")
        old_values, returns = minibatch["old_values"], minibatch["returns"]
        vf = mean(value_loss(out.values, old_values, returns, hp.clip_eps_value))
        total = total + hp.vf_coef * vf
        metrics["loss/value"] = vf.detach()
        if hp.clip_eps_value is not None:
            outside = (out.values.detach() - old_values).abs() > hp.clip_eps_value
            metrics["ppo/value_clip_frac"] = mean(outside.to(pg.dtype))
    if out.entropy is not None:
        entropy = mean(out.entropy)
        if hp.ent_coef != 0:  # total - 0·H == total: skip the term, and its backward pass
            total = total - hp.ent_coef * entropy
        metrics["ppo/entropy"] = entropy.detach()
    elif hp.ent_coef != 0:
        raise ValueError("ent_coef != 0 needs forward_fn to return entropy")
    return total, metrics


def _minibatch_step(
    minibatch: Batch,
    forward_fn: ForwardFn,
    optimizer: torch.optim.Optimizer,
    hp: PPOHyperparams,
    extra_loss_fn: ExtraLossFn | None,
) -> dict[str, torch.Tensor | float]:
    mask = minibatch["mask"].bool()
    n_rows = mask.shape[0]
    advantages = minibatch["advantages"]
    if hp.whiten_advantages:
        advantages = normalize(advantages, mask)
    n_valid = mask.sum().clamp_min(1).to(advantages.dtype)
    optimizer.zero_grad(set_to_none=True)
    stats: dict[str, torch.Tensor | float] = {}
    # several processes: each rank takes its contiguous slice of the minibatch, a micro-batch
    # whose loss is normalised by the whole minibatch's count like the others; the gradients
    # and metrics are then summed over ranks (one process: the whole minibatch, no-ops)
    mine = torch.tensor(distributed.shard(range(n_rows)), dtype=torch.long, device=mask.device)
    for rows in mine.chunk(hp.grad_accum_steps):
        micro = _take(minibatch, rows)
        out = forward_fn(micro)
        loss, metrics = ppo_loss(out, micro, advantages[rows], hp, n_valid)
        if extra_loss_fn is not None:
            # row-weighted, so row-mean extra losses also add up to the minibatch's value
            weight = rows.numel() / n_rows
            extra, extra_metrics = extra_loss_fn(micro, out)
            loss = loss + weight * extra
            metrics["loss/extra"] = extra.detach() * weight
            for key, value in extra_metrics.items():
                metrics[key] = (value.detach() if torch.is_tensor(value) else value) * weight
        loss.backward()
        metrics["loss/total"] = loss.detach()
        for key, value in metrics.items():
            stats[key] = stats.get(key, 0.0) + value
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    distributed.sum_gradients(params)
    stats = distributed.sum_across(stats)
    max_norm = hp.max_grad_norm if hp.max_grad_norm is not None else float("inf")
    stats["ppo/grad_norm"] = torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return stats


def ppo_update(
    batch: Batch,
    forward_fn: ForwardFn,
    optimizer: torch.optim.Optimizer,
    hp: PPOHyperparams,
    generator: torch.Generator | None = None,
    extra_loss_fn: ExtraLossFn | None = None,
) -> dict[str, float]:
    """hp.epochs passes over shuffled minibatches of hp.minibatch_size rows; one step each.

    `batch` holds old_logprobs, advantages, mask (B, T), plus old_values and returns (B, T) when
    forward_fn returns values, plus whatever forward_fn and extra_loss_fn read (leading dim B).
    `extra_loss_fn(minibatch, out) -> (loss_term, metrics)` adds a regulariser (e.g.
    `divergence_loss_fn`). Returns metrics averaged over all optimizer steps: loss/policy,
    loss/value, loss/total, loss/extra, ppo/clip_frac, ppo/approx_kl, ppo/entropy,
    ppo/value_clip_frac, ppo/grad_norm, and the extra metrics; ppo/epochs (how many ran: fewer
    than hp.epochs when `hp.target_kl` stopped them, as in CleanRL) and, with values,
    ppo/explained_variance of the rollout's values. The last step's gradients are left in .grad.
    """
    n_rows = _check_batch(batch)
    device = batch["mask"].device
    sums: dict[str, torch.Tensor | float] = {}
    n_steps = epochs = 0
    for _ in range(hp.epochs):
        gen_device = generator.device if generator is not None else None
        order = torch.randperm(n_rows, generator=generator, device=gen_device).to(device)
        epoch_kl, epoch_steps = 0.0, 0
        for start in range(0, n_rows, hp.minibatch_size):
            rows = order[start : start + hp.minibatch_size]
            step = _minibatch_step(_take(batch, rows), forward_fn, optimizer, hp, extra_loss_fn)
            for key, value in step.items():
                sums[key] = sums.get(key, 0.0) + value
            if hp.target_kl is not None:  # a host sync per step, so only when asked
                epoch_kl, epoch_steps = epoch_kl + float(step["ppo/approx_kl"]), epoch_steps + 1
            n_steps += 1
        epochs += 1
        if hp.target_kl is not None and epoch_kl / epoch_steps > hp.target_kl:
            break
    out = {key: float(value) / n_steps for key, value in sums.items()}
    out["ppo/epochs"] = float(epochs)
    if "old_values" in batch and "returns" in batch:
        out["ppo/explained_variance"] = explained_variance(
            batch["old_values"], batch["returns"], batch["mask"].bool()
        )
    return out


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over valid entries (CleanRL's diagnostic).

    Why: 1 means the value function predicts the returns, 0 that it does no better than their
    mean, below 0 that it is worse; a value model that never learns makes GAE's advantages noise.
    nan when the returns have no variance.

    Shape: values, returns, mask (B, T) -> float
    """
    var_returns = float(masked_var(returns, mask, unbiased=False))
    if var_returns == 0.0:
        return float("nan")
    return 1.0 - float(masked_var(returns - values, mask, unbiased=False)) / var_returns


def divergence_loss_fn(
    divergence: LossDivergence,
    coef: float,
    limit: float | None = SEED_EXP_LIMIT,
    floor: float = SEED_SQRT_CHI2_FLOOR,
) -> ExtraLossFn:
    """extra_loss_fn for the fork's in-loss regularisers on the sequence log ratio (§6).

    Reads `ref_logprobs` (B, T) and `mask` from the minibatch and the current logprobs from
    forward_fn. "kl" and "chi2" are row means and add up exactly under gradient accumulation;
    "sqrt_chi2" takes the root after the mean, so it depends on the micro-batch size (as in the
    seed, where it depends on the minibatch size). Logs regularizer/{kl, chi2,
    ratio_clipfrac, inv_ratio_clipfrac}.
    """

    def extra(minibatch: Batch, out: ForwardOut) -> tuple[torch.Tensor, dict]:
        if "ref_logprobs" not in minibatch:
            raise ValueError("an in-loss divergence needs batch['ref_logprobs'] (B, T)")
        seq = sequence_log_ratio(out.logprobs, minibatch["ref_logprobs"], minibatch["mask"])
        penalty = loss_penalty(seq, divergence, coef, limit, floor)
        return penalty.loss, {
            "regularizer/kl": penalty.kl,
            "regularizer/chi2": penalty.chi2,
            "regularizer/ratio_clipfrac": penalty.ratio_clipfrac,
            "regularizer/inv_ratio_clipfrac": penalty.inv_ratio_clipfrac,
        }

    return extra
