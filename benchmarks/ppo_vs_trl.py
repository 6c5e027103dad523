"""Benchmark: one PPO iteration of ours against TRL's PPOTrainer, side by side in one process.

Run:  python benchmarks/ppo_vs_trl.py [--shape toy|large|both] [--repeats 5]

Needs TRL with PPO (`pip install -e .[bench]`: trl 1.0.0 ships it as `trl.experimental.ppo`; later
releases dropped it). Without it the benchmark prints why and exits 0.

Same work on both sides: the same random-init GPT-NeoX policy (its copy as the frozen reference),
a separate value model from the policy's backbone, the random-init toy RM, the same pool of toy
prompts (64 per iteration at the toy shape), responses of at most --new-tokens with eos, temperature
1, per-token k1 KL (0.05) in the reward, GAE, then 4 epochs x 2 minibatches of policy + value
updates with AdamW at the same learning rate; one torch thread each. Ours runs twice per TRL
iteration by default (`--value-model separate head`): with the separate value network (the same
work as TRL's) and with trlx's value head on the policy trunk (less work: one trunk instead of two
in every pass, so reported as its own row, not as the same work).
  * toy shape: the toy world's policy (2 layers, d=64), 64 prompts x 24 tokens;
  * large shape: 6 layers, d=256, 128 prompts x 64 tokens (is the win only Python overhead?).
Interleaving: TRL drives its own training loop; a callback at the end of each of its iterations
runs (and times) one iteration of each of ours, so the sides alternate iteration by iteration under
the same machine load. The first iteration of each side is a warm-up. Tokens/s counts response
tokens up to and including eos (TRL generates to the limit and truncates after eos; ours stops at
eos).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from bench_timing import peak_rss_mb

SHAPES = {
    "toy": {"layers": 2, "hidden": 64, "prompts": 64, "new_tokens": 24},
    "large": {"layers": 6, "hidden": 256, "prompts": 128, "new_tokens": 64},
}
KL_COEF = 0.05


def trl_ppo_or_reason():
    """(trl.experimental.ppo module, None) or (None, why it cannot run)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        import trl
        from trl.experimental import ppo
    except Exception as exc:  # any import failure (missing package, broken install) skips
        return None, f"TRL with PPO is not importable ({type(exc).__name__}: {exc})"
    if not hasattr(ppo, "PPOTrainer"):
        return None, f"trl {trl.__version__} has no trl.experimental.ppo.PPOTrainer"
    return ppo, None


def model_dirs(shape: dict, root: Path) -> tuple[str, str]:
    """(policy dir, RM dir) both sides load: the shape's random policy and the toy RM (seed 1),
    saved under ROOT so every side reads the same files."""
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    policy_dir = make_policy_dir(shape, root)
    rm, rtok = load_reward_model("toy:rm", device="cpu", seed=1)
    return policy_dir, str(save_reward_model(rm, rtok, root / "rm", 0.0, 1.0))


def make_policy_dir(shape: dict, root: Path) -> str:
    """A random-init GPT-NeoX policy of the shape, saved with the toy tokenizer (seed 0)."""
    from transformers import GPTNeoXForCausalLM

    from goodhartlab.models import load_policy, save_model
    from goodhartlab.models.toy import toy_config

    _, tok = load_policy("toy:policy", device="cpu", seed=0)
    config = toy_config("tiny", tok)
    config.num_hidden_layers, config.hidden_size = shape["layers"], shape["hidden"]
    config.intermediate_size = 4 * shape["hidden"]
    config.max_position_embeddings = 256
    torch.manual_seed(0)
    return str(save_model(GPTNeoXForCausalLM(config), tok, root / "policy"))


def build_ours(shape: dict, policy_dir: str, rm_dir: str, value_model: str = "separate"):
    from goodhartlab.config.ppo_schema import PPOConfig
    from goodhartlab.recipes.ppo import build_state
    from goodhartlab.recipes.ppo_reward import load_reward_models

    cfg = PPOConfig(device="cpu")
    cfg.policy.source = policy_dir
    cfg.reward.reward_models = [rm_dir]
    cfg.regularizer.kind, cfg.regularizer.coef, cfg.regularizer.estimator = "kl", KL_COEF, "k1"
    cfg.ppo.prompts_per_iteration = shape["prompts"]
    cfg.ppo.minibatch_size = shape["prompts"] // 2
    cfg.ppo.epochs = 4
    cfg.ppo.value_model = value_model
    cfg.generation.max_new_tokens = shape["new_tokens"]
    cfg.generation.temperature = 1.0
    state = build_state(cfg, policy_dir, None)
    return cfg, state, load_reward_models(cfg.reward, state.device)


def trl_dataset(cfg, state, n_iterations: int):
    """The prompts our side draws in iterations 0..n, tokenized as ours does (unpadded rows)."""
    from datasets import Dataset

    from goodhartlab.data.encoding import encode_prompts
    from goodhartlab.recipes.ppo_step import draw_prompts

    rows = []
    for it in range(n_iterations):
        ids, mask = encode_prompts(state.tokenizer, draw_prompts(cfg, it, None), cfg.template)
        rows += [row[m].tolist() for row, m in zip(ids, mask.bool())]
    return Dataset.from_dict({"input_ids": rows})


def build_trl(ppo, shape: dict, policy_dir: str, rm_dir: str, dataset, lr: float, root: Path):
    """A PPOTrainer on the same models and prompts, `len(dataset) / prompts` iterations."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tok = AutoTokenizer.from_pretrained(policy_dir)
    tok.padding_side = "left"
    args = ppo.PPOConfig(
        output_dir=str(root / "trl"), use_cpu=True, bf16=False, fp16=False, report_to=[],
        per_device_train_batch_size=shape["prompts"], gradient_accumulation_steps=1,
        num_mini_batches=2, num_ppo_epochs=4, local_rollout_forward_batch_size=shape["prompts"],
        response_length=shape["new_tokens"], stop_token="eos", temperature=1.0,
        kl_coef=KL_COEF, kl_estimator="k1", learning_rate=lr, total_episodes=len(dataset),
        num_sample_generations=0, save_strategy="no", logging_steps=1, disable_tqdm=True,
        missing_eos_penalty=None, seed=0, dataloader_num_workers=0,
    )  # fmt: skip
    value = AutoModelForSequenceClassification.from_pretrained(policy_dir, num_labels=1)
    return ppo.PPOTrainer(
        args=args, processing_class=tok, model=AutoModelForCausalLM.from_pretrained(policy_dir),
        ref_model=AutoModelForCausalLM.from_pretrained(policy_dir),
        reward_model=AutoModelForSequenceClassification.from_pretrained(rm_dir),
        value_model=value, train_dataset=dataset, eval_dataset=dataset,
    )  # fmt: skip


class Alternate:
    """TRL callback: time TRL's iteration, then run and time one iteration of each of ours (see
    module docstring). `ours` maps a side's name to "run iteration i"; `tokens_of` reads the
    response tokens from an iteration's metrics."""

    def __init__(self, ours: dict, tokens_of) -> None:
        self.ours, self.tokens_of = ours, tokens_of
        sides = ["trl", *ours]
        self.times: dict[str, list[float]] = {side: [] for side in sides}
        self.tokens: dict[str, list[int]] = {side: [] for side in sides}
        self.trl_tokens = 0
        self.rss: dict[str, float] = {}
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._record("trl", time.perf_counter() - self.start, self.trl_tokens)
        iteration = len(self.times["trl"]) - 1
        for side, run in self.ours.items():
            start = time.perf_counter()
            metrics = run(iteration)
            self._record(side, time.perf_counter() - start, self.tokens_of(metrics))
        self.trl_tokens = 0
        self.start = time.perf_counter()
        return control

    def _record(self, side: str, seconds: float, tokens: int) -> None:
        self.times[side].append(seconds)
        self.tokens[side].append(tokens)
        self.rss.setdefault(side, peak_rss_mb())  # cumulative: each side's peak so far

    def __getattr__(self, name: str):  # every other TrainerCallback event: do nothing
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)


def count_trl_tokens(ppo_trainer_module, alternate: Alternate) -> None:
    """Wrap TRL's `truncate_response` to count response tokens up to and including eos."""
    original = ppo_trainer_module.truncate_response

    def counted(stop_token_id, pad_token_id, responses):
        out = original(stop_token_id, pad_token_id, responses)
        alternate.trl_tokens += int((out != pad_token_id).sum())
        return out

    ppo_trainer_module.truncate_response = counted


def compare(ppo, name: str, repeats: int, value_models: list[str]) -> None:
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    from goodhartlab.recipes.ppo_step import ppo_iteration

    hf_logging.set_verbosity_error()  # the value models' expected "fresh head" load reports
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' renamed arguments

    shape = SHAPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        policy_dir, rm_dir = model_dirs(shape, root)
        ours = {}
        for value_model in value_models:
            cfg, state, models = build_ours(shape, policy_dir, rm_dir, value_model)
            built = (cfg, state, models)
            ours[f"ours/{value_model}"] = lambda it, built=built: ppo_iteration(*built, it, None)
        dataset = trl_dataset(cfg, state, repeats + 1)
        trainer = build_trl(ppo, shape, policy_dir, rm_dir, dataset, cfg.ppo.lr, root)
        alternate = Alternate(ours, lambda m: round(m["length/mean"] * shape["prompts"]))
        trainer.add_callback(alternate)
        trainer.remove_callback(PrinterCallback)  # its per-iteration dict print is not the result
        count_trl_tokens(sys.modules[type(trainer).__module__], alternate)
        trainer.train()
    report(name, shape, alternate)


def report(name: str, shape: dict, alt: Alternate) -> None:
    """Drop the warm-up iteration; min and median s/iteration, tokens/s, the ratios, RSS.

    RSS is the process's peak so far when a side first finished an iteration (sides share one
    process, so a later side's figure includes the earlier ones' memory)."""
    print(f"\n{name} shape: {shape['layers']} layers, d={shape['hidden']}, {shape['prompts']} "
          f"prompts x <= {shape['new_tokens']} tokens, 4 epochs x 2 minibatches, 1 thread, "
          f"{len(alt.times['trl']) - 1} interleaved iterations after a warm-up")  # fmt: skip
    print(f"{'side':<15}{'min s/it':>10}{'median s/it':>13}{'tokens/it':>11}"
          f"{'tokens/s (min)':>16}{'tokens/s (med)':>16}{'peak RSS MB':>13}")  # fmt: skip
    rate = {}
    for side in alt.times:
        times, tokens = alt.times[side][1:], alt.tokens[side][1:]
        per_s = [n / t for n, t in zip(tokens, times)]
        rate[side] = (max(per_s), statistics.median(per_s))
        print(f"{side:<15}{min(times):>10.3f}{statistics.median(times):>13.3f}"
              f"{statistics.mean(tokens):>11.0f}{rate[side][0]:>16.0f}{rate[side][1]:>16.0f}"
              f"{alt.rss[side]:>13.0f}")  # fmt: skip
    for side in alt.ours:
        best, typical = (rate[side][i] / rate["trl"][i] for i in (0, 1))
        print(f"ratio {side} / TRL (tokens/s), {name} shape: {best:.2f}x (best), "
              f"{typical:.2f}x (median)")  # fmt: skip
        # Both sides pay for the longest response in the batch (TRL always for the limit), so
        # when the two policies drift to different mean lengths, s/iteration is the same-work view
        trl_s, side_s = alt.times["trl"][1:], alt.times[side][1:]
        print(f"ratio TRL / {side} (s per iteration), {name} shape: "
              f"{min(trl_s) / min(side_s):.2f}x (min), "
              f"{statistics.median(trl_s) / statistics.median(side_s):.2f}x (median)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--value-model", nargs="+", choices=["separate", "head"], default=["separate", "head"],
        help="our sides: a separate value network (the same work as TRL's), a head on the policy",
    )  # fmt: skip
    args = parser.parse_args(argv)
    ppo, reason = trl_ppo_or_reason()
    if ppo is None:
        print(f"benchmarks/ppo_vs_trl.py: skipped: {reason}; install the [bench] extra")
        return 0
    torch.set_num_threads(args.threads)
    for name in SHAPES if args.shape == "both" else [args.shape]:
        compare(ppo, name, args.repeats, args.value_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
