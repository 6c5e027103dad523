"""Sharded data parallelism (FSDP, ZeRO-3 / ZeRO-2 style) for `goodhart sft` and `train-rm`.

`prepare()` is the one call a training loop makes: it returns the (model, optimizer) to step,
sharded by FSDP here, wrapped by a DeepSpeed ZeRO engine (`runs.zero`), or unchanged.

`accelerate launch --config_file configs/accelerate/fsdp_1node_8gpu.yaml -m goodhartlab sft` exports
ACCELERATE_USE_FSDP and FSDP_* variables and starts the processes; accelerate itself never wraps
our model (we do not call `Accelerator.prepare`), so this module reads those variables and shards
with torch's own FSDP2 (`torch.distributed.fsdp.fully_shard`): each transformer block, then the
root, so every rank keeps 1/N of the parameters, gradients (reduce-scattered, averaged over
ranks) and AdamW state. Why FSDP2 and not accelerate's wrapper: the recipes keep calling
`model(**batch)`, `clip_grad_norm_` and `optimizer.step()` on the model they built, and FSDP2 only
swaps the parameters for DTensor shards in place.

Everything that needs whole tensors is collective and gathers one tensor at a time: `gather()`
gives rank 0 an unsharded copy (to save with plain `save_pretrained`, sample and evaluate), and
`checkpoint_view()` also gathers the optimizer state, so an FSDP checkpoint has the same files as
a single-process one and `load_optimizer_state` shards it back on resume.
Each rank still loads the whole model before sharding it (no meta-device init from rank 0).
"""

from __future__ import annotations

import copy
import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any

from goodhartlab.errors import ConfigError

# The commands whose training loops shard; every other command refuses an FSDP launch.
SHARDED_COMMANDS = ("sft", "train-rm")
TRUE = ("1", "true", "yes")
RESHARD = {"true": True, "full_shard": True, "false": False, "shard_grad_op": False}
WRAP_POLICIES = ("TRANSFORMER_BASED_WRAP", "NO_WRAP")

# model -> (a copy of it with parameters on the meta device, the device its parameters were on),
# taken before sharding: `gather` fills a copy of it with the gathered weights.
_SKELETONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FSDPSettings:
    """What of accelerate's FSDP config we honour (the rest is listed in docs/scale.md)."""

    reshard_after_forward: bool  # True: FULL_SHARD (ZeRO-3); False: SHARD_GRAD_OP (ZeRO-2)
    offload_params: bool  # FSDP_OFFLOAD_PARAMS: shards and optimizer step on CPU
    wrap_classes: tuple[str, ...]  # empty: the model's `_no_split_modules` (its decoder blocks)
    wrap_blocks: bool  # False (NO_WRAP): the whole model is one unit


def fsdp_settings(env: Any = None) -> FSDPSettings | None:
    """The FSDP settings `accelerate launch` exported, or None when FSDP was not asked for.

    Bad values raise ConfigError naming the variable and what is accepted.
    """
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_FSDP", "").lower() not in TRUE:
        return None
    strategy = env.get("FSDP_SHARDING_STRATEGY", "FULL_SHARD").upper()
    if strategy.startswith(("NO_SHARD", "HYBRID", "3", "4", "5")):
        raise ConfigError(
            f"FSDP_SHARDING_STRATEGY={strategy} is not supported by goodhart's FSDP2 sharding "
            "(FULL_SHARD or SHARD_GRAD_OP); for no sharding use configs/accelerate/cpu_2proc.yaml "
            "or ddp_*.yaml"
        )
    reshard = env.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower()
    if reshard not in RESHARD:
        raise ConfigError(
            f"FSDP_RESHARD_AFTER_FORWARD={reshard}: expected true (FULL_SHARD) or false "
            "(SHARD_GRAD_OP)"
        )
    policy = env.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP").upper()
    if policy not in WRAP_POLICIES:
        raise ConfigError(f"FSDP_AUTO_WRAP_POLICY={policy}: expected one of {list(WRAP_POLICIES)}")
    classes = env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "")
    # an FSDP1 config says SHARD_GRAD_OP as its sharding strategy, while accelerate still
    # exports its default FSDP_RESHARD_AFTER_FORWARD=true: the strategy wins, as in accelerate
    grad_op = strategy in ("SHARD_GRAD_OP", "2")
    return FSDPSettings(
        reshard_after_forward=RESHARD[reshard] and not grad_op,
        offload_params=env.get("FSDP_OFFLOAD_PARAMS", "false").lower() in TRUE,
        wrap_classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
        wrap_blocks=policy == "TRANSFORMER_BASED_WRAP",
    )


def check_launch(command: str) -> None:
    """Refuse, in one line, a sharding request this command cannot honour (it would otherwise
    replicate the model in every process and silently ignore the config)."""
    from goodhartlab.runs import zero

    settings = fsdp_settings()  # validates the FSDP_* values for every command
    for name, asked in (("FSDP", settings is not None), ("DeepSpeed", zero.requested())):
        if asked and command not in SHARDED_COMMANDS:
            raise ConfigError(
                f"{name} sharding (accelerate config) is wired into "
                f"{', '.join(SHARDED_COMMANDS)} only, not goodhart {command}; launch it with "
                "configs/accelerate/cpu_2proc.yaml or ddp_*.yaml"
            )


def block_classes(model: Any) -> set[str]:
    """The class names of the model's transformer blocks, as its `_no_split_modules` say."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return names


def shard_model(model: Any, settings: FSDPSettings) -> Any:
    """`fully_shard` each block, then the root (in place; returns the model).

    Parameters become DTensor shards; the blocks' all-gathers run one block at a time.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    names = set(settings.wrap_classes) or block_classes(model)
    blocks = (
        [m for m in model.modules() if type(m).__name__ in names] if settings.wrap_blocks else []
    )
    if settings.wrap_classes and settings.wrap_blocks and not blocks:
        raise ConfigError(
            f"FSDP_TRANSFORMER_CLS_TO_WRAP={','.join(settings.wrap_classes)}: the model has no "
            f"module of that class (its blocks: {sorted(block_classes(model)) or 'none declared'})"
        )
    _SKELETONS[model] = (_meta_copy(model), next(model.parameters()).device)
    offload = CPUOffloadPolicy() if settings.offload_params else OffloadPolicy()
    kwargs = {"reshard_after_forward": settings.reshard_after_forward, "offload_policy": offload}
    for block in blocks:
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
    return model


def prepare(
    model: Any, make_optimizer: Any, micro_batch: int, max_grad_norm: float, checkpoints: bool
) -> tuple[Any, Any]:
    """The (model, optimizer) a training loop steps: the model and `make_optimizer(params)` as
    they were (1 process, DDP-style runs), the model sharded by FSDP and the optimizer over its
    shards, or under a DeepSpeed launch its ZeRO engine and optimizer (`runs.zero`; refused
    when the run would write or resume from checkpoints)."""
    from goodhartlab.runs import distributed, zero

    if zero.requested() and distributed.active():
        config = zero.zero_config(micro_batch, max_grad_norm)
        _SKELETONS[model] = (_meta_copy(model), next(model.parameters()).device)
        return zero.initialize(model, make_optimizer(model.parameters()), config, checkpoints)
    model = shard(model)
    return model, make_optimizer(model.parameters())


def shard(model: Any) -> Any:
    """Shard the model when the launch asked for FSDP; otherwise return it unchanged (1 process
    and DDP-style runs keep exactly the code path and numbers they had)."""
    from goodhartlab.runs import distributed

    settings = fsdp_settings()
    if settings is None or not distributed.active():
        return model
    total = sum(p.numel() for p in model.parameters())
    shard_model(model, settings)
    if distributed.is_main_process():  # the evidence that it shards, once per model
        mode = "FULL_SHARD" if settings.reshard_after_forward else "SHARD_GRAD_OP"
        print(
            f"fsdp ({mode}, {distributed.world_size()} processes): rank 0 holds "
            f"{local_numel(model):,} of {total:,} parameters",
            file=sys.stderr,
        )
    return model


def local_numel(model: Any) -> int:
    """How many parameter elements this rank stores (its shards under FSDP)."""
    from torch.distributed.tensor import DTensor

    return sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in model.parameters())


def is_sharded(model: Any) -> bool:
    """True for a model `shard_model` sharded (FSDP2 changes its class to an FSDPModule)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def _meta_copy(model: Any) -> Any:
    """A deep copy whose parameters live on the meta device (no memory); buffers are copied,
    so non-persistent ones (rotary frequencies) stay right. Tied parameters stay tied."""
    import torch

    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo)


def _full(tensor: Any) -> Any:
    """The whole tensor behind a DTensor shard (collective), or the tensor itself. A shard
    offloaded to CPU (fsdp_offload_params) moves to the mesh's device first: NCCL gathers only
    CUDA tensors."""
    from torch.distributed.tensor import DTensor

    if not isinstance(tensor, DTensor):
        return tensor
    if tensor.device.type != tensor.device_mesh.device_type:
        tensor = tensor.to(tensor.device_mesh.device_type)
    return tensor.full_tensor()


def gather(model: Any) -> Any:
    """Collective under FSDP or DeepSpeed: rank 0 gets an unsharded copy of the model (same
    class, names and ties; parameters gathered one at a time onto CPU, then moved to the model's
    device), the other ranks None. Anything else: the model itself."""
    from goodhartlab.runs import distributed, zero

    main = distributed.is_main_process()
    if zero.is_engine(model):
        full = zero.gather_parameters(model, keep=main)
        return _filled(*_SKELETONS[model.module], full).train(model.training) if main else None
    if not is_sharded(model):
        return model
    full = {}
    for name, param in model.named_parameters():
        tensor = _full(param.detach())
        if main:
            full[name] = tensor.cpu()
    return _filled(*_SKELETONS[model], full).train(model.training) if main else None


def _filled(skeleton: Any, device: Any, full: dict[str, Any]) -> Any:
    """A copy of the meta-device skeleton holding the gathered parameters `full` (by name)."""
    import torch

    plain = copy.deepcopy(skeleton)
    new = {
        id(p): torch.nn.Parameter(full[name].to(device), p.requires_grad)
        for name, p in plain.named_parameters()
    }
    for module in plain.modules():  # by identity, so tied names get the same new parameter
        for key, param in module._parameters.items():
            if param is not None:
                module._parameters[key] = new[id(param)]
    return plain


def full_optimizer_state(optimizer: Any, keep: bool) -> dict:
    """Collective: `optimizer.state_dict()` with every sharded state tensor gathered whole, one
    at a time, and kept on CPU where `keep` (rank 0; the others get empty slots): the same
    layout as a single-process optimizer's."""
    state = optimizer.state_dict()
    slots: dict[int, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            whole = _full(value)
            if keep:
                slots.setdefault(index, {})[key] = whole.cpu()
    return {"state": slots, "param_groups": state["param_groups"]}


def checkpoint_view(model: Any, optimizer: Any) -> tuple[Any, Any]:
    """What a checkpoint writer saves: (model, optimizer) unchanged, or under FSDP (collective)
    rank 0's unsharded copy and the gathered optimizer state dict ((None, None) elsewhere)."""
    from goodhartlab.runs import distributed

    if not is_sharded(model):
        return model, optimizer
    state = full_optimizer_state(optimizer, keep=distributed.is_main_process())
    plain = gather(model)
    return (plain, state) if plain is not None else (None, None)


def load_optimizer_state(optimizer: Any, state: dict) -> None:
    """`optimizer.load_state_dict(state)`, first cutting a whole state tensor into this rank's
    shard where its parameter is a DTensor (no communication: every rank read the file)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, slots in state["state"].items():
        param = params[int(index)]
        if not isinstance(param, DTensor):
            continue
        for key, value in slots.items():
            if value.shape == param.shape:  # "step" is a scalar, kept whole
                slots[key] = distribute_tensor(
                    value.to(param.device), param.device_mesh, param.placements, src_data_rank=None
                )
    optimizer.load_state_dict(state)
