"""Typed configuration of `goodhart ppo` (PPO for language models) and `goodhart evaluate`.

Defaults are the toy world at full demo size (configs/ppo/toy.yaml must equal them): the cached
toy SFT policy is optimized against one cached toy reward model with no regularization, which is
where the gold reward peaks and falls. Import-light: dataclasses only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.detect_schema import DetectConfig, EarlyStopConfig
from goodhartlab.config.ranges import AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT, Range
from goodhartlab.config.schemas import GenerationConfig, ModelConfig, _f


@dataclass
class PPORewardConfig:
    kind: Literal["proxy", "gold", "len_only"] = _f(
        "proxy", "proxy RM(s); the gold reward itself (control); or length only (len_only)"
    )
    reward_models: list[str] = field(
        default_factory=lambda: ["toy:rm"],
        metadata={
            "help": "proxy RM dirs / ensemble manifests / train-rm run dirs (members expanded); "
            "'toy:rm' = member seed 1 of the cached toy ensemble, 'toy:rm-ensemble' = all 5"
        },
    )
    seeds: list[int] | None = _f(
        None,
        "fill a {seed} placeholder in reward_models paths, one member per seed (Coste's "
        "--rm_seed / proxy_rm_path: reward_models=['RUN/rm_seed{seed}/model'] seeds=[1])",
    )
    normalize: bool = _f(
        True,
        "z-score each member with the eval mean/std train-rm stores in it, so coefficients mean "
        "the same for every RM (the seeds use raw scores: false)",
    )
    objective: Literal["mean", "wco", "uwo"] = _f("mean", "ensemble objective (several members)")
    uwo_coef: float = _f(0.1, "UWO λ (the seed's PPO default 0.1)")
    ddof: int = _f(
        1, "UWO variance ddof (the seeds use 1 in PPO, 0 in best-of-n)", range=NON_NEGATIVE
    )
    gold: str = _f("toy", "gold reward for evaluation: 'toy' or a gold RM dir")
    clip: float | None = _f(10.0, "clip the score to ±clip (seed 10; null = off)", range=POSITIVE)
    whiten: bool = _f(False, "whiten scores over the batch")
    len_only: float | None = _f(None, "length-only reward 1 − |L/N − 1| with target N tokens")
    len_penalty: bool = _f(False, "r + 2σ̄(1 − 0.01·L) (Singhal et al.)")
    scale_reward: bool = _f(False, "clip((r − μ̄)/σ̄, ±0.3) with last-10-batch running stats")
    omit_long: bool = _f(False, "replace truncated (no eos) samples by random finished ones")
    template: str | None = _f(None, "template the RMs score with (default: chat template)")


@dataclass
class RegularizerConfig:
    kind: Literal["none", "kl", "chi2", "sqrt_chi2"] = _f("none", "divergence to the SFT policy")
    placement: Literal["reward", "loss"] = _f(
        "reward", "kl: per token in the reward, or per sequence in the loss; chi2/sqrt_chi2: loss"
    )
    estimator: Literal["k1", "k2", "k3"] = _f("k1", "per-token KL estimator in the reward")
    coef: float = _f(0.0, "coefficient (initial value when adaptive)", range=NON_NEGATIVE)
    target: float | None = _f(
        None, "adaptive coefficient's target KL (null = fixed)", range=POSITIVE
    )
    horizon: float = _f(10000.0, "adaptive controller horizon", range=POSITIVE)
    keep_kl_in_reward: bool = _f(
        False, "also keep the k1 reward penalty with in-loss terms (the seed fork's double count)"
    )


@dataclass
class PPOHyperConfig:
    iterations: int = _f(150, "rollout + update iterations", range=AT_LEAST_1)
    prompts_per_iteration: int = _f(64, "rollouts per iteration", range=AT_LEAST_1)
    epochs: int = _f(4, "PPO epochs over each batch", range=AT_LEAST_1)
    minibatch_size: int = _f(32, "rollouts per minibatch", range=AT_LEAST_1)
    lr: float = _f(1e-4, "AdamW learning rate (policy and value)", range=POSITIVE)
    clip_eps: float = _f(0.2, "ratio clip", range=POSITIVE)
    clip_eps_value: float | None = _f(0.2, "value clip (null = off)", range=POSITIVE)
    vf_coef: float = _f(1.0, "value-loss weight", range=NON_NEGATIVE)
    ent_coef: float = _f(0.0, "entropy bonus", range=NON_NEGATIVE)
    max_grad_norm: float | None = _f(1.0, "gradient-norm clip", range=POSITIVE)
    gamma: float = _f(1.0, "discount", range=UNIT)
    gae_lambda: float = _f(0.95, "GAE λ", range=UNIT)
    whiten_advantages: bool = _f(True, "whiten advantages per minibatch")
    target_kl: float | None = _f(
        None, "stop an iteration's epochs once their mean approx KL exceeds it (null = off)",
        range=POSITIVE,
    )  # fmt: skip
    value_model: Literal["separate", "head"] = _f(
        "separate", "separate value network (SFT backbone + scalar head) or a head on the policy"
    )


@dataclass
class RolloutGenerationConfig(GenerationConfig):
    """Rollout sampling, plus which engine samples (evaluation always uses ours)."""

    backend: Literal["transformers", "vllm"] = _f(
        "transformers",
        "rollout sampler: ours (transformers models), or vLLM (installed, on a CUDA GPU; the "
        "policy's weights are pushed into its engine after every update)",
    )
    vllm_memory: float = _f(
        0.3,
        "vLLM backend: fraction of GPU memory its engine may take (its weight copy and KV "
        "cache); the policy, reference, value model and optimizer need the rest",
        range=Range(0, 1, lo_open=True),  # 0 would leave vLLM no room at all
    )


@dataclass
class PPOEvalConfig:
    every: int = _f(
        10, "iterations between evaluations (0 = only start and end)", range=NON_NEGATIVE
    )
    n_prompts: int = _f(
        512, "fixed held-out prompts (DESIGN: >= 512 for ±0.05 gold noise)", range=AT_LEAST_1
    )
    generation: GenerationConfig = _f(GenerationConfig, "evaluation sampling")


@dataclass
class PPOConfig:
    seed: int = _f(0, "seed of prompts, sampling and init")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    policy: ModelConfig = field(
        default_factory=lambda: ModelConfig(source="toy:sft"),
        metadata={"help": "the SFT policy (also the reference); 'toy:sft' = cached toy SFT"},
    )
    prompts: str = _f("toy", "'toy' (toy prompts) or a prompt file (column `prompt`)")
    template: str | None = _f(None, "policy prompt template; default: tokenizer's chat template")
    generation: RolloutGenerationConfig = _f(RolloutGenerationConfig, "rollout sampling")
    reward: PPORewardConfig = _f(PPORewardConfig, "what is optimized")
    regularizer: RegularizerConfig = _f(RegularizerConfig, "divergence to the SFT policy")
    ppo: PPOHyperConfig = _f(PPOHyperConfig, "the PPO update")
    eval: PPOEvalConfig = _f(PPOEvalConfig, "evaluation during training")
    detect: DetectConfig = _f(DetectConfig, "hacking detectors run at every evaluation")
    early_stop: EarlyStopConfig = _f(EarlyStopConfig, "stop at a detector's first flag")
    checkpoint_every: int = _f(
        50, "iterations between checkpoints (resume points)", range=AT_LEAST_1
    )
    keep_checkpoints: int = _f(2, "how many recent checkpoints to keep", range=NON_NEGATIVE)


@dataclass
class EvaluateConfig:
    checkpoint: str = _f("", "policy dir: a ppo run's model/ or checkpoints/<step>, or any policy")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    seed: int = _f(0, "seed of prompts and sampling")
    prompts: str = _f("toy", "'toy' (held-out toy prompts) or a prompt file")
    n_prompts: int = _f(512, "prompts to answer", range=AT_LEAST_1)
    prompt_start: int = _f(
        0,
        "index of the first prompt: answers prompts [prompt_start, prompt_start + n_prompts) "
        "(the length paper's bottom/top range; a prompt file only: toy ranges would not tile)",
        range=NON_NEGATIVE,
    )
    n_samples: int = _f(
        1, "answers per prompt (the length paper samples 8 for its analyses)", range=AT_LEAST_1
    )
    repetition_penalty: float = _f(
        1.0,
        "divide the logit of every token already in the row (CTRL / transformers; the length "
        "paper's evaluations use 1.2; 1 = off)",
        range=POSITIVE,
    )
    template: str | None = _f(None, "policy prompt template")
    reference: str | None = _f(
        None,
        "reference (SFT) policy dir: adds each answer's KL to it (`kl`, the sum over response "
        "tokens of log pi - log pi_ref) and the kl/* divergences to the summary",
    )
    generation: GenerationConfig = _f(GenerationConfig, "sampling (the seed: the rollout settings)")
    reward: PPORewardConfig = _f(PPORewardConfig, "proxy RM(s) and gold")
    output: str | None = _f(
        None,
        "output file (default: CHECKPOINT/gold_eval_with_response_ids.json; with prompt_start "
        "> 0, gold_eval_with_response_ids_START-END.json)",
    )
