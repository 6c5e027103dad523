"""Benchmark: environment steps per second, one at a time (gymnasium `step` loop) vs batched.

Run:  PYTHONPATH=src python benchmarks/envs.py [--num-envs 64] [--steps 300]

For each env (tomato, glucose, pandemic; traffic at most --traffic-envs copies and 100 ticks, see
`traffic`) and the same pre-drawn random actions:
  * one at a time: `num_envs` single gymnasium envs (`TomatoEnv`, `GlucoseEnv`), each stepped with
    its own `step` call (`PandemicEnv` too), reset when done (what a plain Python collection loop does);
  * batched: one `TomatoVecEnv` / `GlucoseVecEnv` / `PandemicVecEnv` with `num_envs` copies, one
    `step` per tick.
Both run `steps` ticks of `num_envs` env steps (pandemic: `--pandemic-steps`, a day is 24 hours of
a 500-person city, so fewer ticks give the same precision). Reported: env steps/second and
batched/one-at-a-time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from goodhartlab.envs import ENVS
from goodhartlab.envs.glucose import GlucoseEnv
from goodhartlab.envs.pandemic import PandemicEnv
from goodhartlab.envs.tomato import TomatoEnv


def one_at_a_time(envs: list, actions: np.ndarray) -> float:
    for i, env in enumerate(envs):
        env.reset(seed=i)
    start = time.perf_counter()
    for tick in actions:
        for env, action in zip(envs, tick):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    return actions.shape[0] * actions.shape[1] / (time.perf_counter() - start)


def batched(vec: object, actions: np.ndarray) -> float:
    vec.reset(seed=0)
    start = time.perf_counter()
    for tick in actions:
        vec.step(tick)
    return actions.shape[0] * actions.shape[1] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300, help="ticks (each = num_envs steps)")
    parser.add_argument("--traffic-envs", type=int, default=8, help="SUMO copies (traffic)")
    parser.add_argument("--pandemic-steps", type=int, default=20, help="ticks for pandemic")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, steps = args.num_envs, args.steps
    cases = {
        "tomato": (
            [TomatoEnv() for _ in range(n)],
            rng.integers(0, 4, size=(steps, n)),
        ),
        "glucose": (
            [GlucoseEnv() for _ in range(n)],
            rng.uniform(0, 0.1, size=(steps, n, 1)).astype(np.float32),
        ),
        "pandemic": (
            [PandemicEnv() for _ in range(n)],
            # its own stream, so traffic's actions below stay those of the run without pandemic
            np.random.default_rng(1).integers(0, 3, size=(args.pandemic_steps, n)),
        ),
    }
    print(f"{'env':<8} {'one-at-a-time steps/s':>22} {f'batched x{n} steps/s':>22} {'ratio':>8}")
    for name, (singles, actions) in cases.items():
        single_rate = one_at_a_time(singles, actions)
        batch_rate = batched(ENVS[name].make_vec(n), actions)
        print(
            f"{name:<8} {single_rate:>22,.0f} {batch_rate:>22,.0f} {batch_rate / single_rate:>7.1f}x"
        )
    traffic(min(n, args.traffic_envs), min(steps, 100), rng)


def traffic(n: int, steps: int, rng: np.random.Generator) -> None:
    """SUMO merge: one-at-a-time = n single envs in this process (the first on libsumo, the rest
    over traci sockets); batched = `TrafficVecEnv` with one forked libsumo worker per copy
    ("async", the default) and with every copy in this process ("sync")."""
    import importlib.util

    if importlib.util.find_spec("libsumo") is None:
        print("traffic  skipped: SUMO not installed (pip install 'goodhartlab[traffic]')")
        return
    from goodhartlab.envs.traffic import TrafficEnv, TrafficVecEnv

    actions = rng.uniform(-1.5, 1.5, size=(steps, n, 10)).astype(np.float32)
    singles = [TrafficEnv() for _ in range(n)]
    single_rate = one_at_a_time(singles, actions)
    for env in singles:
        env.close()
    for mode in ("async", "sync"):
        vec = TrafficVecEnv(n, mode=mode)
        rate = batched(vec, actions)
        vec.close()
        label = f"traffic {mode} x{n}"
        print(f"{label:<8} {single_rate:>22,.0f} {rate:>22,.0f} {rate / single_rate:>7.1f}x")


if __name__ == "__main__":
    main()
