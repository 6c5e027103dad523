"""`goodhart ppo`: PPO for language models against a proxy RM, an ensemble, gold, or length.

Reads top to bottom: 1 check the regularizer settings (and that vLLM can run, when it samples),
2 load the policy (also the frozen reference), the value model and the reward models, 3 resume
from the latest checkpoint if asked, then start the vLLM rollout engine if asked, 4 iterate
(`ppo_step.ppo_iteration`), evaluating on fixed held-out prompts every `eval.every` iterations
(proxy, gold, divergences to the SFT policy, length, ensemble std: `eval/*` metrics; hacking
detectors: `detect/*`, `ppo_detect`; `early_stop.on` ends the loop at a flag) and checkpointing
every `checkpoint_every`, 5 save the final policy (after an early stop: the last unflagged
evaluation's) and value model, plot proxy and gold against √KL and iterations, and write
`ppo_summary.json`.

Several processes (torchrun / `accelerate launch`, `runs.distributed`): every rank builds the same
models (rank 0 first builds any cached toy model alone), trains on its shard of each iteration
(`ppo_step`; our sampler: vLLM rollouts are refused, `check_config`), and only rank 0 evaluates,
checkpoints and writes; it tells the others whether an early stop ends the loop.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from goodhartlab.analysis.fits import fit_ppo_metrics
from goodhartlab.analysis.plots import GoldCurve, curves, overoptimization
from goodhartlab.config.ppo_schema import PPOConfig
from goodhartlab.config.seed_paths import expand_seeds, shared_seeds
from goodhartlab.core.length import RunningRewardStats
from goodhartlab.core.regularize import KLController
from goodhartlab.data.formats import load_prompts
from goodhartlab.errors import ConfigError
from goodhartlab.models import freeze, load_policy, lora, save_model
from goodhartlab.models.loading import write_pretrained
from goodhartlab.models.precision import autocast
from goodhartlab.models.value import (
    load_value_head_weights,
    load_value_model,
    make_value_head,
    save_value_head,
)
from goodhartlab.recipes.ppo_detect import make_monitor
from goodhartlab.recipes.ppo_eval import eval_prompts, evaluate_policy, write_eval_samples
from goodhartlab.recipes.ppo_reward import load_reward_models
from goodhartlab.recipes.ppo_step import (
    PPOState,
    ppo_iteration,
)
from goodhartlab.recipes.rm_members import resolve_members
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.rollout.vllm_backend import check_available
from goodhartlab.rollout.vllm_policy import push_weights, start_engine
from goodhartlab.runs import RunDir, distributed
from goodhartlab.runs.checkpoint import load_checkpoint_state, save_checkpoint
from goodhartlab.runs.progress import progress_bar
from goodhartlab.runs.seeding import derive_seed


def initial_controller(cfg: PPOConfig) -> KLController:
    """The regularizer's coefficient controller (fixed, or adaptive toward `target`)."""
    reg = cfg.regularizer
    return KLController(reg.coef, reg.target, reg.horizon)


def restore_controller(cfg: PPOConfig, coef: float) -> KLController:
    """The controller of a resumed run: the saved coefficient, the config's schedule."""
    return replace(initial_controller(cfg), coef=coef)


def check_config(cfg: PPOConfig) -> None:
    """Step 1 (also run by `goodhart validate ppo`): combinations the seeds do not define are
    errors, not silent fallbacks; vLLM asked for where it cannot run is one line."""
    expand_seeds(cfg.reward.reward_models, cfg.reward.seeds, "reward.reward_models")
    check_available(cfg.generation.backend, "generation.backend")
    if cfg.generation.backend == "vllm" and distributed.world_size() > 1:
        # each rank would start its own in-process engine next to our process group: not tried
        raise ConfigError(
            f"field 'generation.backend': vllm rollouts run in one process (WORLD_SIZE="
            f"{distributed.world_size()}); with several use generation.backend=transformers"
        )
    reg = cfg.regularizer
    if reg.kind in ("chi2", "sqrt_chi2") and reg.placement != "loss":
        raise ConfigError(
            f"regularizer.kind={reg.kind} is a sequence-level loss term: set regularizer.placement=loss"
        )
    if reg.kind == "none" and reg.coef != 0:
        raise ConfigError("regularizer.coef is set but regularizer.kind=none")
    n, mb = cfg.ppo.prompts_per_iteration, cfg.ppo.minibatch_size
    if mb > n or n % mb:
        # a remainder would be a small last minibatch with its own noisy step (16 by 5: 1 row)
        raise ConfigError(
            f"field 'ppo.minibatch_size': {mb} must divide ppo.prompts_per_iteration ({n}) "
            f"evenly (e.g. {max(d for d in range(1, min(mb, n) + 1) if n % d == 0)})"
        )


def build_state(cfg: PPOConfig, source: str, checkpoint: Path | None):
    """Step 2: policy, frozen reference (the SFT policy), value model and one AdamW for both."""
    import torch

    kw = {"device": cfg.device, "dtype": cfg.policy.dtype}
    kw["trust_remote_code"] = cfg.policy.trust_remote_code
    kw["allow_pickle_weights"] = cfg.policy.allow_pickle_weights
    policy, tok = load_policy(lora.base_source(checkpoint, source), **kw)
    # LoRA (policy.lora.r > 0): adapters on policy and value model; a checkpoint holds adapters
    policy = lora.attach(policy, cfg.policy.lora, "CAUSAL_LM", checkpoint, cfg.seed)
    reference, _ = load_policy(source, **kw)
    freeze(reference)
    policy.eval()  # dropout off: ratios start at exactly 1, as in trlx
    device = next(policy.parameters()).device
    state = PPOState(policy, reference, tok, optimizer=None, controller=initial_controller(cfg))
    if cfg.ppo.value_model == "head":
        state.value_head = make_value_head(policy.config.hidden_size, device=device, seed=cfg.seed)
        if checkpoint:
            load_value_head_weights(state.value_head, checkpoint)
        value_params = list(state.value_head.parameters())
    else:
        value_ckpt = checkpoint / "value" if checkpoint else None
        state.value_model = load_value_model(
            lora.base_source(value_ckpt, source), device=device, seed=cfg.seed,
            allow_pickle_weights=cfg.policy.allow_pickle_weights,
        )  # fmt: skip
        state.value_model = lora.attach(
            state.value_model, cfg.policy.lora, "TOKEN_CLS", value_ckpt, cfg.seed + 1
        )
        state.value_model.eval()
        value_params = list(state.value_model.parameters())
    state.optimizer = torch.optim.AdamW(
        [*policy.parameters(), *value_params], lr=cfg.ppo.lr, weight_decay=0.0
    )
    return state


def save_state(run: RunDir, state: Any, iteration: int, keep: int) -> None:
    """Policy + optimizer + controller state, then the value model; `latest` moves last."""
    from dataclasses import asdict

    path = run.checkpoint_dir(iteration)
    extra = {"kl_coef": state.controller.coef, "reward_stats": asdict(state.reward_stats)}
    write = partial(write_pretrained, state.policy, state.tokenizer)
    save_checkpoint(path, write, state.optimizer, iteration, extra=extra)
    if state.value_head is not None:
        save_value_head(state.value_head, path)
    else:
        save_model(state.value_model, state.tokenizer, path / "value", merge=False)
    run.mark_latest(iteration, keep)


def restore(cfg: PPOConfig, run: RunDir, state: Any, checkpoint: Path) -> int:
    """Step 3: optimizer, KL coefficient and reward statistics of the checkpoint."""

    done, extra = load_checkpoint_state(checkpoint, state.optimizer)
    state.controller = restore_controller(cfg, float(extra["kl_coef"]))
    stats = extra["reward_stats"]
    state.reward_stats = RunningRewardStats(
        stats["window"], tuple(stats["means"]), tuple(stats["stds"])
    )
    run.truncate_metrics_after(done)
    return done


def start_rollout_engine(cfg: PPOConfig, state: Any, source: str) -> None:
    """Step 3b (generation.backend=vllm): the engine starts from the SFT policy's files and is
    given the policy's current weights at once (a resumed or LoRA run's differ from them)."""
    if cfg.generation.backend != "vllm":
        return
    gen = cfg.generation
    state.engine = start_engine(source, cfg.seed, gen.vllm_memory, cfg.policy.trust_remote_code)
    push_weights(state.engine, state.policy)


def kl_history(run: RunDir, step: int, latest: dict[str, float] | None) -> list[float]:
    """Coste's `kl_list` at evaluation `step`: the k2 KL (`kl/k2`) of every training rollout so
    far, from the logged iterations before `step` and `latest` (this iteration's, not logged yet).
    """
    history = [r["kl/k2"] for r in run.read_metrics() if "kl/k2" in r and r["step"] < step]
    return history + ([latest["kl/k2"]] if latest and "kl/k2" in latest else [])


def evaluate(
    cfg: PPOConfig,
    state: Any,
    models: Any,
    prompts: list[str],
    run: RunDir,
    step: int,
    monitor: Any = None,
    latest: dict[str, float] | None = None,
) -> dict[str, float]:
    """Held-out metrics (`eval/*`, and `detect/*` from the hacking detectors' `monitor`); the
    samples go to RUN/eval/eval-{step}.json with each answer's KL to the SFT policy, and row 0
    the rollouts' KL history (`kl_history`; `latest` is this iteration's metrics)."""

    result = evaluate_policy(
        state.policy, state.reference, state.tokenizer, cfg.reward, models, prompts,
        cfg.eval.generation, derive_seed(cfg.seed, "ppo/eval_generation"), cfg.template,
    )  # fmt: skip
    write_eval_samples(run, step, result, kl_history(run, step, latest))
    metrics = {f"eval/{k}": v for k, v in result.metrics.items()}
    if monitor is not None:
        metrics.update(monitor.observe(step, result, state.policy, state.tokenizer))
    return metrics


def plot(run: RunDir, fit: dict[str, Any] | None = None) -> None:
    """Step 5: proxy and gold (eval) against √KL, with the fitted Gao curve and its predicted
    peak d* (`fit`, from `summarize`), and against iterations."""

    rows = [r for r in run.read_metrics() if "eval/reward/gold" in r]
    if len(rows) < 2:
        return
    series = {
        k: [r[f"eval/reward/{k}"] for r in rows]
        for k in ("proxy", "gold")
        if f"eval/reward/{k}" in rows[0]
    }
    curve = GoldCurve(run.path.name, [r["eval/kl/sqrt"] for r in rows], series["gold"],
                      series.get("proxy"), fit if fit and not fit.get("error") else None,
                      color="#1f77b4")  # fmt: skip
    overoptimization(run.file("ppo_gold_vs_sqrt_kl.png"), [curve], "sqrt KL(pi || pi_sft)",
                     "PPO: held-out gold and proxy vs sqrt KL", size=(7.0, 4.6))  # fmt: skip
    curves(run.file("ppo_rewards.png"), [r["step"] for r in rows], series, "iteration",
           "reward (held-out)", "PPO: proxy and gold over training")  # fmt: skip


def summarize(run: RunDir) -> dict[str, Any]:
    """Gold at start, peak and end, final proxy/√KL/length/eos, and `fit`: Gao's RL form
    gold - gold0 = d (alpha - beta log d) over the evaluations, with 95% bootstrap intervals
    for alpha, beta, the predicted peak position d* and height (analysis.fits)."""

    rows = [r for r in run.read_metrics() if "eval/reward/gold" in r]
    golds = [r["eval/reward/gold"] for r in rows]
    peak = max(range(len(rows)), key=lambda i: golds[i])
    last = rows[-1]
    return {
        "initial_gold": golds[0],
        "peak_gold": golds[peak],
        "peak_step": rows[peak]["step"],
        "peak_sqrt_kl": rows[peak].get("eval/kl/sqrt"),
        "final_gold": last["eval/reward/gold"],
        "initial_proxy": rows[0].get("eval/reward/proxy"),
        "final_proxy": last.get("eval/reward/proxy"),
        "final_sqrt_kl": last["eval/kl/sqrt"],
        "final_length": last["eval/length/mean"],
        "final_eos_rate": last["eval/eos_rate"],
        "fit": fit_ppo_metrics(rows),
    }


def resolve_toy_inputs(cfg: PPOConfig) -> str:
    """The policy source, with any cached toy model it or the RMs name trained on first use.

    Several processes: rank 0 does it first and as a single process (training a toy model runs
    the sft / train-rm recipes, which must not shard over ranks that are not running them); the
    other ranks then find the cache filled."""
    with distributed.main_first(), distributed.alone():
        seeds, monitor = cfg.reward.seeds, cfg.detect.ensemble
        named = {
            "reward.reward_models": (cfg.reward.reward_models, seeds),
            "detect.ensemble": (monitor, shared_seeds(monitor, seeds, "detect.ensemble")),
        }
        for field, (members, member_seeds) in named.items():  # as the loaders do
            if members:
                resolve_members(members, member_seeds, field)
        return resolve_source(cfg.policy.source)


def train_loop(cfg: PPOConfig, state: Any, models: Any, monitor: Any, run_dir: RunDir,
               pool: list[str] | None, held_out: list[str], done: int) -> None:  # fmt: skip
    """Step 4: the iterations after `done`, evaluated every eval.every (and at 0 on a fresh
    run), checkpointed, maybe stopped early. Several processes: rank 0 evaluates, logs and
    checkpoints alone, and broadcasts its early-stop decision."""
    total, main = cfg.ppo.iterations, distributed.is_main_process()

    def precision():  # fp32: no-op; bf16-mixed: bf16 compute over fp32 weights
        return autocast(cfg.policy.precision, state.device)

    if done == 0 and main:
        with precision():
            run_dir.log(0, evaluate(cfg, state, models, held_out, run_dir, 0, monitor))
    with progress_bar("ppo", total - done) as advance:
        for it in range(done + 1, total + 1):
            with precision():
                metrics = ppo_iteration(cfg, state, models, it, pool)
                if main and ((cfg.eval.every and it % cfg.eval.every == 0) or it == total):
                    ev = evaluate(cfg, state, models, held_out, run_dir, it, monitor, metrics)
                    metrics.update(ev)
            run_dir.log(it, metrics)
            if distributed.broadcast_object(monitor.stopped_at is not None):  # early_stop.on
                break
            if it % cfg.checkpoint_every == 0 and it < total and main:
                save_state(run_dir, state, it, cfg.keep_checkpoints)
            advance(
                1,
                info=f"train reward {metrics['reward/train']:.2f} gold {metrics['reward/gold']:.2f}",
            )


def run(cfg: PPOConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; returns the summary also written to RUN/ppo_summary.json (several
    processes: by rank 0; the others return {})."""
    import torch

    # step 1. fail fast: the config, the prompt file, the held-out prompts
    check_config(cfg)
    torch.manual_seed(cfg.seed)
    source = resolve_toy_inputs(cfg)
    checkpoint = run_dir.latest_checkpoint() if resume else None
    pool = None if cfg.prompts == "toy" else load_prompts(cfg.prompts)  # bad file: fail fast
    held_out = eval_prompts(cfg.prompts, cfg.eval.n_prompts)
    # step 2. policy, reference, value model, optimizer; the reward models and hacking monitor
    state = build_state(cfg, source, checkpoint)
    models = load_reward_models(cfg.reward, state.device)
    monitor = make_monitor(cfg.detect, cfg.early_stop, cfg.reward, models, run_dir, state.device)
    # step 3. resume from the latest checkpoint
    done = restore(cfg, run_dir, state, checkpoint) if checkpoint else 0
    if done:
        monitor.restore(run_dir.read_metrics())
    if resume and not checkpoint:  # killed before the first checkpoint: its rows are re-logged
        run_dir.truncate_metrics_after(None)
    start_rollout_engine(cfg, state, source)
    # step 4. the PPO iterations, evaluated every eval.every, checkpointed, maybe stopped early
    train_loop(cfg, state, models, monitor, run_dir, pool, held_out, done)
    if not distributed.is_main_process():
        return {}
    monitor.finish(state)  # after an early stop: the last unflagged evaluation's policy
    # step 5. the final policy (and value model), the summary and its plots
    save_model(state.policy, state.tokenizer, run_dir.file("model"))
    if state.value_model is not None:
        save_model(state.value_model, state.tokenizer, run_dir.file("value"))
    else:  # the head alone, as in the checkpoints: RUN/value/value_head.safetensors
        run_dir.file("value").mkdir(exist_ok=True)
        save_value_head(state.value_head, run_dir.file("value"))
    summary = {**summarize(run_dir), **monitor.summary_fields()}
    plot(run_dir, summary["fit"])
    run_dir.write_json("ppo_summary.json", summary)
    return summary
