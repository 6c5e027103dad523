"""Typed configuration of `goodhart demo`: the whole toy-world chain in one command.

Every stage is another command's preset plus overrides, so each child run's `config.yaml` is a
complete, rerunnable config of its own command and the demo invents no settings of its own.
Overrides may name the demo's products with placeholders, filled in when the stage starts:
`{seed}` (the demo's seed), `{sft}` (the SFT policy dir), `{rm}` (the single proxy RM: member
`ppo.single_rm_seed`), `{ensemble}` (the BT ensemble's manifest), `{inform}` (the InfoRM RM),
`{pairs_train}` / `{pairs_eval}` (the shared preference files).

Sizes (measured on 2 cores, docs/demo.md): chosen so the whole demo stays under 10 minutes
while every phenomenon still shows (single-RM best-of-n and PPO gold peaking then falling,
regularized runs ending higher); shrinking further made them vanish. Import-light.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from goodhartlab.config.schemas import _f


@dataclass
class DemoStage:
    preset: str = _f("toy", "preset of the stage's command (configs/<command>/NAME.yaml)")
    overrides: list[str] = field(default_factory=list, metadata={"help": "key=value overrides"})


@dataclass
class DemoSFTStage(DemoStage):
    overrides: list[str] = field(
        default_factory=lambda: ["seed={seed}", "sample.n_prompts=256"],
        metadata={"help": "sft overrides"},
    )


@dataclass
class DemoRMStage(DemoStage):
    seeds: list[int] = field(
        default_factory=lambda: [1, 2, 3, 4, 5], metadata={"help": "one BT member per seed"}
    )
    overrides: list[str] = field(
        default_factory=lambda: [
            "model.source={sft}",
            "data.policy={sft}",
            "data.n_train_pairs=8000",
            "data.n_eval_pairs=1000",
        ],
        metadata={"help": "train-rm overrides of every member (and of the pair sampling)"},
    )
    inform: bool = _f(True, "also train an InfoRM reward model")
    inform_overrides: list[str] = field(
        default_factory=lambda: ["inform.enabled=true"],
        metadata={"help": "extra train-rm overrides of the InfoRM model"},
    )


@dataclass
class DemoBonStage(DemoStage):
    enabled: bool = _f(True, "run best-of-n")
    overrides: list[str] = field(
        default_factory=lambda: [
            "seed={seed}",
            "generate.policy={sft}",
            "generate.n_prompts=256",
            "generate.n_samples=128",
            "reward_models=[{ensemble}]",
            "sample_ns=[1,2,4,8,16,32,64,128]",
        ],
        metadata={"help": "bon overrides"},
    )


def _default_methods() -> dict[str, list[str]]:
    return {
        "none": [],
        "kl_reward": ["regularizer.kind=kl", "regularizer.coef=0.2"],
        "sqrt_chi2_loss": [
            "regularizer.kind=sqrt_chi2",
            "regularizer.placement=loss",
            "regularizer.coef=0.05",
        ],
        "ensemble_uwo": ["reward.reward_models=[{ensemble}]", "reward.objective=uwo"],
        "length_penalty": ["reward.len_penalty=true"],
        "inform": ["reward.reward_models=[{inform}]"],
        "gold": ["reward.kind=gold"],
    }


@dataclass
class DemoPPOStage(DemoStage):
    overrides: list[str] = field(
        default_factory=lambda: [
            "seed={seed}",
            "policy.source={sft}",
            "reward.reward_models=[{rm}]",
            "ppo.iterations=60",
            "eval.every=5",
            "eval.n_prompts=256",
            "checkpoint_every=30",
        ],
        metadata={"help": "ppo overrides shared by every method (a method's own come after)"},
    )
    methods: dict[str, list[str]] = field(
        default_factory=_default_methods,
        metadata={"help": "method name -> its ppo overrides (none = the unregularized proxy)"},
    )
    single_rm_seed: int = _f(1, "the ensemble member used as {rm}, the single proxy RM")
    # Empty by default so that one CLI word varies every PPO run of the demo (e.g.
    # 'ppo.extra_overrides=[ppo.value_model=separate]') without restating `overrides`.
    extra_overrides: list[str] = field(
        default_factory=list,
        metadata={"help": "ppo overrides of every method, applied after the method's own"},
    )


@dataclass
class DemoConfig:
    seed: int = _f(0, "seed of SFT, best-of-n sampling and PPO ({seed})")
    workers: int = _f(2, "parallel worker processes for independent runs (RM members, PPO runs)")
    sft: DemoSFTStage = _f(DemoSFTStage, "stage 1: toy world + SFT policy")
    rm: DemoRMStage = _f(DemoRMStage, "stage 2-3: shared preference pairs, BT ensemble, InfoRM")
    bon: DemoBonStage = _f(DemoBonStage, "stage 4: best-of-n curves")
    ppo: DemoPPOStage = _f(DemoPPOStage, "stage 4: PPO with every cure")
    report: bool = _f(True, "stage 5: write report.html")
