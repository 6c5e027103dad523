"""DeepSpeed ZeRO (stages 1-3) for `goodhart sft` and `train-rm`, configured by `accelerate launch`.

`accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml -m goodhartlab sft ...`
exports ACCELERATE_USE_DEEPSPEED and ACCELERATE_DEEPSPEED_* and starts the processes; this module
turns those variables into a DeepSpeed config and hands the model and our AdamW to
`deepspeed.initialize`. The engine partitions the optimizer state and gradients (ZeRO-2) and the
parameters too (ZeRO-3), averages gradients over ranks and clips them (`gradient_clipping` =
`optim.max_grad_norm`); the recipes call `engine(**batch)`, `distributed.backward` (->
`engine.backward`) and `distributed.optimizer_step` (-> `engine.step`).

Not wired (one line each, before any work): DeepSpeed checkpoints and `--resume` (ZeRO keeps
the optimizer state as flat partitions, not in our checkpoint layout: FSDP runs checkpoint and
resume), a user `deepspeed_config_file`, and models that are not plain Hugging Face models (LoRA,
InfoRM). deepspeed is an optional dependency (`pip install goodhartlab[deepspeed]`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from goodhartlab.errors import ConfigError

TRUE = ("1", "true", "yes")
OFFLOAD_DEVICES = ("none", "cpu", "nvme")


def requested(env: Any = None) -> bool:
    env = os.environ if env is None else env
    return env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in TRUE


def zero_config(micro_batch: int, max_grad_norm: float, env: Any = None) -> dict:
    """The DeepSpeed config for accelerate's exported settings; bad values raise ConfigError."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none").lower() != "none":
        raise ConfigError(
            "deepspeed_config_file is not read by goodhart (it builds the DeepSpeed config from "
            "zero_stage and the offload devices); set those in the accelerate config instead"
        )
    stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    if stage not in ("1", "2", "3"):
        raise ConfigError(f"ACCELERATE_DEEPSPEED_ZERO_STAGE={stage}: expected 1, 2 or 3")
    zero: dict[str, Any] = {"stage": int(stage)}
    for key, var in (("offload_optimizer", "OPTIMIZER"), ("offload_param", "PARAM")):
        device = env.get(f"ACCELERATE_DEEPSPEED_OFFLOAD_{var}_DEVICE", "none").lower()
        if device not in OFFLOAD_DEVICES:
            raise ConfigError(
                f"ACCELERATE_DEEPSPEED_OFFLOAD_{var}_DEVICE={device}: expected one of "
                f"{list(OFFLOAD_DEVICES)}"
            )
        if device != "none":
            zero[key] = {"device": device}
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,  # our torch AdamW, so 1 process gives the same
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 1 << 30,
    }


def initialize(model: Any, optimizer: Any, config: dict, checkpoints: bool) -> tuple[Any, Any]:
    """`deepspeed.initialize(model, optimizer, config)` -> (engine, its optimizer)."""
    from transformers import PreTrainedModel

    if checkpoints:
        raise ConfigError(
            "DeepSpeed runs write no goodhart checkpoints and cannot --resume: set "
            "train.checkpoint_every to at least the number of steps, or use FSDP "
            "(configs/accelerate/fsdp_*.yaml), whose checkpoints resume"
        )
    if not isinstance(model, PreTrainedModel):
        raise ConfigError(
            f"DeepSpeed is wired for plain Hugging Face models, not {type(model).__name__} "
            "(LoRA or InfoRM): use FSDP (configs/accelerate/fsdp_*.yaml)"
        )
    try:
        import deepspeed
    except ImportError as err:
        raise ConfigError(
            f"an accelerate DeepSpeed config needs deepspeed ({err}); pip install "
            "'goodhartlab[deepspeed]' (DS_BUILD_OPS=0 needs no compiler), or use FSDP"
        ) from None
    total = sum(p.numel() for p in model.parameters())
    engine, ds_optimizer, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=config
    )
    _report(config["zero_optimization"]["stage"], total, ds_optimizer)
    return engine, ds_optimizer


def _report(stage: int, total: int, ds_optimizer: Any) -> None:
    """Rank 0 says how much of the AdamW state it holds: the evidence that ZeRO partitions."""
    from goodhartlab.runs import distributed

    flat = getattr(ds_optimizer, "single_partition_of_fp32_groups", None)  # ZeRO-1/2
    if flat is None:
        flat = getattr(ds_optimizer, "fp32_partitioned_groups_flat", [])  # ZeRO-3
    if distributed.is_main_process():
        print(
            f"deepspeed (ZeRO-{stage}, {distributed.world_size()} processes): rank 0 holds "
            f"AdamW state for {sum(t.numel() for t in flat):,} of {total:,} parameters",
            file=sys.stderr,
        )


def is_engine(model: Any) -> bool:
    """True for a DeepSpeed engine (without importing deepspeed when nothing did)."""
    deepspeed = sys.modules.get("deepspeed")
    return deepspeed is not None and isinstance(model, deepspeed.DeepSpeedEngine)


def gather_parameters(engine: Any, keep: bool) -> dict[str, Any]:
    """Collective: every parameter whole, one at a time (ZeRO-3 all-gathers its partitions;
    ZeRO-1/2 keep whole parameters already), as CPU tensors where `keep`, else {}."""
    import deepspeed

    full = {}
    for name, param in engine.module.named_parameters():
        with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
            if keep:
                full[name] = param.detach().cpu().clone()
    return full
