"""ORPO results table: true return of each method, several seeds (specs/orpo.md §5 checks).

"ORPO" = occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's ORPO.

Run:  PYTHONPATH=src python benchmarks/orpo_table.py --env tomato --seeds 0 1 2 --jobs 2 --out DIR
      PYTHONPATH=src python benchmarks/orpo_table.py --env glucose --seeds 0 1 2 --jobs 2 --out DIR
      PYTHONPATH=src python benchmarks/orpo_table.py --env pandemic --one-coef --seeds 0 1 2 --out DIR

Per seed: the env's default base policy is built once (tomato: 3 PPO iterations on the true
reward with 10% random actions; glucose: BC of the PID; pandemic: BC of the 10 pooled stage
schedules), evaluated, and shared by every method:
no regularization (c = 0), AD-KL, state-action OM with KL, chi2 and sqrt-chi2 (a small grid of
scale-free coefficients each), and PPO on the true reward. Every run uses the preset
configs/orpo/<env>.yaml. "best" picks the coefficient with the highest mean true return over the
seeds (selected on the same seeds, so slightly optimistic); `--one-coef` runs only the
coefficient fixed in advance in `ONE_COEF` / `ENV_ONE_COEF` (chosen on the earlier 3-seed tables,
so new seeds are out of sample). `--methods` runs a subset, `--set key=value` overrides every
run's config (e.g. a larger budget). Finished runs (DIR/<env>/<run>/table_row.json) are reused, so a killed table
continues where it stopped and methods can be added later. Prints a markdown table (mean and Student-t 95% interval over seeds of each run's
final evaluation mean, and the fraction of seeds that hack: true return below that seed's base
policy while the proxy is above it) and writes DIR/table.json.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from goodhart_runs import was_started  # benchmarks/, beside this script

GRIDS = {
    "ad_kl": [0.01, 0.1],
    "om_kl": [0.05, 0.2],
    "om_chi2": [0.01, 0.1],
    "om_sqrt_chi2": [0.2, 1.0],
}

ONE_COEF = {"ad_kl": 0.1, "om_kl": 0.05, "om_chi2": 0.01, "om_sqrt_chi2": 0.2}
# glucose's reward is on another scale, so its fixed coefficients are its own 3-seed table's best
# (seeds 0-2, docs/orpo_results.md), kept for its runs on new seeds; other envs use the tomato ones
ENV_ONE_COEF = {"glucose": {"ad_kl": 0.1, "om_kl": 0.2, "om_chi2": 0.1, "om_sqrt_chi2": 0.2}}
METHODS = ["no_reg", *GRIDS, "true_reward"]
ROW_FILE = "table_row.json"  # a finished run's row, so a re-run of the table skips it

# two-sided 95% Student-t quantiles by sample size (3 seeds: 4.30, not the normal 1.96)
T95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 8: 2.36, 10: 2.26}


def method_overrides(method: str, coef: float) -> list[str]:
    if method == "no_reg":
        return ["om_divergence_coeffs=[0.0]"]
    if method == "true_reward":
        return ["reward_fun=true", "om_divergence_coeffs=[0.0]"]
    if method == "ad_kl":
        return ["om_divergence_coeffs=[0.0]", f"action_dist_divergence_coeff={coef}"]
    kind = method.removeprefix("om_")
    return [f"om_divergence_type={kind}", f"om_divergence_coeffs=[{coef}]"]


def _job(args: tuple) -> dict:
    from goodhartlab.runs.cpu_kernels import pin_cpu_kernels

    pin_cpu_kernels()  # as `goodhart` does: the same numbers on any x86 machine
    import torch

    torch.set_num_threads(1)
    from goodhartlab.config import dump_config, find_configs_dir, load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.recipes import orpo
    from goodhartlab.runs import RunDir

    env, seed, method, coef, out, *rest = args  # (env, seed, method, coef, out[, overrides])
    extra = tuple(rest[0]) if rest else ()
    preset = find_configs_dir() / "orpo" / f"{env}.yaml"
    base_dir = Path(out) / f"base_seed{seed}"
    start = time.perf_counter()
    if method == "base":
        cfg = load_config(OrpoConfig, preset, [f"seed={seed}", *extra])
        st = orpo.setup(cfg)
        if not (base_dir / "policy.json").exists():  # reused when the table is re-run in DIR
            orpo.build_default_base(cfg, base_dir)
        from goodhartlab.models.gym_policy import load_gym_policy
        from goodhartlab.recipes.orpo_eval import evaluate_gym_policy

        result = evaluate_gym_policy(
            load_gym_policy(base_dir), env, st.env_kwargs, cfg.eval.episodes, st.horizon, seed + 999
        )
    else:
        overrides = [f"seed={seed}", f"base_policies=[{base_dir}]", *method_overrides(method, coef)]
        overrides += extra
        cfg = load_config(OrpoConfig, preset, overrides)
        run_dir = Path(out) / f"{method}_{coef}_seed{seed}"
        if (run_dir / ROW_FILE).exists():  # finished in an earlier invocation: reuse
            return json.loads((run_dir / ROW_FILE).read_text())
        resume = was_started(run_dir)  # a killed invocation left it: continue
        run = RunDir.prepare(run_dir, dump_config(cfg), resume=resume)
        result = orpo.run(cfg, run, resume=resume)["eval"]
    row = {
        "seed": seed,
        "method": method,
        "coef": coef,
        "true": result["true"]["mean"],
        "proxy": result["proxy"]["mean"],
        "seconds": time.perf_counter() - start,
    }
    if method != "base":
        (run_dir / ROW_FILE).write_text(json.dumps(row))
    return row


def hacked(row: dict, bases: dict[int, dict]) -> bool:
    """A run hacks when its true return is below its seed's base policy while its proxy is above."""
    base = bases[row["seed"]]
    return row["true"] < base["true"] and row["proxy"] > base["proxy"]


def _line(method: str, coef: float, runs: list[dict], bases: dict[int, dict]) -> dict:
    true = np.array([r["true"] for r in runs])
    n = len(true)
    half = T95.get(n, 1.96) * true.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return {
        "method": method,
        "coef": coef,
        "true": float(true.mean()),
        "true_ci95": float(half),
        "proxy": float(np.mean([r["proxy"] for r in runs])),
        "hacked": float(np.mean([hacked(r, bases) for r in runs])),
        "seeds": n,
        "seconds": float(np.mean([r["seconds"] for r in runs])),
    }


def summarize(rows: list[dict], best_only: bool = True) -> list[dict]:
    """One line per method: the best coefficient's mean, 95% interval over seeds and fraction of
    seeds that hack (or, with best_only=False, one line per (method, coefficient))."""
    bases = {r["seed"]: r for r in rows if r["method"] == "base"}
    table = []
    for method in ["base", *METHODS]:
        lines = [
            _line(
                method, coef, [r for r in rows if (r["method"], r["coef"]) == (method, coef)], bases
            )
            for coef in sorted({r["coef"] for r in rows if r["method"] == method})
        ]
        if lines and best_only:
            lines = [max(lines, key=lambda line: line["true"])]
        table += lines
    return table


def print_table(title: str, lines: list[dict], n_seeds: int) -> None:
    print(f"\n{title}\n")
    print(f"| method | coef | true return (95% CI, {n_seeds} seeds) | proxy | hacked | s/run |")
    print("|---|---|---|---|---|---|")
    for line in lines:
        print(
            f"| {line['method']} | {line['coef']:g} | {line['true']:.2f} ± "
            f"{line['true_ci95']:.2f} | {line['proxy']:.2f} | {line['hacked']:.0%} | "
            f"{line['seconds']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="tomato", choices=["tomato", "glucose", "pandemic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/orpo_table")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--one-coef", action="store_true", help="only the ONE_COEF coefficient")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for every run")
    args = parser.parse_args()
    out = Path(args.out) / args.env
    out.mkdir(parents=True, exist_ok=True)
    one_coef = ENV_ONE_COEF.get(args.env, ONE_COEF)
    grids = {m: [one_coef[m]] if args.one_coef else g for m, g in GRIDS.items()}
    extra = tuple(args.set)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(
            pool.map(_job, [(args.env, s, "base", 0.0, str(out), extra) for s in args.seeds])
        )
        jobs = [
            (args.env, s, m, c, str(out), extra)
            for m in args.methods  # method-major: a cut-short table has whole methods
            for c in grids.get(m, [0.0])
            for s in args.seeds
        ]
        rows += list(pool.map(_job, jobs))
    print_table(f"{args.env}, best coefficient", summarize(rows), len(args.seeds))
    print_table(f"{args.env}, every run", summarize(rows, False), len(args.seeds))
    run_seconds = [r["seconds"] for r in rows if r["method"] != "base"]
    print(
        f"runs: {len(rows)}; mean seconds per run {np.mean(run_seconds):.1f} ({args.jobs} jobs);"
        f" wall {time.perf_counter() - start:.0f} s"
    )
    table = {"rows": rows, "table": summarize(rows), "overrides": list(extra)}
    (out / "table.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
