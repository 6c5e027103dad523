"""vLLM as PPO's rollout sampler (`generation.backend=vllm`): one engine kept equal to the policy.

Why this shape:
- One engine for the whole run, started from the SFT policy's directory and living in this
  process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so pushing weights hands over tensors by
  reference instead of serializing the model to an engine process.
- After every PPO update `push_weights` gives the engine the policy's parameters through vLLM's
  public `LLM.apply_model(fn)`: fn calls the engine model's `load_weights`, which takes
  (name, tensor) pairs under the names of a saved checkpoint, the ones vLLM's own loaders read,
  and copies each into its (possibly fused, lower-precision) parameter. transformers 5 renames
  some weights in memory (GPT-NeoX's `embed_out` is `lm_head`), so the names are turned back as
  `save_pretrained` does. A LoRA policy pushes its merged weights.
- Prefix caching is off: a cached prompt's keys and values would come from older weights.
- vLLM's logprobs are not asked for: its kernels (bf16, paged attention) differ in numerics from
  the policy's forward pass, and PPO's ratio must start at exactly 1, so the caller recomputes
  the old logprobs with the policy (`ppo_step._old_and_ref`).
- One seed per prompt (`ppo/vllm_rollout` stream): per-request seeded sampling, so prompts do
  not share one random stream. The streams differ from our sampler's: the two backends give
  different (equally distributed) rollouts for a seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from goodhartlab.errors import ConfigError
from goodhartlab.models.lora import merged_copy
from goodhartlab.rollout.vllm_backend import sampling_params


@dataclass(frozen=True)
class Responses:
    """Sampled answers as our sampler lays them out: right-padded with pad, the eos included.

    Shape: response_ids/response_mask (B, T), T the longest answer (at least 1); ended (B,).
    """

    response_ids: torch.Tensor
    response_mask: torch.Tensor
    ended: torch.Tensor


def start_engine(source: str, seed: int, memory: float, trust_remote_code: bool = False) -> Any:
    """A vLLM engine on `source` (dir or hub id) in this process, taking `memory` of the GPU.

    In process whatever the environment said: in an engine process, `apply_model` would pickle
    the function and every weight it carries at each push.
    """
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import vllm

    engine = vllm.LLM(
        model=source, tokenizer=source, seed=seed, dtype="auto", gpu_memory_utilization=memory,
        enable_prefix_caching=False, trust_remote_code=trust_remote_code,
    )  # fmt: skip
    if not hasattr(engine, "apply_model"):
        version = getattr(vllm, "__version__", "?")
        raise ConfigError(
            f"generation.backend=vllm: vLLM {version} has no LLM.apply_model, which PPO's "
            "weight pushes use; upgrade vLLM or use generation.backend=transformers"
        )
    return engine


def checkpoint_names(model: Any, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` under the names `save_pretrained` writes (transformers 5 reverts its in-memory
    renamings on save; with transformers 4 the in-memory names are the checkpoint's)."""
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:
        return state
    return revert_weight_conversion(model, state)


def policy_weights(policy: Any) -> list[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) of every parameter, tied ones once; a LoRA policy's merged."""
    model = merged_copy(policy)
    state = {name: param.detach() for name, param in model.named_parameters()}
    return list(checkpoint_names(model, state).items())


def push_weights(engine: Any, policy: Any) -> None:
    """Copy the policy's current parameters into the engine's model (every worker's)."""
    weights = policy_weights(policy)
    engine.apply_model(lambda model: model.load_weights(weights))


def pad_responses(
    answers: Sequence[Sequence[int]], ended: Sequence[bool], pad_token_id: int, device: Any
) -> Responses:
    """Right-pad token-id lists into (B, T) ids and mask."""
    width = max([1, *(len(a) for a in answers)])
    ids = torch.full((len(answers), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(answers), width), dtype=torch.bool)
    for i, answer in enumerate(answers):
        ids[i, : len(answer)] = torch.tensor(list(answer), dtype=torch.long)
        mask[i, : len(answer)] = True
    return Responses(ids.to(device), mask.to(device), torch.tensor(list(ended), device=device))


def sample_responses(
    engine: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    sampling: Any,
    seeds: Sequence[int],
    tokenizer: Any,
) -> Responses:
    """One answer per left-padded prompt (`seeds[i]` seeds row i), laid out as ours.

    The prompt's real tokens (mask True) go to vLLM as token ids, so both backends condition on
    the same tokens. An answer that stopped at eos ends with the eos id; vLLM keeps it in
    `token_ids`, and where a version drops it, it is put back (only eos can stop an answer here:
    no stop strings are set).
    """
    from vllm import SamplingParams

    rows = [ids[m].tolist() for ids, m in zip(prompt_ids, prompt_mask)]
    params = [sampling_params(SamplingParams, sampling, 1, seed) for seed in seeds]
    outputs = engine.generate([{"prompt_token_ids": r} for r in rows], params, use_tqdm=False)
    eos = tokenizer.eos_token_id
    answers, ended = [], []
    for out in outputs:
        sample = out.outputs[0]
        tokens = list(sample.token_ids)
        stopped = sample.finish_reason == "stop"
        if stopped and tokens[-1:] != [eos]:
            tokens.append(eos)
        answers.append(tokens)
        ended.append(stopped)
    return pad_responses(answers, ended, tokenizer.pad_token_id, prompt_ids.device)
