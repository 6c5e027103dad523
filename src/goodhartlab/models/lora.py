"""Low-rank adapters (LoRA) through `peft`, for policies, value models and reward models.

Why peft and not our own LoRA layers: users of the seeds already train with it (the length paper
trains its RMs with LoRA r=8 and merges them), so its adapter files and defaults are what they
know. What this module adds is the house rules around it:
- a final model is saved *merged* (`merged_copy`), so it loads with plain transformers
  (`AutoModelForCausalLM` / `AutoModelForSequenceClassification`) and no peft;
- a checkpoint keeps the adapter only (`adapter_config.json` + `adapter_model.safetensors`): a
  resumed run rebuilds the base from its source and re-attaches the adapter (`attach`), so it
  continues exactly where it stopped (a merged checkpoint would add the adapter twice).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from goodhartlab.errors import ConfigError

Task = Literal["CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS"]
ADAPTER_CONFIG = "adapter_config.json"


def enabled(settings: Any) -> bool:
    """True when a `LoraSettings` asks for adapters (r > 0)."""
    return settings is not None and settings.r > 0


def is_adapter_dir(path: str | Path | None) -> bool:
    """A directory saved from a LoRA model in training (adapter only, no merged weights)."""
    return path is not None and (Path(path) / ADAPTER_CONFIG).is_file()


def is_lora_model(model: Any) -> bool:
    """True for a peft-wrapped model (without importing peft when nobody used it)."""
    import sys

    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def base_source(checkpoint: str | Path | None, source: str) -> str:
    """What to load weights from: the checkpoint when it holds full weights, else `source`.

    A LoRA checkpoint holds the adapter only, so its base is the run's original source.
    """
    if checkpoint is None or is_adapter_dir(checkpoint):
        return source
    return str(checkpoint)


def _peft():
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - peft is in the dev/peft extras
        raise ConfigError(
            "lora.r > 0 needs peft: pip install 'goodhartlab[peft]' (or peft>=0.12)"
        ) from exc
    return peft


def attach(
    model: Any, settings: Any, task: Task, checkpoint: str | Path | None = None, seed: int = 0
) -> Any:
    """Wrap `model` in fresh LoRA adapters (seeded by `seed`), or the checkpoint's adapters.

    With `settings.r == 0` the model comes back unchanged, so full fine-tuning keeps its exact
    numbers. The classification head of an RM / value model trains in full (peft's
    `modules_to_save` for SEQ_CLS / TOKEN_CLS), as it starts from random.
    """
    import torch

    if not enabled(settings):
        return model
    peft = _peft()
    if is_adapter_dir(checkpoint):
        return peft.PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    targets = settings.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        task_type=getattr(peft.TaskType, task),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return peft.get_peft_model(model, config)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"field 'lora.target_modules': {first}") from exc


def merged_copy(model: Any) -> Any:
    """The plain transformers model with the adapters folded into the weights.

    A copy, so a model still in use (sampled after saving, or training on) keeps its adapters.
    """
    if not is_lora_model(model):
        return model
    return copy.deepcopy(model).merge_and_unload()


def check_not_inform(settings: Any, inform_enabled: bool) -> None:
    """LoRA on an InfoRM is not wired (its backbone is wrapped in our own module)."""
    if enabled(settings) and inform_enabled:
        raise ConfigError("model.lora.r > 0 is not supported with inform.enabled=true")
