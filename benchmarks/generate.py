"""Benchmark: our KV-cache sampling loop against `model.generate` on the same model and batch.

Run:  python benchmarks/generate.py [--model toy:sft] [--batch 64 256] [--new-tokens 24]

The default model is the cached toy SFT policy (trained once if missing): its answers end at
different lengths, as in best-of-n and PPO sampling, which is where dropping finished rows pays;
`--model toy:policy` (random init, rarely stops) measures the per-step loop alone.

Both sides sample the same prompts (toy world prompts, left-padded) with temperature 1 from the
same model, in this one process, interleaved (the first side alternates per repeat), each
--repeats times per batch size. `model.generate` is asked for per-token scores as well
(`output_scores`), since PPO needs logprobs and ours returns them; the plain `generate()` without
scores is timed too. Tokens/s counts generated (unmasked) tokens, so a side that stops earlier at
eos is not credited with pad. Both stop when every row has ended. Prints min and median seconds
per side, the ratios of both, and the process peak RSS after each side's warm-up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import torch

from bench_timing import interleaved, peak_rss_mb, print_table
from goodhartlab.data.encoding import encode_prompts
from goodhartlab.models import load_policy
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.rollout.generate import sample
from goodhartlab.toyworld.teacher import sample_prompts


def sides(model, tok, ids, mask, new_tokens: int) -> dict[str, Callable[[], int]]:
    """name -> a run that returns the number of generated tokens."""

    def ours() -> int:
        gen = torch.Generator(device=ids.device).manual_seed(0)
        out = sample(
            model, ids, mask, max_new_tokens=new_tokens, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id, generator=gen,
        )  # fmt: skip
        return int(out.response_mask.sum())

    def theirs(with_scores: bool) -> Callable[[], int]:
        def run() -> int:
            torch.manual_seed(0)
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids, attention_mask=mask.long(), do_sample=True, temperature=1.0,
                    top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                    eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                    output_scores=with_scores, return_dict_in_generate=with_scores,
                )  # fmt: skip
            resp = (out.sequences if with_scores else out)[:, ids.shape[1] :]
            is_eos = (resp == tok.eos_token_id).int()  # count up to and including the first eos
            return int(((is_eos.cumsum(1) - is_eos) == 0).sum())

        return run

    return {"ours": ours, "generate": theirs(False), "generate+scores": theirs(True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy:sft", help="toy spec, local dir or hub id")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = load_policy(resolve_source(args.model), device=args.device, seed=0)
    model.eval()
    device = next(model.parameters()).device
    for batch in args.batch:
        prompts = [p.text for p in sample_prompts(batch, np.random.default_rng(0))]
        ids, mask = encode_prompts(tok, prompts, device=device)
        runs = sides(model, tok, ids, mask, args.new_tokens)
        rss = {}
        for name, run in runs.items():  # warm-up (allocator, kernels), and the token counts
            run()
            rss[name] = peak_rss_mb()
        times, counts = interleaved(runs, args.repeats)
        counts = {k: int(v) for k, v in counts.items()}  # type: ignore[call-overload]
        print(f"\nmodel {args.model} on {device}, batch {batch}, {args.new_tokens} new tokens, "
              f"{args.threads} thread(s), {args.repeats} interleaved repeats")  # fmt: skip
        print_table(times, counts, "tokens", rss)
        for other in ("generate", "generate+scores"):
            fast = min(times[other]) / min(times["ours"]) * counts["ours"] / counts[other]
            med = float(np.median(times[other]) / np.median(times["ours"]))
            med *= counts["ours"] / counts[other]
            print(f"ratio ours / {other} (tokens/s), batch {batch}: {fast:.2f}x (min times), "
                  f"{med:.2f}x (medians)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
