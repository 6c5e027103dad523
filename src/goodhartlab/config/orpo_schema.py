"""Typed configuration of `goodhart orpo` (occupancy-measure regularized PPO on gym envs).

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al., "Correlated
Proxies"), not TRL's odds-ratio preference optimization. The top-level keys keep the seed's names
(`om_divergence_type`, `om_divergence_coeffs`, `use_action_for_disc`,
`action_dist_divergence_coeff`, `reward_fun`, `env`). The defaults are the tomato run at full
demo size (configs/orpo/toy.yaml must equal them). The env choices and each env's reward
functions come from the environment registry `envs.ENVS` (which imports only gymnasium).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.ranges import AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT
from goodhartlab.config.schemas import _f
from goodhartlab.envs import ENV_NAMES, ENVS

# every env's reward functions, as choices: `reward_fun=true` on the command line is then the
# text "true" (a plain str field would read it as a YAML bool); per-env validity is checked below
REWARD_FUNS = tuple(sorted({name for info in ENVS.values() for name in info.reward_funs}))


@dataclass
class OrpoPPOConfig:
    lr: float = _f(1e-3, "Adam learning rate (spec tomato 1e-3)", range=POSITIVE)
    epochs: int = _f(8, "passes over each batch (num_sgd_iter)", range=AT_LEAST_1)
    minibatch_size: int = _f(256, "env steps per minibatch", range=AT_LEAST_1)
    clip_eps: float = _f(
        0.2, "PPO ratio clip (spec 0.05 with 500 iterations; see docs/orpo.md)", range=POSITIVE
    )
    vf_coef: float = _f(0.5, "value-loss weight", range=NON_NEGATIVE)
    vf_clip: float | None = _f(None, "value clip around old values (null = off)", range=POSITIVE)
    entropy_coef: float = _f(0.01, "entropy bonus", range=NON_NEGATIVE)
    max_grad_norm: float = _f(0.5, "global gradient-norm clip", range=POSITIVE)
    gae_lambda: float = _f(0.98, "GAE lambda", range=UNIT)
    gamma: float | None = _f(None, "discount (null = the env's, 0.99)", range=UNIT)
    target_kl: float | None = _f(
        None, "stop an iteration's epochs once their mean approx KL exceeds it (null = off)",
        range=POSITIVE,
    )  # fmt: skip


@dataclass
class DiscriminatorConfig:
    width: int = _f(256, "hidden width (spec 256)", range=AT_LEAST_1)
    depth: int = _f(2, "hidden layers (spec 2)", range=AT_LEAST_1)
    epochs: int = _f(2, "passes over (current + base) data per iteration", range=AT_LEAST_1)
    minibatch_size: int = _f(256, "samples per discriminator step", range=AT_LEAST_1)
    lr: float | None = _f(None, "Adam lr (null = ppo.lr, as the seed)", range=POSITIVE)
    grad_clip: float | None = _f(None, "gradient-norm clip", range=POSITIVE)
    wgan_weight_clip: float = _f(0.01, "wasserstein: clamp weights after each iteration")


@dataclass
class BCConfig:
    episodes: int = _f(32, "scripted-controller episodes to clone", range=AT_LEAST_1)
    epochs: int = _f(30, "passes over the dataset", range=AT_LEAST_1)
    minibatch_size: int = _f(512, "samples per step", range=AT_LEAST_1)
    lr: float = _f(1e-3, "Adam learning rate", range=POSITIVE)
    entropy_coef: float = _f(0.0, "entropy bonus (spec: 1 for glucose)", range=NON_NEGATIVE)
    controller_eps: float = _f(
        0.0,
        "mistakes in the scripted data: tomato, pandemic: fraction of uniform random actions;"
        " traffic: fraction of copies that park their first bus",
        range=UNIT,
    )
    schedules: list[str] | None = _f(
        None, "pandemic: the scripted stage schedules pooled in the data (null = all 10, the spec)"
    )


@dataclass
class EvalConfig:
    episodes: int = _f(256, "final evaluation episodes (95% intervals)", range=AT_LEAST_1)


@dataclass
class OrpoConfig:
    algo: Literal["orpo", "bc"] = _f("orpo", "orpo = (regularized) PPO; bc = clone a controller")
    env: Literal[ENV_NAMES] = _f("tomato", "environment (a key of envs.ENVS)")
    reward_fun: Literal[REWARD_FUNS] = _f(  # type: ignore[valid-type]
        "proxy", "training reward (one of the env's reward_funs: proxy, true)"
    )
    env_horizon: int | None = _f(
        None, "episode length override (null = the env's)", range=AT_LEAST_1
    )
    seed: int = _f(0, "seed of init, sampling and env resets")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    iterations: int = _f(40, "PPO iterations", range=AT_LEAST_1)
    num_envs: int = _f(32, "current-policy envs per iteration", range=AT_LEAST_1)
    base_num_envs: int = _f(
        32, "envs per base policy per iteration (half the batch, as the seed)", range=AT_LEAST_1
    )
    rollout_steps: int = _f(
        100, "steps per env per iteration (tomato: one episode)", range=AT_LEAST_1
    )
    hidden: list[int] = field(
        default_factory=lambda: [64, 64], metadata={"help": "policy/value MLP widths"}
    )
    init_policy: str | None = _f(
        None, "null = random init, 'base' = copy of base policy 0, or a policy dir"
    )
    base_policies: list[str] = field(
        default_factory=lambda: ["auto"],
        metadata={"help": "base policy dirs; 'auto' builds the env's default base (spec §4.2)"},
    )
    om_divergence_type: Literal["kl", "chi2", "sqrt_chi2", "tv", "wasserstein"] = _f(
        "sqrt_chi2", "OM divergence (shared by all base policies)"
    )
    om_divergence_coeffs: list[float] = field(
        default_factory=lambda: [0.2],
        metadata={"help": "scale-free OM coefficient per base policy (< 0: push away)"},
    )
    use_action_for_disc: bool = _f(True, "state-action OM (true) or state OM (false)")
    action_dist_divergence_coeff: float = _f(0.0, "scale-free AD coefficient (loss term)")
    action_dist_divergence_type: Literal["kl", "chi2", "sqrt_chi2"] = _f("kl", "AD divergence")
    scale_coeffs: bool = _f(True, "multiply coefficients by the env's reward scale (spec §4.3)")
    ppo: OrpoPPOConfig = field(default_factory=OrpoPPOConfig, metadata={"help": "PPO settings"})
    discriminator: DiscriminatorConfig = field(
        default_factory=DiscriminatorConfig, metadata={"help": "OM discriminator"}
    )
    bc: BCConfig = field(
        default_factory=BCConfig,
        metadata={"help": "behaviour cloning (algo=bc and glucose 'auto' base)"},
    )
    base_iterations: int = _f(3, "tomato 'auto' base: PPO iterations on the true reward")
    base_randomness_eps: float = _f(
        0.1, "tomato 'auto' base: random-action prob while training", range=UNIT
    )
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "evaluation"})
    checkpoint_every: int = _f(10, "iterations between checkpoints", range=AT_LEAST_1)
    keep_checkpoints: int = _f(2, "checkpoints kept", range=NON_NEGATIVE)

    def __post_init__(self) -> None:
        if self.reward_fun not in ENVS[self.env].reward_funs:
            raise ValueError(
                f"reward_fun: {self.env}'s reward functions are "
                f"{', '.join(ENVS[self.env].reward_funs)}; got {self.reward_fun!r}"
            )
        if self.algo == "orpo" and len(self.om_divergence_coeffs) != len(self.base_policies):
            raise ValueError(
                "om_divergence_coeffs: need one coefficient per base policy "
                f"({len(self.base_policies)}), got {len(self.om_divergence_coeffs)}"
            )
        if self.bc.schedules is not None and not ENVS[self.env].named_controllers:
            raise ValueError(f"bc.schedules: {self.env}'s controller has no schedules to choose")
        if self.init_policy == "base" and not self.base_policies:
            raise ValueError("init_policy: 'base' needs a base policy")
        if self.action_dist_divergence_coeff != 0 and len(self.base_policies) != 1:
            raise ValueError("action_dist_divergence_coeff: needs exactly one base policy")
        if self.rollout_steps < 1 or self.iterations < 0 or self.num_envs < 1:
            raise ValueError("rollout_steps, iterations and num_envs must be positive")
