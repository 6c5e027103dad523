"""One ORPO iteration (step 5 of `recipes/orpo.py`; specs/orpo.md §1.1 steps 1-6).

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization.

  a. fresh rollouts of the current policy (and of every base policy, on their own env copies and
     random streams, so a coefficient of 0 leaves the current policy's run unchanged);
  b. train discriminator i on (current, base i) state(-action) samples; score the current batch;
     per-step distances delta_i; reward r' = r + clip(-sum_i c_i delta_i) (`core.occupancy`);
  c. GAE over each env's time axis on r' (truncations bootstrapped), advantages standardized
     over the whole batch as RLlib does;
  d. the shared `rl.ppo_update` on rows = env steps; the action-distribution regularizer
     (1/(1-gamma)) c_AD mean_s D(pi || pi_b) enters through `extra_loss_fn`.
"""

from __future__ import annotations

from typing import Any

import torch

from goodhartlab.core.action_divergence import action_divergence
from goodhartlab.core.masked import normalize
from goodhartlab.core.occupancy import om_distance, om_shaping_reward
from goodhartlab.envs import ENVS
from goodhartlab.models.discriminator import (
    Discriminator,
    clip_weights_,
    discriminator_scores,
    train_discriminator,
)
from goodhartlab.models.gym_policy import GymPolicy
from goodhartlab.rl.ppo_update import ForwardOut, PPOHyperparams, ppo_update
from goodhartlab.rollout.gym import GymRollout, collect, rollout_advantages


def _disc_batch(env: str, rollout: GymRollout) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's (state, action) samples: the env's state columns, all actions."""
    return ENVS[env].discriminator_state(rollout.flat("obs")), rollout.flat("actions")


def om_rewards(
    cfg, st, rollout: GymRollout, bases, discs, optimizer, base_vec, seeds: dict[str, int]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Step b: train each discriminator, return the OM reward term (E, T) and metrics."""

    kind, dc, metrics = cfg.om_divergence_type, cfg.discriminator, {}
    current = _disc_batch(cfg.env, rollout)
    base_gen = torch.Generator(device=st.device).manual_seed(seeds["base_sample"])
    disc_gen = torch.Generator().manual_seed(seeds["discriminator"])
    distances = []
    for i, (base, disc) in enumerate(zip(bases, discs)):
        base_rollout = collect(
            base_vec, cfg.env, base, cfg.rollout_steps, seeds["base_reset"] + i, base_gen
        )
        disc_metrics = train_discriminator(
            disc,
            optimizer,
            current,
            _disc_batch(cfg.env, base_rollout),
            kind,
            steps=dc.epochs,
            minibatch_size=dc.minibatch_size,
            generator=disc_gen,
            grad_clip=dc.grad_clip,
        )
        optimizer.zero_grad(set_to_none=True)
        distance = om_distance(discriminator_scores(disc, current), kind)
        distances.append(distance)
        if kind == "wasserstein":
            clip_weights_(disc, dc.wgan_weight_clip)
        metrics[f"om/{kind}/{i}"] = float(distance[torch.isfinite(distance)].mean())
        metrics[f"disc/accuracy/{i}"] = disc_metrics["accuracy"]
        if base_rollout.episode_true:
            metrics[f"base/reward/true/{i}"] = sum(base_rollout.episode_true) / len(
                base_rollout.episode_true
            )
    clip = ENVS[cfg.env].discriminator_reward_clip
    shaping = om_shaping_reward(torch.stack(distances), st.om_coefs, clip)
    metrics["reward/om_term"] = float(shaping.mean())
    return shaping.reshape(rollout.rewards.shape), metrics


def ppo_hyperparams(cfg):
    """The recipe's PPO settings as `rl.ppo_update.PPOHyperparams` (the shared API's names:
    `ppo.vf_clip` -> clip_eps_value, `ppo.entropy_coef` -> ent_coef; advantages are standardized
    over the whole batch before the update, so no per-minibatch whitening)."""

    p = cfg.ppo
    return PPOHyperparams(
        clip_eps=p.clip_eps,
        vf_coef=p.vf_coef,
        clip_eps_value=p.vf_clip,
        ent_coef=p.entropy_coef,
        epochs=p.epochs,
        minibatch_size=p.minibatch_size,
        max_grad_norm=p.max_grad_norm,
        whiten_advantages=False,
        target_kl=p.target_kl,
    )


def make_forward(policy: GymPolicy):
    """forward_fn for `ppo_update`: rows are env steps, so every output is (B, 1)."""

    def forward(minibatch: dict[str, torch.Tensor]) -> Any:
        dist_inputs = policy.dist_inputs(minibatch["obs"])
        logprobs, entropy = policy.log_prob_entropy(dist_inputs, minibatch["actions"])
        values = policy.values(minibatch["obs"])
        return ForwardOut(
            logprobs=logprobs[:, None], values=values[:, None], entropy=entropy[:, None]
        )

    return forward


def make_ad_loss(policy: GymPolicy, coef: float, gamma: float, divergence: str):
    """extra_loss_fn: (1/(1-gamma)) * coef * mean_s D(pi(.|s) || pi_b(.|s)) (§1.5)."""

    def extra(minibatch: dict[str, torch.Tensor], out: Any) -> tuple[torch.Tensor, dict]:
        div = action_divergence(
            policy.dist_inputs(minibatch["obs"]),
            minibatch["base_dist_inputs"],
            policy.spec.family,
            divergence,
        )
        mean_div = div.mean()
        return coef / (1.0 - gamma) * mean_div, {f"ad/{divergence}": float(mean_div.detach())}

    return extra


def orpo_step(
    cfg, st, policy: GymPolicy, bases, discs: list[Discriminator], optimizer, vec, base_vec, seeds
) -> dict[str, float]:
    """One iteration (a-d); returns the metrics to log."""

    sample_gen = torch.Generator(device=st.device).manual_seed(seeds["sample"])
    rollout = collect(
        vec, cfg.env, policy, cfg.rollout_steps, seeds["sample"] % (1 << 31), sample_gen
    )
    rewards, metrics = rollout.rewards, {}
    if bases:
        shaping, metrics = om_rewards(cfg, st, rollout, bases, discs, optimizer, base_vec, seeds)
        rewards = rewards + shaping
    advantages, returns = rollout_advantages(rollout, rewards, st.gamma, cfg.ppo.gae_lambda)
    every_step = torch.ones_like(advantages, dtype=torch.bool)
    advantages = normalize(advantages, every_step)  # over the whole batch, as RLlib does
    batch = {
        "obs": rollout.flat("obs"),
        "actions": rollout.flat("actions"),
        "old_logprobs": rollout.flat("logprobs")[:, None],
        "old_values": rollout.flat("values")[:, None],
        "advantages": advantages.reshape(-1, 1),
        "returns": returns.reshape(-1, 1),
        "mask": every_step.reshape(-1, 1),
    }
    extra = None
    if st.ad_coef != 0:
        with torch.no_grad():
            batch["base_dist_inputs"] = bases[0].dist_inputs(batch["obs"])
        extra = make_ad_loss(policy, st.ad_coef, st.gamma, cfg.action_dist_divergence_type)
    ppo_gen = torch.Generator().manual_seed(seeds["ppo"])
    ppo_metrics = ppo_update(
        batch, make_forward(policy), optimizer, ppo_hyperparams(cfg), ppo_gen, extra
    )
    optimizer.zero_grad(set_to_none=True)
    metrics.update({k: float(v) for k, v in ppo_metrics.items()})  # loss/*, ppo/*, ad/*
    if rollout.episode_true:
        metrics["reward/true"] = sum(rollout.episode_true) / len(rollout.episode_true)
        metrics["reward/proxy"] = sum(rollout.episode_proxy) / len(rollout.episode_proxy)
    metrics["reward/train_per_step"] = float(rollout.rewards.mean())
    return metrics
