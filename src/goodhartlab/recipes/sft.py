"""`goodhart sft`: supervised fine-tuning of a causal LM on prompt/completion pairs.

Reads top to bottom: 1 data, 2 model, 3 encode, 4 train (loss on completion tokens only, eval
loss, checkpoints, resume), 5 save, 6 sample held-out prompts and score them with gold.
The saved model loads with plain `AutoModelForCausalLM.from_pretrained(RUN/model)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from goodhartlab.config.schemas import SFTConfig
from goodhartlab.data.encoding import IGNORE_INDEX, collate_sft, encode_demonstrations
from goodhartlab.data.records import write_jsonl_atomic
from goodhartlab.data.sft_importers import import_demonstrations
from goodhartlab.errors import ConfigError
from goodhartlab.models import load_policy, lora, save_model
from goodhartlab.models.loading import write_pretrained
from goodhartlab.models.precision import autocast
from goodhartlab.rollout.sampling import sample_texts
from goodhartlab.runs import RunDir, distributed, sharding
from goodhartlab.runs.checkpoint import load_checkpoint_state, save_checkpoint
from goodhartlab.runs.progress import progress_bar
from goodhartlab.runs.seeding import derive_seed
from goodhartlab.toyworld import gold_reward, make


@dataclass(frozen=True)
class SFTData:
    train_prompts: list[str]
    train_completions: list[str]
    eval_prompts: list[str]
    eval_completions: list[str]
    source: str
    is_toy: bool
    read: dict[str, Any] = field(default_factory=dict)  # per split: format, rows skipped


def load_sft_data(cfg: SFTConfig, run: RunDir) -> SFTData:
    """Step 1: the toy world's demonstrations, or the user's files."""

    paths = {}
    is_toy = "toy" in (cfg.data.train, cfg.data.eval)
    if is_toy:
        toy_dir = run.file("toyworld")
        with distributed.main_first(), distributed.alone():  # rank 0 writes it, the rest read
            if not (toy_dir / "world.json").exists():
                make(toy_dir, cfg.data.toy)
    for split in ("train", "eval"):
        value = getattr(cfg.data, split)
        paths[split] = run.file("toyworld") / f"demos_{split}.jsonl" if value == "toy" else value
    demos, read = {}, {}
    for split, path in paths.items():
        fmt = "trl" if getattr(cfg.data, split) == "toy" else cfg.data.format
        demos[split], fmt, skipped = import_demonstrations(
            path, fmt, cfg.data.prompt_key, cfg.data.completion_key,
            skip_invalid=cfg.data.skip_invalid,
        )  # fmt: skip
        read[split] = {"format": fmt, "n_rows": len(demos[split]), "skipped_rows": skipped}
    return SFTData(
        [d.prompt for d in demos["train"]],
        [d.completion for d in demos["train"]],
        [d.prompt for d in demos["eval"]],
        [d.completion for d in demos["eval"]],
        str(paths["train"]),
        cfg.data.train == "toy" and cfg.data.eval == "toy",
        read,
    )


def lr_at(step: int, total: int, cfg_optim: Any) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio·lr (a pure function: resume-safe)."""
    base = cfg_optim.lr
    if step < cfg_optim.warmup_steps:
        return base * (step + 1) / cfg_optim.warmup_steps
    progress = (step - cfg_optim.warmup_steps) / max(1, total - cfg_optim.warmup_steps)
    floor = cfg_optim.min_lr_ratio
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def batch_order(
    n: int, batch_size: int, epochs: int, seed: int, processes: int = 1
) -> list[list[int]]:
    """Every step's example indices: a seeded permutation per epoch (so resume can skip ahead).

    Each batch is split over `processes` (`distributed.shard`), so every batch needs at least
    one example per process: an epoch's last batch with fewer joins the batch before it (one
    process: never). Fewer examples than processes is a ConfigError."""
    import torch

    if n < processes:
        raise ConfigError(
            f"{n} training examples cannot be split over {processes} processes (each needs at "
            "least one); use more data or fewer processes"
        )
    steps = []
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(derive_seed(seed, "sft/epoch_order", epoch))
        perm = torch.randperm(n, generator=gen).tolist()
        batches = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
        if len(batches) > 1 and len(batches[-1]) < processes:
            tail = batches.pop()
            batches[-1] = batches[-1] + tail
        steps += batches
    return steps


def mean_loss(model: Any, examples: list, batch_size: int, pad_id: int, device: Any) -> float:
    """Token-weighted mean completion loss over `examples` (no grad)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = collate_sft(examples[i : i + batch_size], pad_id, device)
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(model(**batch).loss) * n
            count += n
    return total / max(count, 1)


def encode_splits(cfg: SFTConfig, tok: Any, data: SFTData) -> dict[str, list]:
    """Step 3: token ids and loss labels of both splits' demonstrations."""
    return {
        split: encode_demonstrations(
            tok, prompts, completions, cfg.data.max_length, cfg.data.template, data.source
        )
        for split, prompts, completions in (
            ("train", data.train_prompts, data.train_completions),
            ("eval", data.eval_prompts, data.eval_completions),
        )
    }


def train(
    cfg: SFTConfig, run: RunDir, model: Any, tok: Any, data: SFTData, resume: bool
) -> tuple[Any, dict]:
    """Step 4: the training loop; returns the trained model and the final train/eval losses."""
    import torch

    device = next(model.parameters()).device
    enc = encode_splits(cfg, tok, data)
    # Several processes: the global batch is batch_size per process, each rank takes its shard.
    global_batch = cfg.train.batch_size * distributed.size()
    steps = batch_order(
        len(enc["train"]), global_batch, cfg.train.epochs, cfg.seed, distributed.size()
    )
    adamw = partial(torch.optim.AdamW, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    checkpoints = resume or cfg.train.checkpoint_every < len(steps)
    # FSDP: the model sharded, AdamW over its shards; DeepSpeed: a ZeRO engine; else as built
    model, opt = sharding.prepare(
        model, adamw, cfg.train.batch_size, cfg.optim.max_grad_norm, checkpoints
    )
    start = 0
    ckpt = run.latest_checkpoint() if resume else None
    if ckpt is not None:
        start, _ = load_checkpoint_state(ckpt, opt)
    if resume:  # rows past the checkpoint (all of them when there is none) are logged again
        run.truncate_metrics_after(start if ckpt is not None else None)
    model.train()
    loss_value = float("nan")
    with progress_bar("sft", len(steps) - start) as advance:
        for step in range(start, len(steps)):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, len(steps), cfg.optim)
            shard = distributed.shard(steps[step])
            batch = collate_sft([enc["train"][i] for i in shard], tok.pad_token_id, device)
            loss = model(**batch).loss
            n_tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            distributed.backward(loss, n_tokens, model)  # 1 process: loss.backward()
            distributed.optimizer_step(model, opt, cfg.optim.max_grad_norm)  # clip, step, zero
            loss_value = distributed.global_mean(float(loss.detach()), n_tokens)
            done = step + 1
            metrics = {"loss/train": loss_value, "lr": opt.param_groups[0]["lr"]}
            if done % cfg.train.eval_every == 0 or done == len(steps):
                model.eval()
                metrics["loss/eval"] = mean_loss(model, enc["eval"], 256, tok.pad_token_id, device)
                model.train()
            run.log(done, metrics)
            if done % cfg.train.checkpoint_every == 0 and done < len(steps):
                whole, state = sharding.checkpoint_view(model, opt)  # FSDP: gathered on rank 0
                save_checkpoint(
                    run.checkpoint_dir(done), partial(write_pretrained, whole, tok), state, done
                )
                run.mark_latest(done, cfg.train.keep_checkpoints)
            advance(1, info=f"loss {loss_value:.3f}")
    model.eval()
    final_eval = mean_loss(model, enc["eval"], 256, tok.pad_token_id, device)
    losses = {"loss/train": loss_value, "loss/eval": final_eval, "steps": len(steps)}
    return sharding.gather(model), losses  # sharded: rank 0's whole copy, None elsewhere


def sample_and_score(cfg: SFTConfig, model: Any, tok: Any, data: SFTData) -> dict:
    """Step 6: sample held-out prompts; with toy data, score gold and compare to the teacher."""

    n = min(cfg.sample.n_prompts, len(data.eval_prompts))
    gen = cfg.sample.generation
    prompts = data.eval_prompts[:n]
    samples = sample_texts(
        model,
        tok,
        prompts,
        max_new_tokens=gen.max_new_tokens,
        temperature=gen.temperature,
        top_k=gen.top_k,
        top_p=gen.top_p,
        batch_size=gen.batch_size,
        seed=cfg.seed,
        template=cfg.data.template,
    )
    rows = [{"prompt": s.prompt, "response": s.response, "ended": s.ended} for s in samples]
    summary: dict[str, Any] = {
        "n_samples": n,
        "eos_rate": sum(s.ended for s in samples) / max(n, 1),
        "mean_tokens": sum(s.n_tokens for s in samples) / max(n, 1),
    }
    if data.is_toy:
        gold = gold_reward(prompts, [s.response for s in samples], [s.ended for s in samples])
        teacher = gold_reward(prompts, data.eval_completions[:n], [True] * n)
        for row, g in zip(rows, gold):
            row["gold"] = g
        summary["gold_mean"] = sum(gold) / n
        summary["teacher_gold_mean"] = sum(teacher) / n
        summary["gold_ratio_to_teacher"] = summary["gold_mean"] / summary["teacher_gold_mean"]
    summary["samples"] = rows
    return summary


def run(cfg: SFTConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; returns the summary also written to RUN/sft_summary.json."""
    import torch

    torch.manual_seed(cfg.seed)
    # step 1. the demonstrations (toy: the teacher's, generated and cached)
    data = load_sft_data(cfg, run_dir)
    ckpt = run_dir.latest_checkpoint() if resume else None
    source = lora.base_source(ckpt, cfg.model.source)  # a LoRA checkpoint: its adapter only
    # step 2. the policy: the latest checkpoint when resuming, else the configured source
    # (with LoRA: the source's weights and the checkpoint's adapter)
    model, tok = load_policy(
        source,
        device=cfg.device,
        dtype=cfg.model.dtype,
        trust_remote_code=cfg.model.trust_remote_code,
        seed=cfg.seed,
        allow_pickle_weights=cfg.model.allow_pickle_weights,
    )
    model = lora.attach(model, cfg.model.lora, "CAUSAL_LM", ckpt, cfg.seed)  # r=0: unchanged
    device = next(model.parameters()).device
    # step 3. train (checkpoints, resume), then save the model (LoRA: merged); with several
    # processes only rank 0 goes on after training (FSDP: with the gathered, unsharded model)
    with autocast(cfg.model.precision, device):  # fp32: no-op; bf16-mixed: bf16 compute
        model, losses = train(cfg, run_dir, model, tok, data, resume)
    if not distributed.is_main_process():
        return losses
    model_dir = save_model(model, tok, run_dir.file("model"))
    summary = {"model_dir": str(model_dir), **losses, "data": data.read}
    if cfg.sample.n_prompts > 0:  # step 4. sample answers and score them by gold
        with autocast(cfg.model.precision, device):
            scored = sample_and_score(cfg, model, tok, data)

        write_jsonl_atomic(run_dir.file("samples.jsonl"), scored.pop("samples"))
        summary.update(scored)
    run_dir.write_json("sft_summary.json", summary)
    return summary


def model_path(run_dir: str | Path) -> Path:
    """Where an SFT run keeps its final model (for the next recipe in a chain)."""
    return Path(run_dir) / "model"
