"""Typed configuration of `goodhart bon` (best-of-n with the unbiased estimator).

Defaults are the toy world at full demo size (configs/bon/toy.yaml must equal them): the cached
toy SFT policy samples N = 256 answers for each of 512 held-out prompts, the cached toy
5-member reward-model ensemble scores them, and the toy gold program is the gold reward.
Import-light: dataclasses only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.ranges import AT_LEAST_1, NON_NEGATIVE
from goodhartlab.config.schemas import GenerationConfig, _f

# The seeds' 16-point grid stops at 12,500; the toy default stops at its N.
TOY_SAMPLE_NS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


@dataclass
class BonGenerationConfig:
    policy: str = _f("toy:sft", "policy to sample from ('toy:sft' = cached toy SFT policy)")
    prompts: str = _f("toy", "'toy' (held-out toy prompts) or a prompt file (column `prompt`)")
    n_prompts: int = _f(
        512, "prompts to sample for (toy, or the first n of the file)", range=AT_LEAST_1
    )
    n_samples: int = _f(256, "answers per prompt (N)", range=AT_LEAST_1)
    template: str | None = _f(None, "prompt template; default: tokenizer's chat template")
    sampling: GenerationConfig = _f(GenerationConfig, "sampling settings")
    backend: Literal["transformers", "vllm"] = _f(
        "transformers", "sampler: ours (transformers models), or vLLM (installed, on a GPU)"
    )


@dataclass
class BonConfig:
    seed: int = _f(0, "seed of prompt choice and sampling")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    generations: str | None = _f(
        None,
        "scored-generations file to reuse instead of sampling: ours (RUN/scored_generations"
        ".jsonl, proxy scores reused too) or the seeds' layout (instruction, input, answers, "
        "gold_scores)",
    )
    generate: BonGenerationConfig = _f(BonGenerationConfig, "sampling, when generations is null")
    reward_models: list[str] = field(
        default_factory=lambda: ["toy:rm-ensemble"],
        metadata={
            "help": "proxy RMs: dirs, ensemble manifests / train-rm run dirs (every member), "
            "or 'toy:rm-ensemble' (cached toy 5-seed ensemble)"
        },
    )
    seeds: list[int] | None = _f(
        None,
        "fill a {seed} placeholder in reward_models paths, one member per seed (the seeds' "
        "proxy_rm_path + --seeds: reward_models=['RUN/rm_seed{seed}/model'] seeds=[1,2])",
    )
    big_n: int | None = _f(
        None,
        "use only the first big_n answers of each prompt (the seeds' --big-n; null = all N)",
        range=AT_LEAST_1,
    )
    gold: str = _f(
        "auto",
        "'auto' (the file's gold_scores when generations is set, else toy), 'toy' (the toy "
        "gold program), 'file', or a gold reward-model dir",
    )
    reward_template: str | None = _f(None, "template the RMs score with (default: chat template)")
    score_batch_size: int = _f(512, "texts per RM forward pass", range=AT_LEAST_1)
    sample_ns: list[int] = field(
        default_factory=lambda: list(TOY_SAMPLE_NS),
        metadata={"help": "n values of the curve (n > N are dropped and listed)"},
    )
    objectives: list[Literal["mean", "wco", "uwo"]] = field(
        default_factory=lambda: ["mean", "wco", "uwo"],
        metadata={"help": "ensemble objectives (need >= 2 members)"},
    )
    uwo_coefs: list[float] = field(
        default_factory=lambda: [0.5], metadata={"help": "UWO lambdas (seed BoN default 0.5)"}
    )
    ddof: int = _f(
        0, "variance ddof for UWO (the seeds use 0 for best-of-n, 1 for PPO)", range=NON_NEGATIVE
    )
    faithful_seed_gold: bool = _f(
        False, "reproduce the seed bug: ensemble gold in member 0's order (comparison only)"
    )
