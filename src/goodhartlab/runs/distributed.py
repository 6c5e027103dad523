"""Data-parallel training over several processes (torchrun, `accelerate launch`, SLURM + torchrun).

A launcher starts one copy of the recipe per process and sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `init()` joins them into one torch.distributed group (gloo on CPU,
NCCL on GPUs). Then each step's *global* batch (per-process batch x world size, cut from the same
seeded order on every rank) is split into one contiguous shard per rank, each rank backpropagates
its shard's loss weighted by its share of the global count (examples or tokens), and gradients
are averaged with all-reduce, so 2 processes x batch B take the same steps as 1 process x 2B.
Only rank 0 writes (run dir, metrics, checkpoints, models): the writers ask `is_main_process()`.

Why our own all-reduce and not a DDP wrapper: the recipes call `model(**batch).loss`,
`save_pretrained` and peft methods on the bare model; averaging gradients after `backward` keeps
that code unchanged and is what DDP computes (without its overlap of communication and backward,
which matters on big GPUs, not here). With one process every function here is a no-op, so the
single-process path runs exactly the code (and numbers) it ran before. Under an FSDP launch the
model is sharded (`runs.sharding`) and FSDP averages the gradients; under DeepSpeed the ZeRO engine
does (`runs.zero`): `backward` only weights the loss.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes files."""
    return rank() == 0


def size() -> int:
    """How many processes share each step's batch: the world size once joined, else 1."""
    return world_size() if active() else 1


def active() -> bool:
    """True in a multi-process run whose process group is up."""
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def init(device: str = "auto") -> None:
    """Join the process group when launched with WORLD_SIZE > 1 (idempotent).

    gloo when the run stays on CPU, NCCL on CUDA; each process takes GPU LOCAL_RANK, so
    `device=auto` means "this process's GPU".
    """
    import torch
    import torch.distributed as dist

    if world_size() <= 1 or dist.is_initialized():
        return
    if str(device).startswith("cuda:"):  # every rank would load onto that one GPU
        from goodhartlab.errors import ConfigError

        raise ConfigError(
            f"field 'device': {device} would put all {world_size()} processes on one GPU; use "
            "device=auto or cuda (each process takes GPU LOCAL_RANK) and pick GPUs with "
            "CUDA_VISIBLE_DEVICES"
        )
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes the toy data); the others run it after, when
    the files it made exist, so they read them instead of writing their own."""
    if active() and not is_main_process():
        barrier()
    yield
    if active() and is_main_process():
        barrier()


def shard(indices: Sequence[int]) -> list[int]:
    """This rank's contiguous slice of a global batch (the last ranks may get one fewer).

    Why balanced and not ceil(n / world)-sized slices: those leave the last ranks with nothing
    (5 rows on 4 ranks: 2, 2, 1, 0), and a rank without rows cannot run its forward pass."""
    indices = list(indices)
    if not active():
        return indices
    base, extra = divmod(len(indices), world_size())
    start = rank() * base + min(rank(), extra)
    return indices[start : start + base + (rank() < extra)]


def reduce_device() -> Any:
    """Where a reduction's tensor must live: this process's GPU under NCCL, which reduces only
    CUDA tensors (a CPU tensor fails with "No backend type associated with device type cpu"),
    else the CPU (gloo)."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce_sum(values: list[float]) -> list[float]:
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=reduce_device())
    dist.all_reduce(tensor)
    return tensor.tolist()


def backward(loss: Any, count: int | float, model: Any) -> None:
    """`loss.backward()`, and with several processes: the gradient of the global mean.

    `loss` is this rank's mean over its `count` examples (or tokens). Weighting it by
    count x world / global count and averaging the gradients over ranks gives the gradient of
    the mean over the whole global batch, even when shards differ in size.
    """
    if not active():
        loss.backward()
        return
    from goodhartlab.runs.sharding import is_sharded
    from goodhartlab.runs.zero import is_engine

    total = _all_reduce_sum([float(count)])[0]
    scaled = loss * (float(count) * world_size() / max(total, 1.0))
    if is_engine(model):  # DeepSpeed reduces (and partitions) the gradients, averaged
        model.backward(scaled)
        return
    scaled.backward()
    if is_sharded(model):  # FSDP reduce-scatters the gradients and averages them itself
        return
    # Every rank runs the same model on the same kind of batch, so the same parameters have
    # gradients everywhere (a frozen or unused one has None on every rank and stays None).
    with_grad = [param for param in model.parameters() if param.grad is not None]
    sum_gradients(with_grad)
    for param in with_grad:
        param.grad.div_(world_size())


def optimizer_step(model: Any, optimizer: Any, max_grad_norm: float) -> None:
    """Clip the gradient norm, step, zero the gradients; a DeepSpeed engine does all three in
    `engine.step()` (its config's gradient_clipping is max_grad_norm)."""
    import torch

    from goodhartlab.runs.zero import is_engine

    if is_engine(model):
        model.step()
        return
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def global_mean(value: float, count: int | float) -> float:
    """The count-weighted mean of a per-rank mean (the number 1 process would have logged)."""
    if not active():
        return value
    total, weight = _all_reduce_sum([value * count, float(count)])
    return total / max(weight, 1.0)


def gather(tensor: Any) -> Any:
    """Every rank's rows of a per-shard tensor, concatenated in rank order (= the global
    batch's order, as shards are contiguous); shards may differ in length."""
    if not active():
        return tensor
    import torch
    import torch.distributed as dist

    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, tensor.detach().cpu())
    return torch.cat(parts).to(tensor.device)


def finish() -> None:
    """Leave the process group at the end of a command (no-op with one process)."""
    if active():
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


# --- PPO's helpers: a rollout sharded over ranks, then gathered so every rank holds it ---------


@contextmanager
def alone() -> Iterator[None]:
    """Run the block as a single process (e.g. rank 0 building the cached toy models, which
    runs the sft / train-rm recipes): inside it `active()` is False and this is rank 0, so
    the nested recipe neither shards nor waits for ranks that are not running it."""
    saved = {key: os.environ.get(key) for key in ("WORLD_SIZE", "RANK")}
    os.environ["WORLD_SIZE"], os.environ["RANK"] = "1", "0"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def gather_objects(items: list[Any]) -> list[Any]:
    """Every rank's list (texts, prompts), concatenated in rank order."""
    if not active():
        return items
    import torch.distributed as dist

    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def gather_padded(tensor: Any, pad: float | int, left: bool = False) -> Any:
    """`gather` for (b, T) shards whose widths differ: each is padded to the widest with `pad`
    (on the left for left-padded prompts), as one process's batch of all rows would be."""
    if not active():
        return tensor
    import torch
    import torch.distributed as dist

    widths = [0] * world_size()
    dist.all_gather_object(widths, int(tensor.shape[1]))
    extra = max(widths) - tensor.shape[1]
    if extra:
        filler = torch.full((tensor.shape[0], extra), pad, dtype=tensor.dtype, device=tensor.device)
        tensor = torch.cat([filler, tensor] if left else [tensor, filler], dim=1)
    return gather(tensor)


def broadcast_object(value: Any) -> Any:
    """Rank 0's value on every rank (e.g. its early-stop decision: only rank 0 evaluates)."""
    if not active():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across(values: dict[str, Any]) -> dict[str, Any]:
    """Sum each (scalar) value over ranks; floats and 0-dim tensors, returned as float64
    tensors. For per-rank partial sums whose total is the global figure."""
    if not active():
        return values
    import torch

    keys = sorted(values)
    total = _all_reduce_sum([float(values[k]) for k in keys])
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in zip(keys, total)}


def sum_gradients(params: Sequence[Any]) -> None:
    """All-reduce (sum) the gradients of `params`.

    Why a sum, not `backward`'s average: PPO's minibatch loss is already normalised by the
    *global* minibatch's valid-token count (each rank acts as one micro-batch of gradient
    accumulation), so the ranks' gradients add up to the global minibatch's gradient exactly.
    Every rank forwards a non-empty shard of the same batch, so the same params have grads.
    """
    if not active():
        return
    import torch.distributed as dist

    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad)
