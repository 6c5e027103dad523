"""Benchmark: our KV-cache sampling loop against `model.generate` on the same model and batch.

Run:  python benchmarks/generate.py [--model toy:sft] [--batch 256] [--new-tokens 24]

The default model is the cached toy SFT policy (trained once if missing): its answers end at
different lengths, as in best-of-n and PPO sampling, which is where dropping finished rows pays;
`--model toy:policy` (random init, rarely stops) measures the per-step loop alone.

Both sides sample the same prompts (toy world prompts, left-padded) with temperature 1 from the
same model, in this one process, each best of --repeats runs. `model.generate` is asked for
per-token scores as well (`output_scores`), since PPO needs logprobs and ours returns them; the
plain `generate()` without scores is timed too. Tokens/s counts generated (unmasked) tokens, so a
side that stops earlier at eos is not credited with pad. Both stop when every row has ended.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from goodhartlab.data.encoding import encode_prompts
from goodhartlab.models import load_policy
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.rollout.generate import sample
from goodhartlab.toyworld.teacher import sample_prompts


def best_time(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    """(best seconds, tokens generated in that run)."""
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, tokens = elapsed, n
    return best, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy:sft", help="toy spec, local dir or hub id")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = load_policy(resolve_source(args.model), device=args.device, seed=0)
    model.eval()
    device = next(model.parameters()).device
    prompts = [p.text for p in sample_prompts(args.batch, np.random.default_rng(0))]
    ids, mask = encode_prompts(tok, prompts, device=device)

    def ours() -> int:
        gen = torch.Generator(device=device).manual_seed(0)
        out = sample(
            model,
            ids,
            mask,
            max_new_tokens=args.new_tokens,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            generator=gen,
        )
        return int(out.response_mask.sum())

    def theirs(with_scores: bool) -> Callable[[], int]:
        def run() -> int:
            torch.manual_seed(0)
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask.long(),
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=args.new_tokens,
                    eos_token_id=tok.eos_token_id,
                    pad_token_id=tok.pad_token_id,
                    output_scores=with_scores,
                    return_dict_in_generate=with_scores,
                )
            seqs = out.sequences if with_scores else out
            resp = seqs[:, ids.shape[1] :]
            # count up to and including each row's first eos
            is_eos = (resp == tok.eos_token_id).int()
            after_eos = (is_eos.cumsum(1) - is_eos) > 0
            return int((~after_eos).sum())

        return run

    ours()  # warm-up (allocator, kernels)
    t_ours, n_ours = best_time(ours, args.repeats)
    t_gen, n_gen = best_time(theirs(False), args.repeats)
    t_scores, n_scores = best_time(theirs(True), args.repeats)
    rate = {
        "ours": n_ours / t_ours,
        "generate": n_gen / t_gen,
        "generate+scores": n_scores / t_scores,
    }
    print(f"model {args.model} on {device}, batch {args.batch}, {args.new_tokens} new tokens")
    print(f"{'method':<18}{'tokens':>8}{'seconds':>10}{'tokens/s':>12}")
    for name, (t, n) in {
        "ours": (t_ours, n_ours),
        "generate": (t_gen, n_gen),
        "generate+scores": (t_scores, n_scores),
    }.items():
        print(f"{name:<18}{n:>8}{t:>10.4f}{rate[name]:>12.0f}")
    print(f"ratio ours / generate:        {rate['ours'] / rate['generate']:.2f}x")
    print(f"ratio ours / generate+scores: {rate['ours'] / rate['generate+scores']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
