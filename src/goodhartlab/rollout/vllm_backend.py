"""Best-of-n sampling through vLLM (`generate.backend=vllm`): the engine users already run on GPUs.

Why only for a frozen policy (best-of-n): vLLM loads a model directory or hub id once and
samples N answers per prompt with paged attention, which is where best-of-n spends its time
(N up to 12,500 in the seeds). PPO changes its policy every iteration; pushing weights into a
vLLM engine each step is a different design and is not wired here.
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

BACKENDS = ("transformers", "vllm")


def check_available(backend: str) -> None:
    """One line, before any model loads, when vLLM is asked for but cannot run here."""
    if backend != "vllm":
        return
    import torch

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "generate.backend=vllm: vLLM is not installed (pip install vllm on a CUDA machine); "
            "use generate.backend=transformers"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            "generate.backend=vllm needs a CUDA GPU and none is visible; "
            "use generate.backend=transformers"
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
    params = SamplingParams(
        n=n_samples,
        temperature=sampling.temperature,
        top_k=sampling.top_k if sampling.top_k > 0 else -1,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        seed=seed,
        skip_special_tokens=True,
    )
    outputs = engine.generate([{"prompt_token_ids": ids} for ids in rows], params)
    # decoded by our tokenizer as our sampler does (specials dropped, stripped)
    answers = [
        [tokenizer.decode(list(o.token_ids), skip_special_tokens=True).strip() for o in out.outputs]
        for out in outputs
    ]
    ended = np.array([[o.finish_reason == "stop" for o in out.outputs] for out in outputs])
    return answers, ended.reshape(len(prompts), n_samples)
