"""The pandemic env's landscape: each scripted stage schedule's returns and epidemic size.

Run:  PYTHONPATH=src python benchmarks/pandemic_schedules.py [--cities 4] [--seed 0]

Every schedule of `envs.pandemic.SCHEDULES` drives `--cities` cities for the full 192 days (one
`PandemicVecEnv`, copy i runs schedule i mod 10, no action noise). Printed per schedule: mean
true and proxy return, the weighted reward terms (10 P political, 0.1 L stage cost, 10 A
critical), the fraction of persons ever infected and dead at the end. These are the figures
quoted in docs/pandemic.md; they show where the proxy and the true reward disagree (a raise
before 0.5% are ill costs 10 under the true reward only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from goodhartlab.envs import pandemic_sim as sim
from goodhartlab.envs.pandemic import HORIZON, SCHEDULES, WEIGHTS, PandemicVecEnv, StageSchedules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=4, help="cities per schedule")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = list(SCHEDULES)
    n = len(names) * args.cities
    env, controller = PandemicVecEnv(n, autoreset=False), StageSchedules(n)
    obs, _ = env.reset(seed=args.seed)
    sums = {k: np.zeros(n) for k in ("true", "proxy", "political", "lower_stage", "critical")}
    start = time.perf_counter()
    for _ in range(HORIZON):
        obs, _, _, _, info = env.step(controller(obs))
        sums["true"] += info["true_reward"]
        sums["proxy"] += info["proxy_reward"]
        for term in ("political", "lower_stage", "critical"):
            sums[term] += WEIGHTS[term] * info[f"reward_{term}"]
    seconds = time.perf_counter() - start
    ever = (env.sim.state != sim.SUSCEPTIBLE).mean(axis=1)
    dead = (env.sim.state == sim.DEAD).mean(axis=1)
    print(f"{n} cities x {HORIZON} days in {seconds:.1f} s\n")
    print("| schedule | true | proxy | 10 P | 0.1 L | 10 A | ever infected | dead |")
    print("|---|---|---|---|---|---|---|---|")
    for i, name in enumerate(names):
        rows = np.arange(i, n, len(names))
        cells = [sums[k][rows].mean() for k in sums] + [ever[rows].mean(), dead[rows].mean()]
        print(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
