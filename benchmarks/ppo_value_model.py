"""Benchmark: our PPO iteration with a value head against the same with a separate value network.

Run:  python benchmarks/ppo_value_model.py [--shape toy|large|both] [--repeats 5]

Why: `ppo.value_model` is a speed choice (one trunk instead of two in every rollout and update
pass) and a results choice (docs/ppo.md, Speed); this measures the first on its own, without TRL.
Same models, prompts and settings as benchmarks/ppo_vs_trl.py (its shapes, its `build_ours`):
both sides start from the same random-init policy and RM; the sides alternate iteration by
iteration (which goes first swaps each repeat) under the same machine load; the first iteration
of each is a warm-up. Tokens/s counts response tokens (the sides' policies drift apart, so their
lengths differ); one torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_timing import peak_rss_mb
from ppo_vs_trl import SHAPES, build_ours, model_dirs

SIDES = ("head", "separate")


def measure(name: str, repeats: int) -> dict[str, list[tuple[float, int]]]:
    """(seconds, response tokens) per timed iteration of each side, warm-up dropped."""
    from goodhartlab.recipes.ppo_step import ppo_iteration

    shape = SHAPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        policy_dir, rm_dir = model_dirs(shape, root)
        built = {side: build_ours(shape, policy_dir, rm_dir, side) for side in SIDES}
        runs: dict[str, list[tuple[float, int]]] = {side: [] for side in SIDES}
        for it in range(repeats + 1):
            for side in SIDES if it % 2 == 0 else SIDES[::-1]:
                cfg, state, models = built[side]
                start = time.perf_counter()
                metrics = ppo_iteration(cfg, state, models, it, None)
                seconds = time.perf_counter() - start
                if it:
                    runs[side].append((seconds, round(metrics["length/mean"] * shape["prompts"])))
    return runs


def report(name: str, repeats: int, runs: dict[str, list[tuple[float, int]]]) -> None:
    shape = SHAPES[name]
    print(f"\n{name} shape: {shape['layers']} layers, d={shape['hidden']}, {shape['prompts']} "
          f"prompts x <= {shape['new_tokens']} tokens, 4 epochs x 2 minibatches, 1 thread, "
          f"{repeats} interleaved iterations after a warm-up")  # fmt: skip
    print(f"{'side':<10}{'min s/it':>10}{'median s/it':>13}{'tokens/s (best)':>17}"
          f"{'tokens/s (med)':>16}")  # fmt: skip
    rate = {}
    for side, rows in runs.items():
        seconds = [s for s, _ in rows]
        per_s = [n / s for s, n in rows]
        rate[side] = (max(per_s), statistics.median(per_s))
        print(f"{side:<10}{min(seconds):>10.3f}{statistics.median(seconds):>13.3f}"
              f"{rate[side][0]:>17.1f}{rate[side][1]:>16.1f}")  # fmt: skip
    best, typical = (rate["head"][i] / rate["separate"][i] for i in (0, 1))
    print(f"ratio head / separate (tokens/s), {name}: {best:.2f}x (best), {typical:.2f}x (median)")
    print(f"peak RSS (both sides in one process): {peak_rss_mb():.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="toy")
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations per side")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: must be >= 1")
    torch.set_num_threads(1)
    for name in SHAPES if args.shape == "both" else [args.shape]:
        report(name, args.repeats, measure(name, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
