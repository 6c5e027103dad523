"""The PPO results table of the toy world: no regularizer vs KL vs √χ² over seeds and coefficients.

Run:  python benchmarks/ppo_table.py [--seeds 0 1 2] [--kl 0.02 0.05 0.1] [--sqrt-chi2 ...]
          [--jobs 2] [--out runs/ppo_table] [overrides ...]

Each cell is one `goodhart ppo` run (a subprocess, one torch thread each, `--jobs` at a time) on
the toy preset; extra key=value overrides go to every run. A run whose ppo_summary.json exists is
reused, so the table can be rebuilt or extended without rerunning. Prints, per method and
coefficient, the mean over seeds (and the min..max range) of peak gold, final gold, final √KL and
final mean length, all on the fixed held-out prompts, plus each run's wall time; writes the
table as Markdown to OUT/table.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from goodhart_runs import run_goodhart  # benchmarks/, beside this script

METHODS = {
    "none": [],
    "kl": ["regularizer.kind=kl", "regularizer.placement=reward"],
    "kl_loss": ["regularizer.kind=kl", "regularizer.placement=loss"],
    "sqrt_chi2": ["regularizer.kind=sqrt_chi2", "regularizer.placement=loss"],
    "chi2": ["regularizer.kind=chi2", "regularizer.placement=loss"],
}
COLUMNS = ("peak_gold", "final_gold", "final_sqrt_kl", "final_length")


def one_run(out: Path, args: list[str]) -> tuple[dict, float]:
    env = {**os.environ, "GOODHART_THREADS": "1"}
    return run_goodhart(["ppo", *args], out, "ppo_summary.json", env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kl", type=float, nargs="*", default=[0.02, 0.05, 0.1])
    parser.add_argument("--kl-loss", type=float, nargs="*", default=[])
    parser.add_argument("--sqrt-chi2", type=float, nargs="*", default=[0.02, 0.05, 0.1])
    parser.add_argument("--chi2", type=float, nargs="*", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/ppo_table")
    parser.add_argument("overrides", nargs="*", help="key=value for every run")
    args = parser.parse_args(argv)
    grid = {"none": [0.0], "kl": args.kl, "kl_loss": args.kl_loss,
            "sqrt_chi2": args.sqrt_chi2, "chi2": args.chi2}  # fmt: skip
    jobs = []
    for method, coefs in grid.items():
        for coef in coefs:
            for seed in args.seeds:
                extra = [f"regularizer.coef={coef}"] if method != "none" else []
                run_args = [f"seed={seed}", *METHODS[method], *extra, *args.overrides]
                out = Path(args.out) / f"{method}-{coef:g}" / f"seed{seed}"
                jobs.append(((method, coef, seed), out, run_args))
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: (j[0], *one_run(j[1], j[2])), jobs))
    cells: dict[tuple[str, float], list[dict]] = {}
    for (method, coef, _), summary, wall in results:
        cells.setdefault((method, coef), []).append({**summary, "wall_s": wall})
    lines = ["| method | coef | " + " | ".join(COLUMNS) + " | wall s/run |",
             "|---|---|" + "---|" * (len(COLUMNS) + 1)]  # fmt: skip
    for (method, coef), runs in cells.items():
        stats = []
        for col in COLUMNS:
            vals = [r[col] for r in runs]
            stats.append(f"{sum(vals) / len(vals):.3f} ({min(vals):.2f}..{max(vals):.2f})")
        walls = [r["wall_s"] for r in runs if r["wall_s"] == r["wall_s"]]
        wall = f"{sum(walls) / len(walls):.0f}" if walls else "reused"
        lines.append(f"| {method} | {coef:g} | " + " | ".join(stats) + f" | {wall} |")
    table = "\n".join(lines)
    print(f"toy-world PPO, seeds {args.seeds}, mean (min..max) over seeds, held-out prompts")
    print(table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
