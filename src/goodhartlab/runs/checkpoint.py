"""Training-state checkpoints that resume to the same numbers, with no pickle anywhere.

A checkpoint directory holds the model (written by the caller's `write_model(dir)`, a function of
`models/`, the only package that writes weights: `models.write_pretrained` for an HF model +
tokenizer, or the ORPO policy + discriminators), `optimizer.safetensors` (every state tensor, flattened), and
`trainer_state.json` (step, param-group hyperparameters, RNG states, recipe extras).
Why not `torch.save(optimizer.state_dict())`: loading it back needs unpickling, and a checkpoint
is exactly the kind of file people download from others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goodhartlab.runs.atomic import atomic_directory, json_safe

STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.safetensors"


def _flatten_optimizer(optimizer: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = optimizer if isinstance(optimizer, dict) else optimizer.state_dict()
    tensors = {}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"{idx}.{name}"] = value.detach().contiguous().cpu()
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def _unflatten_optimizer(tensors: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    path: str | Path,
    write_model: Callable[[Path], None],
    optimizer: Any,
    step: int,
    generator: Any = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint atomically: `write_model(dir)`'s files + optimizer + state.

    Rank 0 only in a multi-process run. A LoRA model's writer writes its adapter only.
    `optimizer` may be its state dict instead (a sharded run passes the gathered one:
    `runs.sharding.checkpoint_view`).
    e.g. `save_checkpoint(dir, functools.partial(models.write_pretrained, model, tok), opt, step)`
    """
    import torch
    from safetensors.torch import save_file

    from goodhartlab.runs.distributed import is_main_process

    path = Path(path)
    if not is_main_process():
        return path
    with atomic_directory(path) as tmp:
        write_model(Path(tmp))
        tensors, groups = _flatten_optimizer(optimizer)
        if generator is not None:
            tensors["__rng__.generator"] = generator.get_state()
        tensors["__rng__.torch"] = torch.get_rng_state()
        save_file(tensors, str(Path(tmp) / OPTIM_FILE))
        state = {"step": int(step), "param_groups": groups, "extra": extra or {}}
        (Path(tmp) / STATE_FILE).write_text(json.dumps(json_safe(state), indent=2))
    return path


def load_checkpoint_state(
    path: str | Path, optimizer: Any, generator: Any = None
) -> tuple[int, dict[str, Any]]:
    """Restore optimizer and RNG states from a checkpoint; returns (step, extra).

    The model weights are loaded separately, through `models/` (e.g. `models.load_model(path)`).
    """
    import torch
    from safetensors.torch import load_file

    from goodhartlab.runs.sharding import load_optimizer_state

    path = Path(path)
    state = json.loads((path / STATE_FILE).read_text())
    tensors = load_file(str(path / OPTIM_FILE))
    rng = {k: tensors.pop(k) for k in list(tensors) if k.startswith("__rng__.")}
    device = next(iter(optimizer.param_groups[0]["params"])).device
    tensors = {k: (v if k.endswith(".step") else v.to(device)) for k, v in tensors.items()}
    # under FSDP each rank keeps its shard of every state tensor; otherwise a plain load
    load_optimizer_state(optimizer, _unflatten_optimizer(tensors, state["param_groups"]))
    torch.set_rng_state(rng["__rng__.torch"])
    if generator is not None and "__rng__.generator" in rng:
        generator.set_state(rng["__rng__.generator"])
    return int(state["step"]), state["extra"]
