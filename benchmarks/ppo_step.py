"""Benchmark: one language-model PPO iteration (rollout + scoring + update), ours vs the obvious way.

Run:  python benchmarks/ppo_step.py [--prompts 64] [--new-tokens 24] [--iterations 5]

Both sides use the same toy policy, value model, reward model, prompts and the same
`rl.ppo_update` (4 epochs, minibatches of 32), in this one process:
  * ours: `recipes.ppo_step.ppo_iteration` (KV-cache sampler whose logprobs serve as the
    rollout-time logprobs, finished rows leave the batch);
  * obvious: `model.generate(do_sample=True)`, then separate teacher-forced passes for the
    rollout-time logprobs, the reference logprobs and the values, then the same scoring,
    GAE and update.
Models are random-init toy models (no training needed); `--policy DIR` uses a trained one, whose
shorter answers favour our sampler further. Iterations alternate between the two sides (the first
side alternates per repeat) after a warm-up; prints min and median seconds per iteration, their
ratios, and the process peak RSS after each side's warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from itertools import count
from pathlib import Path

import torch

from bench_timing import interleaved, peak_rss_mb, print_table


def build(args: argparse.Namespace, root: Path):
    from goodhartlab.config.ppo_schema import PPOConfig
    from goodhartlab.models import load_policy, save_model
    from goodhartlab.models.reward import load_reward_model, save_reward_model
    from goodhartlab.recipes.ppo import build_state
    from goodhartlab.recipes.ppo_reward import load_reward_models

    policy_dir = args.policy
    if policy_dir is None:
        policy, tok = load_policy("toy:policy", device="cpu", seed=0)
        policy_dir = str(save_model(policy, tok, root / "policy"))
    rm, rtok = load_reward_model("toy:rm", device="cpu", seed=1)
    save_reward_model(rm, rtok, root / "rm", 0.0, 1.0)
    cfg = PPOConfig(device=args.device)
    cfg.policy.source = policy_dir
    cfg.reward.reward_models = [str(root / "rm")]
    cfg.ppo.prompts_per_iteration = args.prompts
    cfg.generation.max_new_tokens = args.new_tokens
    state = build_state(cfg, policy_dir, None)
    return cfg, state, load_reward_models(cfg.reward, state.device)


def obvious_iteration(cfg, state, models, iteration: int) -> None:
    """The same iteration built from `generate()` and separate forward passes."""
    from goodhartlab.core.advantages import gae
    from goodhartlab.core.regularize import place_terminal
    from goodhartlab.data.encoding import decode_responses, encode_prompts
    from goodhartlab.recipes.ppo_reward import score_responses, training_scores
    from goodhartlab.recipes.ppo_step import draw_prompts, forward_fn
    from goodhartlab.rl.ppo_update import PPOHyperparams, ppo_update
    from goodhartlab.rollout.llm import SequenceBatch, policy_pass, value_pass

    tok, gen = state.tokenizer, cfg.generation
    prompts = draw_prompts(cfg, iteration, None)
    ids, mask = encode_prompts(tok, prompts, None, state.device)
    torch.manual_seed(iteration)
    with torch.no_grad():
        seqs = state.policy.generate(
            input_ids=ids, attention_mask=mask.long(), do_sample=True, top_k=0, top_p=1.0,
            temperature=1.0, max_new_tokens=gen.max_new_tokens,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
    response = seqs[:, ids.shape[1] :]
    is_eos = (response == tok.eos_token_id).int()
    resp_mask = (is_eos.cumsum(1) - is_eos) == 0
    ended = (is_eos.sum(1) > 0).tolist()
    batch = SequenceBatch(ids, mask, response, resp_mask)
    with torch.no_grad():
        old = policy_pass(state.policy, batch).logprobs
        ref = policy_pass(state.reference, batch).logprobs
        values = value_pass(state.value_model, batch)
    texts = decode_responses(tok, response, resp_mask)
    scores = score_responses(cfg.reward, models, prompts, texts, ended)
    shaped, state.reward_stats = training_scores(
        cfg.reward, scores, resp_mask.sum(1), state.reward_stats
    )
    adv = gae(place_terminal(shaped, resp_mask), values, gamma=1.0, gae_lambda=0.95, mask=resp_mask)
    hp = cfg.ppo
    hyper = PPOHyperparams(epochs=hp.epochs, minibatch_size=hp.minibatch_size,
                           max_grad_norm=hp.max_grad_norm, whiten_advantages=True)  # fmt: skip
    batch_dict = {
        "old_logprobs": old, "ref_logprobs": ref, "advantages": adv.advantages, "mask": resp_mask,
        "old_values": values, "returns": adv.returns, "prompt_ids": ids, "prompt_mask": mask,
        "response_ids": response,
    }  # fmt: skip
    ppo_update(batch_dict, forward_fn(state, 1.0), state.optimizer, hyper)


def main(argv: list[str] | None = None) -> int:
    from goodhartlab.recipes.ppo_step import ppo_iteration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--policy", default=None, help="a trained policy dir (default: random toy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg, state, models = build(args, Path(tmp))
        iteration = count()  # both sides draw from one stream of iterations
        sides = {
            "ours": lambda: ppo_iteration(cfg, state, models, next(iteration), None),
            "obvious": lambda: obvious_iteration(cfg, state, models, next(iteration)),
        }
        rss = {}
        for name, step in sides.items():
            step()  # warm-up
            rss[name] = peak_rss_mb()
        # interleaved, so both sides see the same (slowly changing) policy and machine load
        times, _ = interleaved(sides, args.iterations)
    print(f"PPO iteration, {args.prompts} prompts x {args.new_tokens} new tokens, {args.device}, "
          f"{args.threads} thread(s), {args.iterations} interleaved repeats")  # fmt: skip
    print_table(times, {"ours": 1, "obvious": 1}, "iter", rss)
    fast = min(times["obvious"]) / min(times["ours"])
    typical = statistics.median(times["obvious"]) / statistics.median(times["ours"])
    print(f"ratio obvious / ours (s per iteration): {fast:.2f}x (min times), "
          f"{typical:.2f}x (medians)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
