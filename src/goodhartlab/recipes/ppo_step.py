"""One iteration of language-model PPO: rollout, scoring, rewards, advantages, the shared update.

Steps: 1 draw prompts and sample responses (our KV-cache sampler, or a vLLM engine with
`generation.backend=vllm`), 2 optionally replace truncated samples (omit_long), 3 old/reference
logprobs and values without grad, 4 score (proxy, gold) and shape the reward, 5 per-token rewards
(KL in the reward, or the score alone at eos), 6 GAE, 7 `rl.ppo_update` with an in-loss
divergence when asked, then the new weights into the vLLM engine, 8 measure every divergence to
the SFT policy whatever is optimized, 9 adapt the KL coefficient.

Several processes (torchrun, `runs.distributed`): the iteration's global batch is
`prompts_per_iteration` x processes prompts, drawn identically on every rank; each rank samples,
scores and runs the rollout-time passes on its contiguous shard, then the shards are gathered, so
every rank holds the global batch and computes the same rewards, whitening, running length
statistics, GAE, divergences and KL-coefficient update as one process would. The update splits
each global minibatch over the ranks and sums their gradients (`rl.ppo_update`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from goodhartlab.config.ppo_schema import PPOConfig
from goodhartlab.core.advantages import gae
from goodhartlab.core.divergences import chi2
from goodhartlab.core.length import RunningRewardStats
from goodhartlab.core.regularize import (
    KLController,
    per_sequence_kl,
    place_terminal,
    sequence_log_ratio,
    token_rewards,
    update_kl_coef,
)
from goodhartlab.data.encoding import decode_responses, encode_prompts
from goodhartlab.recipes.ppo_reward import (
    Scores,
    gather_scores,
    omit_long_index,
    score_metrics,
    score_responses,
    training_scores,
)
from goodhartlab.rl.ppo_update import (
    ForwardOut,
    PPOHyperparams,
    SequencePPOBatch,
    divergence_loss_fn,
    ppo_update,
)
from goodhartlab.rollout.generate import sample
from goodhartlab.rollout.llm import SequenceBatch, policy_pass, value_pass
from goodhartlab.rollout.vllm_policy import push_weights, sample_responses
from goodhartlab.runs import distributed
from goodhartlab.runs.seeding import derive_seed
from goodhartlab.toyworld.teacher import sample_prompts


@dataclass
class PPOState:
    """Everything an iteration reads and changes. value_model or value_head is set, not both;
    `engine` is the vLLM rollout engine (generation.backend=vllm), kept equal to `policy`."""

    policy: Any
    reference: Any
    tokenizer: Any
    optimizer: Any
    value_model: Any = None
    value_head: Any = None
    controller: KLController = field(default_factory=lambda: KLController(0.0))
    reward_stats: RunningRewardStats = field(default_factory=RunningRewardStats)
    engine: Any = None

    @property
    def device(self) -> torch.device:
        return next(self.policy.parameters()).device


def iteration_generator(seed: int, iteration: int, device: torch.device) -> torch.Generator:
    """A generator per (seed, iteration): resumed runs draw exactly what the first run drew."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, "ppo/iteration", iteration))


def rollout_generator(cfg: PPOConfig, iteration: int, generator: torch.Generator):
    """The sampler's generator: the iteration's own with one process (as always); with several,
    one per (iteration, rank), so the ranks draw independent samples while the iteration's
    generator, which shuffles the minibatches, stays the same on every rank."""
    if distributed.size() == 1:
        return generator
    seed = derive_seed(cfg.seed, "ppo/rollout_rank", iteration, distributed.rank())
    return torch.Generator(device=generator.device).manual_seed(seed)


def draw_prompts(cfg: PPOConfig, iteration: int, pool: list[str] | None) -> list[str]:
    """Toy prompts from a (seed, iteration) stream, or a seeded draw from the prompt file: the
    global batch, `prompts_per_iteration` per process (every rank draws all, keeps its shard)."""

    rng = np.random.default_rng([cfg.seed, iteration, 7])
    n = cfg.ppo.prompts_per_iteration * distributed.size()
    if pool is None:
        return [p.text for p in sample_prompts(n, rng)]
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=len(pool) < n)]


def policy_and_values(state: PPOState, batch: SequenceBatch, temperature: float):
    """One policy pass and the values: from the policy's hidden states (head) or the value net.

    Shape: -> (PolicyPass with (B, T) tensors, values (B, T)); grad as the caller enables it.
    """

    head = state.value_head
    out = policy_pass(state.policy, batch, temperature, want_hidden=head is not None)
    if head is not None:
        return out, head(out.hidden.float())
    return out, value_pass(state.value_model, batch)


def forward_fn(state: PPOState, temperature: float):
    """`rl.ppo_update`'s forward: logprobs, values and entropy of a minibatch (with grad)."""

    def forward(minibatch: dict[str, torch.Tensor]) -> ForwardOut:
        batch = SequenceBatch(
            minibatch["prompt_ids"],
            minibatch["prompt_mask"],
            minibatch["response_ids"],
            minibatch["mask"],
        )
        out, values = policy_and_values(state, batch, temperature)
        return ForwardOut(out.logprobs, values, out.entropy)

    return forward


@torch.no_grad()
def _old_and_ref(
    state: PPOState, batch: SequenceBatch, temperature: float, sampled: torch.Tensor | None
):
    """Rollout-time logprobs, reference logprobs and values.

    `sampled` (the sampler's own logprobs) replaces a policy pass when it is the policy's exact
    distribution (temperature 1, no top-k/top-p) and no value head needs the hidden states; the
    KV-cache and full-pass logprobs agree to ~1e-6 (tests/rollout/test_generate.py).
    """

    ref = policy_pass(state.reference, batch, temperature).logprobs
    if sampled is not None and state.value_head is None:
        return sampled, ref, value_pass(state.value_model, batch)
    out, values = policy_and_values(state, batch, temperature)
    return out.logprobs, ref, values


def divergence_metrics(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """Per-sequence KL (k1, k2, k3 sums), sequence-level χ² and √χ², √KL: batch means."""

    kls = {
        k: float(per_sequence_kl(logprobs, ref_logprobs, mask, k).mean())
        for k in ("k1", "k2", "k3")
    }
    seq_chi2 = float(chi2(sequence_log_ratio(logprobs, ref_logprobs, mask)).mean())
    return {
        **{f"kl/{k}": v for k, v in kls.items()},
        "kl/sqrt": max(kls["k3"], 0.0) ** 0.5,
        "divergence/chi2": seq_chi2,
        "divergence/sqrt_chi2": max(seq_chi2, 0.0) ** 0.5,
    }


def _token_rewards(cfg: PPOConfig, state: PPOState, scores, old, ref, mask) -> torch.Tensor:

    reg = cfg.regularizer
    kl_in_reward = reg.kind == "kl" and reg.placement == "reward"
    if reg.kind != "none" and reg.placement == "loss" and reg.keep_kl_in_reward:
        kl_in_reward = True  # the seed fork's double counting, for faithful comparisons
    if kl_in_reward:
        return token_rewards(scores, old, ref, mask, state.controller.coef, reg.estimator)
    return place_terminal(scores, mask)


@dataclass(frozen=True)
class Rollout:
    """Steps 1-3 of an iteration: B prompts, their responses, rollout-time quantities (B, T)."""

    prompts: list[str]
    batch: SequenceBatch
    ended: torch.Tensor
    old_logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    old_values: torch.Tensor


def sample_rollout(cfg: PPOConfig, state: PPOState, ids, mask, iteration: int, generator):
    """Step 1's sampling: (response_ids, response_mask, ended, sampled logprobs or None).

    The sampler's logprobs are kept only where they are the policy's exact distribution (our
    sampler at temperature 1, no top-k/top-p); vLLM's never are (other kernels' numerics).
    """
    gen, tok = cfg.generation, state.tokenizer
    if state.engine is not None:
        seeds = [derive_seed(cfg.seed, "ppo/vllm_rollout", iteration, i) for i in range(len(ids))]
        out = sample_responses(state.engine, ids, mask, gen, seeds, tok)
        return out.response_ids, out.response_mask, out.ended, None
    out = sample(
        state.policy, ids, mask, max_new_tokens=gen.max_new_tokens,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        temperature=gen.temperature, top_k=gen.top_k, top_p=gen.top_p, generator=generator,
    )  # fmt: skip
    exact = gen.temperature == 1.0 and gen.top_k == 0 and gen.top_p == 1.0
    return out.response_ids, out.response_mask, out.ended, out.logprobs if exact else None


def collect_rollout(
    cfg: PPOConfig, state: PPOState, iteration: int, pool: list[str] | None, generator
) -> Rollout:
    """Step 1 draw prompts and sample, step 2 omit truncated samples if asked, step 3 the
    rollout-time logprobs (the sampler's own where exact), reference logprobs and values.
    Several processes: this rank's shard of the prompts (omit_long replaces a truncated sample
    by a finished one of the same shard)."""

    prompts = draw_prompts(cfg, iteration, pool)
    prompts = [prompts[i] for i in distributed.shard(range(len(prompts)))]
    ids, mask = encode_prompts(state.tokenizer, prompts, cfg.template, state.device)
    response_ids, response_mask, ended, logprobs = sample_rollout(
        cfg, state, ids, mask, iteration, generator
    )
    rows = torch.arange(len(prompts), device=state.device)
    if cfg.reward.omit_long:
        rows = omit_long_index(ended, generator)
    batch = SequenceBatch(ids[rows], mask[rows], response_ids[rows], response_mask[rows])
    sampled = None if logprobs is None else logprobs[rows]
    old, ref, values = _old_and_ref(state, batch, cfg.generation.temperature or 1.0, sampled)
    kept = [prompts[i] for i in rows.tolist()]
    return Rollout(kept, batch, ended[rows], old, ref, values)


def gather_rollout(ro: Rollout, scores: Scores, pad_id: int) -> tuple[Rollout, Scores]:
    """Every rank's shard in rank order, padded as one process pads its batch (prompts on the
    left, responses on the right): the global batch, the same on every rank. One process:
    unchanged."""
    if distributed.size() == 1:
        return ro, scores
    left = partial(distributed.gather_padded, left=True)
    b, right = ro.batch, distributed.gather_padded
    batch = SequenceBatch(left(b.prompt_ids, pad_id), left(b.prompt_mask, 0),
                          right(b.response_ids, pad_id), right(b.response_mask, 0))  # fmt: skip
    rollout = Rollout(
        distributed.gather_objects(ro.prompts), batch, distributed.gather(ro.ended),
        right(ro.old_logprobs, 0.0), right(ro.ref_logprobs, 0.0), right(ro.old_values, 0.0),
    )  # fmt: skip
    return rollout, gather_scores(scores)


def _hyperparams(cfg: PPOConfig):
    """The update's settings; the minibatch is global, `minibatch_size` per process."""

    ppo_cfg = cfg.ppo
    minibatch = ppo_cfg.minibatch_size * distributed.size()
    return PPOHyperparams(
        epochs=ppo_cfg.epochs, minibatch_size=minibatch, clip_eps=ppo_cfg.clip_eps,
        clip_eps_value=ppo_cfg.clip_eps_value, vf_coef=ppo_cfg.vf_coef, ent_coef=ppo_cfg.ent_coef,
        max_grad_norm=ppo_cfg.max_grad_norm, whiten_advantages=ppo_cfg.whiten_advantages,
        target_kl=ppo_cfg.target_kl,
    )  # fmt: skip


def update_policy(cfg: PPOConfig, state: PPOState, ro: Rollout, adv, generator) -> dict:
    """Step 7: `rl.ppo_update` on the typed batch, with the in-loss divergence when asked."""

    reg = cfg.regularizer
    extra = None
    if reg.kind != "none" and reg.placement == "loss":
        extra = divergence_loss_fn(reg.kind, state.controller.coef)
    batch = SequencePPOBatch(
        old_logprobs=ro.old_logprobs, ref_logprobs=ro.ref_logprobs, advantages=adv.advantages,
        mask=ro.batch.response_mask, old_values=ro.old_values, returns=adv.returns,
        prompt_ids=ro.batch.prompt_ids, prompt_mask=ro.batch.prompt_mask,
        response_ids=ro.batch.response_ids,
    )  # fmt: skip
    forward = forward_fn(state, cfg.generation.temperature or 1.0)
    return ppo_update(batch, forward, state.optimizer, _hyperparams(cfg), generator, extra)


def ppo_iteration(
    cfg: PPOConfig, state: PPOState, reward_models: Any, iteration: int, pool: list[str] | None
) -> dict[str, float]:
    """Run one iteration in place on `state`; returns its metrics."""

    generator = iteration_generator(cfg.seed, iteration, state.device)
    sampler = rollout_generator(cfg, iteration, generator)
    ro = collect_rollout(cfg, state, iteration, pool, sampler)  # steps 1-3
    # step 4: score (proxy, gold) and shape the reward
    mask = ro.batch.response_mask
    texts = decode_responses(state.tokenizer, ro.batch.response_ids, mask)
    scores = score_responses(cfg.reward, reward_models, ro.prompts, texts, ro.ended.tolist())
    ro, scores = gather_rollout(ro, scores, state.tokenizer.pad_token_id)  # 1 process: as is
    mask = ro.batch.response_mask
    lengths = mask.sum(dim=1)
    shaped, state.reward_stats = training_scores(cfg.reward, scores, lengths, state.reward_stats)
    # step 5: per-token rewards; step 6: GAE
    rewards = _token_rewards(cfg, state, shaped, ro.old_logprobs, ro.ref_logprobs, mask)
    ppo_cfg = cfg.ppo
    adv = gae(rewards, ro.old_values, gamma=ppo_cfg.gamma, gae_lambda=ppo_cfg.gae_lambda, mask=mask)
    metrics = update_policy(cfg, state, ro, adv, generator)  # step 7
    if state.engine is not None:  # the next rollout samples from the updated policy
        push_weights(state.engine, state.policy)
    divergences = divergence_metrics(ro.old_logprobs, ro.ref_logprobs, mask)  # step 8
    n = len(ro.prompts)
    state.controller = update_kl_coef(state.controller, divergences["kl/k3"], n)  # step 9
    return {
        **score_metrics(scores),
        "reward/train": float(shaped.mean()),
        "length/mean": float(lengths.float().mean()),
        "eos_rate": float(ro.ended.float().mean()),
        "regularizer/coef": state.controller.coef,
        **divergences,
        **metrics,
    }
