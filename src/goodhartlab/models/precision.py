"""Mixed precision: bf16 compute over fp32 weights (`model.precision=bf16-mixed`).

Why not `model.dtype=bfloat16` for a model that trains: bf16 resolves about 0.4% of a weight, so
AdamW steps at the seeds' learning rates (1e-5 for RMs, 1e-6 for PPO) mostly round to nothing
on bf16 weights. The seeds train in bf16 *mixed* precision (DeepSpeed keeps fp32 master
weights); autocast does the same here: matmuls run in bf16, weights, gradients and optimizer
state stay fp32, and losses and softmaxes stay fp32 (torch's autocast op lists).
"""

from __future__ import annotations

import contextlib
from typing import Any

PRECISIONS = ("fp32", "bf16-mixed")


def autocast(precision: str, device: Any):
    """A context in which forward passes run at `precision` on `device` ('auto', 'cuda:0', a
    torch.device; fp32: a no-op, so fp32 runs keep their exact numbers)."""
    import torch

    from goodhartlab.models.loading import resolve_device

    if precision == "fp32":
        return contextlib.nullcontext()
    device_type = resolve_device(device).type if isinstance(device, str) else device.type
    # cache_enabled=False: the recipes hold one context around a whole training loop, and
    # autocast's cache keeps the bf16 copy of each weight until the context exits, so every
    # forward after the first would see the weights of the first step (measured: a 6-step SFT
    # stayed at loss 4.47 instead of falling to 4.19 like fp32).
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, cache_enabled=False)
