"""Best-of-n sampling through vLLM (`generate.backend=vllm`): the engine users already run on GPUs.

vLLM loads a model directory or hub id once and samples N answers per prompt with paged
attention, which is where best-of-n spends its time (N up to 12,500 in the seeds). PPO's
rollouts, whose policy changes every iteration, use the same engine with weight pushes
(`rollout.vllm_policy`); both share the availability check and the sampling settings here.
Prompts are formatted and tokenized exactly as for our own sampler (`data.encoding`), token ids
go to vLLM and its answers' token ids are decoded by our tokenizer, so both backends condition
on the same tokens and write the same kind of text. Sampling streams differ: the two backends
give different (equally distributed) samples for one seed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from goodhartlab.errors import ConfigError
from goodhartlab.runs.seeding import derive_seed

BACKENDS = ("transformers", "vllm")


def check_available(backend: str, key: str = "generate.backend") -> None:
    """One line, before any model loads, when vLLM is asked for but cannot run here; `key` is
    the config field that asked (bon: generate.backend, ppo: generation.backend)."""
    if backend != "vllm":
        return
    import torch

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            f"{key}=vllm: vLLM is not installed (pip install vllm on a CUDA machine); "
            f"use {key}=transformers"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{key}=vllm needs a CUDA GPU and none is visible; use {key}=transformers"
        )


def sampling_params(params_class: Any, sampling: Any, n: int, seed: int) -> Any:
    """vLLM's SamplingParams for our GenerationConfig: n answers, one seeded request.

    top_k 0 (ours: off) is -1 for vLLM; temperature 0 is greedy in both.
    """
    return params_class(
        n=n,
        temperature=sampling.temperature,
        top_k=sampling.top_k if sampling.top_k > 0 else -1,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        seed=seed,
        skip_special_tokens=True,
    )


def sample_vllm(
    source: str,
    tokenizer: Any,
    prompts: Sequence[str],
    n_samples: int,
    sampling: Any,
    seed: int,
    template: str | None = None,
    dtype: str = "auto",
) -> tuple[list[list[str]], np.ndarray]:
    """(answers [P][N], ended (P, N) bool) for `n_samples` answers per prompt.

    `sampling` is a GenerationConfig: temperature (0 = greedy), top_k (0 = off), top_p,
    max_new_tokens. `ended` is True where the answer stopped at eos (not at the length limit).
    """
    from vllm import LLM, SamplingParams

    from goodhartlab.data.encoding import format_prompt

    texts = [format_prompt(tokenizer, p, template) for p in prompts]
    rows = [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    engine = LLM(model=source, tokenizer=source, seed=seed, dtype=dtype)
    params = [
        sampling_params(
            SamplingParams, sampling, n_samples, derive_seed(seed, "bon/vllm_prompt", i)
        )
        for i in range(len(rows))
    ]  # one seeded request per prompt: a shared seed would give all prompts one noise stream
    outputs = engine.generate([{"prompt_token_ids": ids} for ids in rows], params)
    # decoded by our tokenizer as our sampler does (specials dropped, stripped)
    answers = [
        [tokenizer.decode(list(o.token_ids), skip_special_tokens=True).strip() for o in out.outputs]
        for out in outputs
    ]
    ended = np.array([[o.finish_reason == "stop" for o in out.outputs] for out in outputs])
    return answers, ended.reshape(len(prompts), n_samples)
