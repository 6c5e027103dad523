"""Reward models: one scoring interface for Bradley–Terry RMs and InfoRMs, loading, ensembles.

A BT reward model is a plain `AutoModelForSequenceClassification` with one label (the score is
read at the last non-pad token, HF's own pooling), so anyone can load ours with transformers
alone. An InfoRM adds a bottleneck head (`models.inform`). Texts are encoded as
prompt (formatted like the policy's) + response + eos, right-padded, so positions start at 0.
Scoring is encode once (`data.encoding.encode_reward_inputs`, one tokenizer call for all texts),
then `score_encoded` per model, in length-sorted batches: an ensemble shares one encoding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goodhartlab.data.encoding import RewardInputs, SharedEncodings, encode_reward_inputs
from goodhartlab.errors import input_error
from goodhartlab.models.inform import InfoRM, InfoRMConfig, is_inform_dir
from goodhartlab.models.loading import load_model, load_tokenizer, resolve_device, write_pretrained

MANIFEST = "ensemble.json"


@dataclass(frozen=True)
class RewardOutput:
    """Scores (B,); for an InfoRM also the bottleneck mean and log-variance (B, d)."""

    scores: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


def reward_forward(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> RewardOutput:
    """Score a right-padded batch with either kind of RM (grad flows if enabled)."""
    if isinstance(model, InfoRM):
        return RewardOutput(*model(input_ids, attention_mask))
    return RewardOutput(model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0])


def reward_token_rows(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    template: str | None = None,
    max_length: int | None = None,
) -> list[list[int]]:
    """Token ids of prompt + response + eos per row; long rows are cut before eos."""
    return encode_reward_inputs(tokenizer, prompts, responses, template, max_length).rows()


def _tensors(ids: np.ndarray, mask: np.ndarray, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def pad_rows(
    rows: Sequence[Sequence[int]], pad_token_id: int, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (ids, mask) of token rows. Shape: -> (B, max len) twice, int64."""
    return _tensors(*RewardInputs.from_rows(rows, pad_token_id).padded(), device)


def encode_for_reward(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    template: str | None = None,
    max_length: int | None = None,
    device: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (ids, mask) of prompt + response + eos; long responses are cut before eos."""
    inputs = encode_reward_inputs(tokenizer, prompts, responses, template, max_length)
    return _tensors(*inputs.padded(), device)


@torch.no_grad()
def score_encoded(
    model: Any, inputs: RewardInputs, batch_size: int = 256, *, return_latents: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Scores (N,) as float64 numpy in the rows' order, and the latents (N, d) on request.

    Batches are cut from the rows sorted longest first, so each batch pads only to rows of
    about its own length (and a batch that does not fit in memory fails at once, not at the
    end). Padding is masked, so a score moves only by float summation order (~1e-7).
    """
    device = next(model.parameters()).device
    order = np.argsort(-inputs.lengths, kind="stable")
    scores = np.empty(len(inputs))
    latents: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        out = reward_forward(model, *_tensors(*inputs.padded(index), device))
        scores[index] = out.scores.float().cpu().double().numpy()
        if return_latents:
            if out.mu is None:
                raise ValueError("latents are only available from an InfoRM reward model")
            if latents is None:
                latents = np.empty((len(inputs), out.mu.shape[-1]))
            latents[index] = out.mu.float().cpu().double().numpy()
    if not return_latents:
        return scores
    return scores, latents if latents is not None else np.empty((0, 0))


def score_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 256,
    template: str | None = None,
    return_latents: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Scores (N,) as float64 numpy, and the latents (N, d) on request (InfoRM mu only)."""
    inputs = encode_reward_inputs(tokenizer, prompts, responses, template)
    return score_encoded(model, inputs, batch_size, return_latents=return_latents)


def score_members(
    members: Sequence[tuple[Any, Any]],
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 256,
    template: str | None = None,
) -> list[np.ndarray]:
    """Scores (N,) of each (model, tokenizer) member, the texts encoded once per distinct
    tokenizer (`SharedEncodings`): the same numbers as `score_texts` per member."""
    shared = SharedEncodings(prompts, responses, template)
    return [score_encoded(model, shared.get(tok), batch_size) for model, tok in members]


def load_reward_model(
    source: str,
    *,
    device: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    seed: int = 0,
    inform: InfoRMConfig | None = None,
    allow_pickle_weights: bool = False,
):
    """(reward model, tokenizer) from a saved RM, a backbone to start from, or a toy spec.

    - a dir saved by `save_reward_model` loads as it was saved (BT or InfoRM);
    - with `inform`, a new InfoRM is built on the source's backbone (heads seeded by `seed`);
    - otherwise a sequence classifier with one label; a causal-LM source gets a fresh head.
    """
    if is_inform_dir(source):
        tok = load_tokenizer(source, trust_remote_code, padding_side="right")
        model = InfoRM.load(Path(source), allow_pickle_weights, trust_remote_code=trust_remote_code)
    elif inform is not None:
        tok = load_tokenizer(source, trust_remote_code, padding_side="right")
        backbone = _backbone(source, tok, seed, trust_remote_code, allow_pickle_weights)
        model = InfoRM(backbone, inform, generator=torch.Generator().manual_seed(seed))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the fresh score head's init
            return load_model(
                source,
                role="scalar",
                device=device,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                seed=seed,
                allow_pickle_weights=allow_pickle_weights,
            )
    model.to(resolve_device(device))
    if dtype != "auto":
        model.to(getattr(torch, dtype))
    return model, tok


def _backbone(source: str, tok: Any, seed: int, trust_remote_code: bool, allow_pickle: bool):
    if source.startswith("toy:"):
        from transformers import GPTNeoXModel

        from goodhartlab.models.toy import parse_toy_spec, toy_config

        _, size = parse_toy_spec(source)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GPTNeoXModel(toy_config(size, tok))
    from transformers import AutoModel

    from goodhartlab.models.loading import _from_pretrained

    return _from_pretrained(AutoModel, source, allow_pickle, trust_remote_code=trust_remote_code)


def save_reward_model(
    model: Any, tokenizer: Any, out_dir: str | Path, score_mean: float, score_std: float
) -> Path:
    """Save atomically, with the eval-set score mean/std for later normalization (LoRA: merged;
    several processes: rank 0 only)."""
    from goodhartlab.models.lora import merged_copy
    from goodhartlab.runs.atomic import atomic_directory
    from goodhartlab.runs.distributed import is_main_process

    out = Path(out_dir)
    if not is_main_process():
        return out
    with atomic_directory(out) as tmp:
        stats = model.inform_config if isinstance(model, InfoRM) else model.config
        stats.score_mean, stats.score_std = score_mean, score_std
        write_pretrained(merged_copy(model), tokenizer, tmp)  # a LoRA RM: merged
    return out


def write_ensemble_manifest(path: str | Path, members: Sequence[dict[str, Any]]) -> Path:
    """`ensemble.json`: the members (seed, relative dir) of a seed ensemble."""
    from goodhartlab.runs.atomic import atomic_write_json

    return atomic_write_json(Path(path), {"members": list(members)})


def ensemble_members(source: str | Path) -> list[Path]:
    """Member dirs of an ensemble: a manifest file, a dir holding one, or a single RM dir."""
    path = Path(source)
    manifest = path / MANIFEST if path.is_dir() else path
    if manifest.name == MANIFEST and manifest.exists():
        rows = json.loads(manifest.read_text())["members"]
        return [manifest.parent / row["path"] for row in rows]
    if path.is_dir() and not (path / "config.json").exists() and (path / "model").is_dir():
        return [path / "model"]  # a member dir of a train-rm run (rm_seed{s}/)
    if path.is_dir():
        return [path]
    raise input_error("no reward model or ensemble manifest here", path)


def load_reward_models(sources: str | Path | Sequence[str | Path], **kwargs: Any) -> list[tuple]:
    """Load every member of one or more ensembles/RMs, frozen, as (model, tokenizer) pairs."""
    from goodhartlab.models.loading import freeze

    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    paths = [member for item in items for member in ensemble_members(item)]
    loaded = [load_reward_model(str(p), **kwargs) for p in paths]
    return [(freeze(model), tok) for model, tok in loaded]


def write_score_stats(model_dir: str | Path, score_mean: float, score_std: float) -> Path:
    """Store eval score mean/std in a saved RM's config (config.json, or inform_config.json)."""
    from goodhartlab.models.inform import INFORM_CONFIG
    from goodhartlab.runs.atomic import atomic_write_json

    path = Path(model_dir)
    target = path / INFORM_CONFIG if is_inform_dir(path) else path / "config.json"
    if not target.exists():
        raise input_error("not a saved reward model (no config.json)", path)
    config = json.loads(target.read_text())
    config["score_mean"], config["score_std"] = float(score_mean), float(score_std)
    return atomic_write_json(target, config)
