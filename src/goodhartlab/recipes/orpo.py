"""`goodhart orpo`: occupancy-measure regularized PPO on the gym environments (specs/orpo.md §1).

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al., "Correlated
Proxies"), NOT TRL's odds-ratio preference optimization.

Reads top to bottom: 1 setup (env, sizes, scaled coefficients), 2 base policies (load, or build the
env's default: tomato = a short PPO on the true reward with random actions, glucose = BC of a
PID), 3 models (current policy, one discriminator per base policy, one Adam over all), 4 resume,
5 train: each iteration collects fresh rollouts of the current policy and of every base policy,
trains the discriminators, adds the clipped OM penalty to the rewards, runs GAE and the shared
`rl.ppo_update` (with the action-distribution term as `extra_loss_fn`), logs, checkpoints;
6 evaluate (true/proxy returns with 95% intervals), save the policy, plot.
`algo=bc` instead clones the env's scripted controller and saves that policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from goodhartlab.config.orpo_schema import OrpoConfig
from goodhartlab.core.occupancy import coef_reward_scale
from goodhartlab.envs import ENVS, EnvInfo
from goodhartlab.models.discriminator import (
    Discriminator,
    load_discriminators,
    save_discriminators,
)
from goodhartlab.models.gym_policy import GymPolicy, PolicySpec, load_gym_policy, save_gym_policy
from goodhartlab.recipes.base_policies import behaviour_clone, collect_controller_data
from goodhartlab.recipes.orpo_eval import evaluate_gym_policy, plot_returns
from goodhartlab.recipes.orpo_step import orpo_step
from goodhartlab.runs import RunDir
from goodhartlab.runs.checkpoint import load_checkpoint_state, save_checkpoint
from goodhartlab.runs.progress import progress_bar
from goodhartlab.runs.seeding import ORPO_ITERATION_STREAMS, derive_seed

DISC_FILE = "discriminators.safetensors"


@dataclass
class Setup:
    env_kwargs: dict[str, Any]
    horizon: int
    gamma: float
    spec: PolicySpec
    om_coefs: list[float]  # already multiplied by the env's reward scale
    ad_coef: float
    device: torch.device


def coef_scale(info: EnvInfo, divergence: str, scale_coeffs: bool) -> float:
    """What a scale-free coefficient is multiplied by (§4.3), or 1 with `scale_coeffs` off."""
    if not scale_coeffs:
        return 1.0
    return coef_reward_scale(divergence, info.reward_std, info.kl_reward_scale)


def setup(cfg: OrpoConfig) -> Setup:
    """Step 1: env settings, policy spec, device, coefficients times the env's reward scale."""
    info = ENVS[cfg.env]
    horizon = cfg.env_horizon or info.horizon
    env_kwargs: dict[str, Any] = {"reward_fun": cfg.reward_fun, "horizon": horizon}
    spec = PolicySpec(
        info.obs_dim,
        info.action_dim,
        info.action_family,
        list(cfg.hidden),
        info.action_low,
        info.action_high,
    )
    om_scale = coef_scale(info, cfg.om_divergence_type, cfg.scale_coeffs)
    ad_scale = coef_scale(info, cfg.action_dist_divergence_type, cfg.scale_coeffs)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    return Setup(
        env_kwargs,
        horizon,
        cfg.ppo.gamma if cfg.ppo.gamma is not None else info.gamma,
        spec,
        [c * om_scale for c in cfg.om_divergence_coeffs],
        cfg.action_dist_divergence_coeff * ad_scale,
        torch.device(auto if cfg.device == "auto" else cfg.device),
    )


def clone_controller(cfg: OrpoConfig, st: Setup, out: Path) -> dict[str, Any]:
    """algo=bc (and a BC 'auto' base): controller rollouts -> BC -> policy dir `out`."""
    n, info = cfg.bc.episodes, ENVS[cfg.env]
    vec = info.make_vec(n, **st.env_kwargs)
    controller = info.make_controller(n, cfg.seed, cfg.bc.controller_eps, cfg.bc.schedules)
    obs, actions, returns = collect_controller_data(vec, cfg.env, controller, st.horizon, cfg.seed)
    torch.manual_seed(cfg.seed)
    policy = GymPolicy(st.spec).to(st.device)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "orpo/bc_order"))
    bc = cfg.bc
    mask = info.bc_mask(obs.numpy())  # traffic: only the slots that hold a bus
    mask_t = None if mask is None else torch.as_tensor(mask)
    losses = behaviour_clone(
        policy, obs, actions, bc.epochs, bc.minibatch_size, bc.lr, bc.entropy_coef, gen, mask_t
    )
    save_gym_policy(policy, out)
    return {"bc_loss": losses, "controller_true_return": float(returns.mean()), "samples": len(obs)}


def base_policies(cfg: OrpoConfig, st: Setup, run: RunDir) -> list[GymPolicy]:
    """Step 2: load each base policy; 'auto' builds (or reuses) RUN/base_policy."""
    out = []
    for name in cfg.base_policies if cfg.algo == "orpo" else []:
        path = run.file("base_policy") if name == "auto" else Path(name)
        if name == "auto" and not (path / "policy.json").exists():
            build_default_base(cfg, path)
        policy = load_gym_policy(path, st.device)
        policy.requires_grad_(False)
        out.append(policy)
    return out


def build_default_base(cfg: OrpoConfig, path: Path) -> None:
    """The env's default base policy (§4.2, `EnvInfo.default_base`): "ppo" (tomato) = PPO on the
    true reward for `base_iterations` iterations with `base_randomness_eps` random actions; "bc"
    (glucose) = BC of the env's scripted controller (the PID)."""
    base_cfg = dataclasses.replace(
        cfg,
        reward_fun="true",
        iterations=cfg.base_iterations,
        base_policies=[],
        om_divergence_coeffs=[],
        action_dist_divergence_coeff=0.0,
        init_policy=None,
    )
    st = setup(base_cfg)
    if ENVS[cfg.env].default_base == "bc":
        clone_controller(base_cfg, st, path)
        return
    st.env_kwargs["randomness_eps"] = cfg.base_randomness_eps
    torch.manual_seed(derive_seed(cfg.seed, "orpo/base_init"))
    policy = GymPolicy(st.spec).to(st.device)
    train(base_cfg, st, policy, [], [], None, resume=False)
    save_gym_policy(policy, path)


def make_models(cfg: OrpoConfig, st: Setup, bases: list[GymPolicy]):
    """Step 3: the current policy, one discriminator per base policy, one Adam with groups.

    `init_policy`: null = random init (the seed's tomato runs), "base" = a copy of base policy 0
    (the seed's glucose runs start from the BC policy), or a policy directory."""
    torch.manual_seed(derive_seed(cfg.seed, "orpo/init"))
    policy = GymPolicy(st.spec).to(st.device)
    if cfg.init_policy == "base":
        policy.load_state_dict(bases[0].state_dict())
    elif cfg.init_policy:
        policy.load_state_dict(load_gym_policy(cfg.init_policy).state_dict())
    state_dim = ENVS[cfg.env].discriminator_state_dim
    dc = cfg.discriminator
    discs = [
        Discriminator(
            state_dim,
            st.spec.action_dim,
            discrete_actions=st.spec.family == "categorical",
            use_action_for_disc=cfg.use_action_for_disc,
            width=dc.width,
            depth=dc.depth,
        ).to(st.device)
        for _ in bases
    ]
    groups = [{"params": list(policy.parameters()), "lr": cfg.ppo.lr}]
    groups += [{"params": list(d.parameters()), "lr": dc.lr or cfg.ppo.lr} for d in discs]
    return policy, discs, torch.optim.Adam(groups)


def write_models(policy: GymPolicy, discs: list[Discriminator], directory: Path) -> None:
    """What an ORPO checkpoint holds besides the optimizer: the policy and the discriminators."""
    save_gym_policy(policy, directory / "policy")
    save_discriminators(discs, directory / DISC_FILE)


def restore_models(policy: GymPolicy, discs: list[Discriminator], directory: Path) -> None:
    """Load `write_models`' files into `policy` and `discs`, in place."""
    policy.load_state_dict(load_gym_policy(directory / "policy").state_dict())
    load_discriminators(discs, directory / DISC_FILE)


def run(cfg: OrpoConfig, run_dir: RunDir, resume: bool) -> dict[str, Any]:
    """`goodhart orpo`: train (or clone), evaluate, save; returns the results dict."""

    # step 1. the env's settings, the policy spec, coefficients in reward units
    st = setup(cfg)
    if cfg.algo == "bc":  # clone the env's scripted controller instead of training
        results = clone_controller(cfg, st, run_dir.file("policy"))
        policy = load_gym_policy(run_dir.file("policy"), st.device)
    else:
        # step 2. the base policies (built once for 'auto')
        bases = base_policies(cfg, st, run_dir)
        # step 3. the current policy, one discriminator per base policy, one optimizer
        policy, discs, optimizer = make_models(cfg, st, bases)
        # steps 4-5. resume, then the ORPO iterations (rollouts, discriminators, PPO)
        results = train(cfg, st, policy, bases, discs, run_dir, resume, optimizer)
        save_gym_policy(policy, run_dir.file("policy"))
        plot_returns(run_dir.path, run_dir.read_metrics())
    # step 6. true and proxy returns of the final policy on fresh episodes
    eval_kwargs = dict(st.env_kwargs)
    results["eval"] = evaluate_gym_policy(
        policy,
        cfg.env,
        eval_kwargs,
        cfg.eval.episodes,
        st.horizon,
        derive_seed(cfg.seed, "orpo/eval"),
    )
    run_dir.write_json("orpo_results.json", results)
    return results


def train(
    cfg: OrpoConfig,
    st: Setup,
    policy: GymPolicy,
    bases: list[GymPolicy],
    discs: list[Discriminator],
    run: RunDir | None,
    resume: bool,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Steps 4-5: resume, then `cfg.iterations` ORPO iterations (see `orpo_step`)."""

    if optimizer is None:
        optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.ppo.lr)
    start = 0
    ckpt = run.latest_checkpoint() if (run is not None and resume) else None
    if ckpt is not None:
        restore_models(policy, discs, ckpt)
        start, _ = load_checkpoint_state(ckpt, optimizer)
    if run is not None and resume:  # rows past the checkpoint (all without one) are re-logged
        run.truncate_metrics_after(start if ckpt is not None else None)
    info = ENVS[cfg.env]
    vec = info.make_vec(cfg.num_envs, **st.env_kwargs)
    base_vec = info.make_vec(cfg.base_num_envs, **st.env_kwargs) if bases else None
    metrics: dict[str, float] = {}
    with progress_bar(f"orpo {cfg.env}", cfg.iterations - start) as advance:
        for it in range(start, cfg.iterations):
            seeds = {
                k: derive_seed(cfg.seed, "orpo/iteration", it, k) for k in ORPO_ITERATION_STREAMS
            }
            metrics = orpo_step(cfg, st, policy, bases, discs, optimizer, vec, base_vec, seeds)
            done = it + 1
            if run is not None:
                run.log(done, metrics)
                if done % cfg.checkpoint_every == 0 and done < cfg.iterations:
                    write = partial(write_models, policy, discs)
                    save_checkpoint(run.checkpoint_dir(done), write, optimizer, done)
                    run.mark_latest(done, cfg.keep_checkpoints)
            advance(1, info=f"true {metrics.get('reward/true', float('nan')):.2f}")
    return {"final_metrics": metrics, "iterations": cfg.iterations, "om_coefs": st.om_coefs}
