"""`goodhart train-rm`: Bradley–Terry (or InfoRM) reward models, one per seed, plus evaluation.

Reads top to bottom: 1 preference pairs (toy: two samples of the SFT policy per prompt, labelled
by gold with Bradley–Terry sampling and label flips; or the user's file), 2 the length paper's
data interventions (cartography truncation, random-pair augmentation, length balancing, in the
seed's order), 3 train one member per seed (checkpoints, resume), 4 evaluate each member and write
the ensemble manifest. Members load with `AutoModelForSequenceClassification` (BT) or
`models.load_reward_model` (InfoRM).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import numpy as np
import torch

from goodhartlab.config import dump_config
from goodhartlab.config.schemas import TrainRMConfig
from goodhartlab.core.bottleneck import gaussian_kl, inform_loss
from goodhartlab.core.preference import bradley_terry_loss
from goodhartlab.data import cartography, length_debias
from goodhartlab.data.cartography import CartographyLog, save_stats
from goodhartlab.data.formats import Preference
from goodhartlab.data.records import write_jsonl_atomic
from goodhartlab.models import load_policy, load_tokenizer, lora
from goodhartlab.models.inform import InfoRMConfig
from goodhartlab.models.loading import write_pretrained
from goodhartlab.models.precision import autocast
from goodhartlab.models.reward import (
    load_reward_model,
    pad_rows,
    reward_forward,
    reward_token_rows,
    save_reward_model,
    write_ensemble_manifest,
)
from goodhartlab.recipes.evaluate_rm import (
    PairSet,
    ensemble_disagreement,
    evaluate_member,
    print_report,
    read_pair_file,
    sample_policy_pairs,
)
from goodhartlab.recipes.sft import batch_order, lr_at
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.runs import RunDir, distributed, sharding
from goodhartlab.runs.checkpoint import load_checkpoint_state, save_checkpoint
from goodhartlab.runs.progress import progress_bar
from goodhartlab.runs.seeding import LENGTH_INTERVENTIONS, derive_seed

CARTO_FILE = "cartography.jsonl"


def sample_toy_pairs(cfg: TrainRMConfig, run: RunDir) -> dict[str, PairSet]:
    """Step 1 (toy): sample two responses per prompt from the policy and label them by gold."""

    data = cfg.data
    policy, tok = load_policy(resolve_source(data.policy, data.toy.seed), device=cfg.device)
    rng = np.random.default_rng(derive_seed(data.toy.seed, "train_rm/toy_labels"))
    out = {}
    for split, n, flip in (
        ("train", data.n_train_pairs, data.label_flip_prob),
        ("eval", data.n_eval_pairs, 0.0),
    ):
        out[split], rows = sample_policy_pairs(
            policy, tok, n, rng, gen=data.generation,
            seed=derive_seed(data.toy.seed, "train_rm/toy_generation", split == "eval"),
            template=data.template, label_temperature=data.label_temperature, flip_prob=flip,
        )  # fmt: skip
        write_jsonl_atomic(run.file(f"prefs_{split}.jsonl"), rows)
    return out


def load_pairs(cfg: TrainRMConfig, run: RunDir) -> dict[str, PairSet]:
    """Step 1: toy pairs (made once, reused on resume) or the user's preference files."""
    data = cfg.data
    made = all(run.file(f"prefs_{s}.jsonl").exists() for s in ("train", "eval"))
    if "toy" in (data.train, data.eval) and not made:
        return sample_toy_pairs(cfg, run)
    sets = {}
    for split in ("train", "eval"):
        value = getattr(data, split)
        path = run.file(f"prefs_{split}.jsonl") if value == "toy" else value
        sets[split] = read_pair_file(path, data)
    return sets


def apply_interventions(cfg: TrainRMConfig, pairs: PairSet, tok: Any) -> tuple[PairSet, dict]:
    """Step 2: cartography truncation -> random-pair augmentation -> length balancing."""

    def n_tokens(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    rng = np.random.default_rng(LENGTH_INTERVENTIONS)
    prefs, info = pairs.pairs, {"n_pairs_in": len(pairs.pairs)}
    info["length_before"] = vars(length_debias.length_stats(prefs, n_tokens))
    keep = np.arange(len(prefs))
    if cfg.data.carto_file:
        stats = cartography.load_stats(cfg.data.carto_file)
        keep = np.asarray(
            cartography.confidence_keep_indices(
                stats, len(prefs), cfg.data.carto_low, cfg.data.carto_high
            )
        )
        prefs = [prefs[i] for i in keep]
    if cfg.data.rand_ratio > 0:
        prefs = length_debias.rand_ratio_augment(prefs, cfg.data.rand_ratio, rng)
    if cfg.data.balance_len:
        width, equal = cfg.data.balance_bin_width, cfg.data.balance_equal
        prefs = length_debias.balance_len(prefs, n_tokens, rng, width, equal=equal)
    info["n_pairs_out"] = len(prefs)
    info["length_after"] = vars(length_debias.length_stats(prefs, n_tokens))
    return PairSet(prefs), info


def encode_pairs(tok: Any, pairs: list[Preference], cfg: TrainRMConfig) -> list[list[int]]:
    """Token rows of every pair, tokenized once: chosen of pair i at 2i, rejected at 2i + 1."""

    prompts = [p.prompt for p in pairs for _ in range(2)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    return reward_token_rows(tok, prompts, responses, cfg.data.template, cfg.data.max_length)


def step_loss(cfg: TrainRMConfig, model: Any, batch: list, pad_id: int, device: Any):
    """Mean BT (+ β·KL for InfoRM) loss of a batch of (pair, chosen row, rejected row).

    Chosen rows then rejected rows go through one right-padded forward pass.
    Returns (loss, chosen-minus-rejected margins, mean KL or None).
    """
    rows = [b[1] for b in batch] + [b[2] for b in batch]
    out = reward_forward(model, *pad_rows(rows, pad_id, device))
    chosen, rejected = out.scores.chunk(2)
    margin = None
    if cfg.loss.use_margin:
        margin = torch.tensor([b[0].margin or 0.0 for b in batch], device=device)
    per_pair = bradley_terry_loss(
        chosen, rejected, margin=margin, l2_coef=cfg.loss.l2_coef, center_coef=cfg.loss.center_coef
    )
    if out.mu is None:
        return per_pair.mean(), (chosen - rejected).detach(), None
    kl_terms = gaussian_kl(out.mu, out.logvar, mode=cfg.inform.kl_mode)
    loss = inform_loss(per_pair, kl_terms, cfg.inform.beta)
    return loss, (chosen - rejected).detach(), kl_terms.mean()


def open_member(cfg: TrainRMConfig, seed: int, run: RunDir, resume: bool):
    """RUN/rm_seed{seed}/ as a run dir of its own, its latest checkpoint (when resuming), and the
    model to train: the checkpoint's weights, or a fresh RM head (InfoRM heads when enabled) on
    the backbone. Returns (member, checkpoint or None, model, tokenizer, bottleneck noise)."""
    path = run.file(f"rm_seed{seed}")
    resume = resume and (path / "config.yaml").exists()  # killed before this member began
    member = RunDir.prepare(path, dump_config(cfg), resume=resume)
    ckpt = member.latest_checkpoint() if resume else None
    ic = cfg.inform
    inform = InfoRMConfig(ic.latent_dim, ic.decoder) if ic.enabled and ckpt is None else None
    lora.check_not_inform(cfg.model.lora, ic.enabled)
    # A LoRA checkpoint holds the adapter only: the base comes from the source again.
    source = lora.base_source(ckpt, resolve_source(cfg.model.source, cfg.data.toy.seed))
    model, tok = load_reward_model(source, device=cfg.device, dtype=cfg.model.dtype, seed=seed,
                                   inform=inform, trust_remote_code=cfg.model.trust_remote_code,
                                   allow_pickle_weights=cfg.model.allow_pickle_weights)  # fmt: skip
    model = lora.attach(model, cfg.model.lora, "SEQ_CLS", ckpt, seed)  # r=0: unchanged
    # the global generator too (dropout of a real backbone): torch seeds it at random per process
    torch.manual_seed(seed)
    noise = None
    if ic.enabled:  # the bottleneck's reparameterization noise, seeded per member
        device = next(model.parameters()).device
        noise = model.noise_generator = torch.Generator(device=device).manual_seed(seed)
    return member, ckpt, model, tok, noise


def optimizer_step(cfg: TrainRMConfig, model: Any, opt: Any, step: int, total: int, batch, pad_id):
    """One AdamW step at the schedule's lr for `step`; returns (loss, margins, ib kl or None).
    With several processes `batch` is this rank's shard and the gradient is the global batch's."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, total, cfg.optim)
    loss, margins, kl = step_loss(cfg, model, batch, pad_id, next(model.parameters()).device)
    distributed.backward(loss, len(batch), model)  # 1 process: loss.backward()
    distributed.optimizer_step(model, opt, cfg.optim.max_grad_norm)  # clip, step, zero
    return loss, margins, kl


def reseed_rank_noise(noise: torch.Generator | None, seed: int, step: int) -> None:
    """Several processes: a rank after 0 draws this step's InfoRM bottleneck noise from its own
    (member, step, rank) stream.

    Why: every rank's generator starts from the member's seed, so without this rank r's row j
    got exactly rank 0's row j's noise. Reseeding per step keeps a resume exact without saving
    each rank's generator (the checkpoint holds rank 0's, which runs on as in one process)."""
    if noise is not None and distributed.active() and distributed.rank() > 0:
        noise.manual_seed(derive_seed(seed, "train_rm/rank_noise", step, distributed.rank()))


def train_member(cfg: TrainRMConfig, seed: int, train: PairSet, run: RunDir, resume: bool):
    """Step 3: train one member in RUN/rm_seed{seed}/ (its own metrics and checkpoints)."""
    member, ckpt, model, tok, noise = open_member(cfg, seed, run, resume)
    global_batch = cfg.train.batch_size * distributed.size()  # each process: its shard of it
    steps = batch_order(len(train.pairs), global_batch, cfg.train.epochs, seed, distributed.size())
    per_epoch = len(steps) // cfg.train.epochs  # every epoch has as many steps
    adamw = partial(torch.optim.AdamW, lr=cfg.optim.lr, betas=(0.9, 0.95),
                    weight_decay=cfg.optim.weight_decay)  # fmt: skip
    # FSDP: the model sharded, AdamW over its shards; DeepSpeed: a ZeRO engine; else as built
    checkpoints = resume or cfg.train.checkpoint_every < len(steps)
    model, opt = sharding.prepare(model, adamw, cfg.train.batch_size, cfg.optim.max_grad_norm,
                                  checkpoints)  # fmt: skip
    start, carto = 0, CartographyLog()
    if ckpt:
        start = load_checkpoint_state(ckpt, opt, noise)[0]
    if resume:  # rows past the checkpoint (all of them when there is none) are logged again
        member.truncate_metrics_after(start if ckpt else None)
    if ckpt and (ckpt / CARTO_FILE).exists():
        carto = CartographyLog.load(ckpt / CARTO_FILE)
    rows = encode_pairs(tok, train.pairs, cfg)
    model.train()
    with progress_bar(f"rm seed {seed}", len(steps) - start) as advance:
        for step in range(start, len(steps)):
            shard = distributed.shard(steps[step])
            batch = [(train.pairs[i], rows[2 * i], rows[2 * i + 1]) for i in shard]
            reseed_rank_noise(noise, seed, step)
            loss, margins, kl = optimizer_step(
                cfg, model, opt, step, len(steps), batch, tok.pad_token_id
            )
            margins = distributed.gather(margins)  # the global batch's, in its order
            if cfg.train.log_cartography:  # margins as rew_chosen − 0: the log keeps differences
                carto.record(step // per_epoch, steps[step], margins.cpu(), np.zeros(len(margins)))
            metrics = {
                "loss/total": distributed.global_mean(loss.item(), len(batch)),
                "rm/train_accuracy": (margins > 0).float().mean(),
            }
            if kl is not None:
                metrics["loss/ib_kl"] = distributed.global_mean(kl.item(), len(batch))
            member.log(step + 1, {k: float(v) for k, v in metrics.items()})
            if (step + 1) % cfg.train.checkpoint_every == 0 and step + 1 < len(steps):
                whole, state = sharding.checkpoint_view(model, opt)  # FSDP: gathered on rank 0
                write = partial(write_pretrained, whole, tok)
                save_checkpoint(member.checkpoint_dir(step + 1), write, state, step + 1, noise)
                if distributed.is_main_process():
                    carto.save(member.checkpoint_dir(step + 1) / CARTO_FILE)
                member.mark_latest(step + 1)
            advance(1, info=f"loss {loss.item():.3f}")
    model.eval()
    if cfg.train.log_cartography and distributed.is_main_process():
        carto.save(member.file(CARTO_FILE))
        # Confidence = mean over epochs of σ(margin) (Swayamdipta et al.); usable as carto_file.
        save_stats(member.file("cartography_stats.jsonl"), carto.stats())
    return sharding.gather(model), tok, member  # FSDP: rank 0's unsharded copy, else None


def run(cfg: TrainRMConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; writes RUN/rm_summary.json and RUN/ensemble.json."""

    # step 1. the preference pairs (toy: policy samples labelled by gold; or the user's file)
    # several processes: rank 0 samples toy pairs (building cached toy models as a single
    # process: their sft recipe must not wait for ranks that are not running it), the rest read
    with distributed.main_first(), distributed.alone():
        sets = load_pairs(cfg, run_dir)
        source = resolve_source(cfg.model.source, cfg.data.toy.seed)
    tok = load_tokenizer(source)
    # step 2. the length paper's data interventions, in the seed's order
    train, info = apply_interventions(cfg, sets["train"], tok)
    info["files"] = {s: sets[s].read for s in ("train", "eval") if sets[s].read}  # format, skips
    summary: dict[str, Any] = {"data": info, "members": {}, "train_seconds": {}}
    members = []
    for seed in cfg.seeds:
        member_dir = run_dir.file(f"rm_seed{seed}")
        model_dir, done = member_dir / "model", member_dir / "rm_eval.json"
        if resume and done.exists() and (model_dir / "config.json").exists():
            model, mtok = load_reward_model(str(model_dir), device=cfg.device)
            model.eval()
            result = json.loads(done.read_text())
        else:
            tic, cpu = time.perf_counter(), time.process_time()
            with autocast(cfg.model.precision, cfg.device):  # fp32: no-op
                model, mtok, member = train_member(cfg, seed, train, run_dir, resume)
            if not distributed.is_main_process():
                continue  # rank 0 evaluates and saves the member
            summary["train_seconds"][seed] = {
                "wall": round(time.perf_counter() - tic, 2),
                "cpu": round(time.process_time() - cpu, 2),  # all threads of this process
            }
            # step 4. evaluate the member on the held-out pairs, save it with its score stats
            plot = member.file("proxy_vs_gold.png")
            with autocast(cfg.model.precision, cfg.device):
                result = evaluate_member(model, mtok, sets["eval"], cfg.data.template, plot)
            save_reward_model(model, mtok, model_dir, result["score_mean"], result["score_std"])
            member.write_json("rm_eval.json", result)
        summary["members"][seed] = result
        members.append((model, mtok))
    if not distributed.is_main_process():
        return summary
    # step 5. the ensemble manifest, the members' disagreement, the summary
    write_ensemble_manifest(
        run_dir.file("ensemble.json"),
        [{"seed": s, "path": f"rm_seed{s}/model"} for s in cfg.seeds],
    )
    if len(members) > 1 and sets["eval"].gold_chosen is not None:
        summary["ensemble"] = ensemble_disagreement(members, sets["eval"], cfg.data.template)
    run_dir.write_json("rm_summary.json", summary)
    print_report(summary)
    return summary
