"""Fake finished runs, written by hand in the layouts the recipes write (see each writer).

Why by hand: the report reads files, not objects; building them from known curves lets the
tests check the exact numbers the page must show, in milliseconds, without training anything.
The PPO pieces go through the recipes' own writers (`ppo.summarize`, `write_eval_samples`) so
the layout cannot drift from the real one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from goodhartlab.core.best_of_n import kl_bon
from goodhartlab.runs import RunDir

# PPO methods: (alpha, beta, final sqrt KL, proxy slope, length growth) of a known RL curve.
PPO_METHODS = {
    "none": (1.0, 0.6, 4.0, 0.5, 4.0),  # d* = e^(1/0.6 - 1) = 1.95, gold falls after
    "kl_reward": (1.0, 0.6, 1.6, 0.4, 0.5),  # stops before d*: gold still rising at the end
    "gold": (0.8, 0.05, 2.5, 0.2, 0.2),  # the control: keeps rising
}
STEPS = list(range(0, 101, 10))
GOLD0, PROXY0, LEN0 = 1.4, -0.02, 5.5


def ppo_curve(method: str) -> list[dict]:
    """Eval rows of one method: d grows linearly with the step up to its final sqrt KL."""
    alpha, beta, d_end, slope, grow = PPO_METHODS[method]
    rows = []
    for step in STEPS:
        d = d_end * step / STEPS[-1]
        gold = GOLD0 + (d * (alpha - beta * math.log(d)) if d > 0 else 0.0)
        rows.append({
            "step": step, "eval/reward/gold": gold, "eval/reward/proxy": PROXY0 + slope * d,
            "eval/kl/sqrt": d, "eval/kl/k3": d * d, "eval/length/mean": LEN0 + grow * d / d_end,
            "eval/eos_rate": 1.0 - 0.02 * d, "eval/ensemble/std": 0.0,
        })  # fmt: skip
    return rows


def eval_samples(method: str, step: int, n: int = 64):
    """Per-sample answers for eval-{step}.json: lengths shift up, the proxy rewards length."""
    from goodhartlab.recipes.ppo_eval import Evaluation

    rng = np.random.default_rng(step + len(method))
    grow = PPO_METHODS[method][4] * step / STEPS[-1]
    lengths = rng.integers(3, 9, n) + round(grow)
    proxy = 0.3 * lengths + 0.1 * step / STEPS[-1] + rng.normal(0, 0.05, n)
    gold = 1.0 + 0.05 * step / STEPS[-1] - 0.1 * np.maximum(lengths - 9, 0)
    rows = [
        {"instruction": f"list {i % 5 + 1} fruits", "answers": ["apple , pear"],
         "answers_ids": [[1, 2, 3]], "proxy_scores": [float(p)], "gold_scores": [float(g)]}
        for i, (p, g) in enumerate(zip(proxy, gold))
    ]  # fmt: skip
    return Evaluation({}, rows, [int(x) for x in lengths], [True] * n)


def write_ppo(path: Path, method: str, with_eval_files: bool = True, with_fit: bool = True) -> Path:
    """A finished `goodhart ppo` run dir: config.yaml, metrics.jsonl, eval/, ppo_summary.json."""
    from goodhartlab.recipes import ppo
    from goodhartlab.recipes.ppo_eval import write_eval_samples

    run = RunDir.prepare(
        path, f"seed: 0\nreward:\n  kind: {'gold' if method == 'gold' else 'proxy'}\n"
    )
    for row in ppo_curve(method):
        step = row.pop("step")
        if step > 0:
            run.log(step - 5, {"reward/train": 0.1, "reward/gold": 1.0, "length/mean": 6.0})
        run.log(step, row)
        if with_eval_files:
            write_eval_samples(run, step, eval_samples(method, step))
    summary = ppo.summarize(run)
    if not with_fit:
        summary.pop("fit")
    run.write_json("ppo_summary.json", summary)
    return path


def bon_rows(alpha: float, beta: float, ns=(1, 2, 4, 8, 16, 32, 64, 128)) -> list[dict]:
    """bon_sampled_results.json rows on the exact best-of-n form, as bon.curve_rows writes."""
    kls = kl_bon(list(ns))
    return [
        {"n": int(n), "kl_bon": float(k), "proxy_score": 0.1 + 0.4 * float(k),
         "gold_score": GOLD0 + math.sqrt(k) * (alpha - beta * math.sqrt(k))}
        for n, k in zip(ns, kls)
    ]  # fmt: skip


BON_CURVES = {"single/rm_seed1": (0.5, 0.3), "single/rm_seed2": (0.4, 0.3),
              "ensemble/mean": (0.6, 0.3), "ensemble/uwo_0.5": (0.7, 0.3)}  # fmt: skip


def write_bon(path: Path) -> Path:
    """A finished `goodhart bon` run: <group>/<name>/bon_sampled_results.json + bon_summary.json."""
    from goodhartlab.runs.atomic import atomic_write_json

    curves = {name: bon_rows(*ab) for name, ab in BON_CURVES.items()}
    for name, rows in curves.items():
        atomic_write_json(path / name / "bon_sampled_results.json", rows)
    summary = {"n_prompts": 16, "n_samples": 128, "members": ["/m/rm_seed1", "/m/rm_seed2"],
               "curves": {}}  # fmt: skip
    for name, rows in curves.items():
        best = max(rows, key=lambda r: r["gold_score"])
        summary["curves"][name] = {
            "peak_n": best["n"], "peak_gold": best["gold_score"], "final_n": rows[-1]["n"],
            "final_gold": rows[-1]["gold_score"], "final_proxy": rows[-1]["proxy_score"],
            "gold_n1": rows[0]["gold_score"],
        }  # fmt: skip
    atomic_write_json(path / "bon_summary.json", summary)
    (path / "config.yaml").write_text("seed: 0\n")
    return path


RM_RESULTS = {"seed1": 0.412, "inform": 0.087}  # r(reward, length) per train-rm run


def write_rm(path: Path, r_length: float, seed: int = 1) -> Path:
    """A finished `goodhart train-rm` run: rm_summary.json + rm_seed{s}/rm_eval.json."""
    result = {"n_pairs": 500, "score_mean": 0.0, "score_std": 1.0,
              "reward_length_pearson": r_length, "accuracy_vs_labels": 0.61,
              "accuracy_vs_gold": 0.702, "n_untied_pairs": 480, "rank_corr_gold": 0.455,
              "gold_length_pearson": 0.31}  # fmt: skip
    (path / f"rm_seed{seed}").mkdir(parents=True)
    (path / f"rm_seed{seed}" / "rm_eval.json").write_text(json.dumps(result))
    summary = {"data": {"n_train": 8000}, "members": {str(seed): result}, "train_seconds": {}}
    (path / "rm_summary.json").write_text(json.dumps(summary))
    return path


def write_orpo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(
        "algo: orpo\nenv: tomato\nreward_fun: proxy\nom_divergence_type: sqrt_chi2\n"
        "om_divergence_coeffs: [0.2]\n"
    )
    results = {"final_metrics": {"reward/true": 3.1}, "iterations": 40, "om_coefs": [0.2],
               "eval": {"true": {"mean": 5.25, "ci95": 0.41, "n": 256},
                        "proxy": {"mean": 7.5, "ci95": 0.3, "n": 256}}}  # fmt: skip
    (path / "orpo_results.json").write_text(json.dumps(results))
    return path


def _stats(m: float, n: int = 3) -> dict:
    return (
        {"mean": m, "lo": m - 0.1, "hi": m + 0.1} if n > 1 else {"mean": m, "lo": None, "hi": None}
    )


# recipes/sweep.py's table: params without the seed, the regularizer's method, n ok seeds, and a
# mean with its 95% t interval (lo/hi null for one seed) per numeric summary field.
SWEEP_TABLE = [
    {"params": {"regularizer.kind": "none", "regularizer.placement": None,
                "regularizer.coef": 0.0}, "method": "none", "n": 1,
     "metrics": {"final_gold": _stats(-0.56, 1), "peak_gold": _stats(1.86, 1),
                 "fit.d_star": _stats(1.9, 1)}},
] + [
    {"params": {"regularizer.kind": kind, "regularizer.placement": place, "regularizer.coef": c},
     "method": f"{kind}_{place}", "n": 3,
     "metrics": {"final_gold": _stats(m), "peak_gold": _stats(m + 0.2), "fit.alpha": _stats(1.0),
                 "fit.d_star": _stats(2.0)}}
    for kind, place, pts in (("kl", "reward", ((0.01, 0.94), (0.05, 1.74), (0.2, 2.165))),
                             ("sqrt_chi2", "loss", ((0.01, 2.11), (0.05, 2.123), (0.2, 1.633))))
    for c, m in pts
]  # fmt: skip


def write_sweep(path: Path) -> Path:
    """sweep_summary.json in the sweep engineer's layout, with one job's PPO run inside it."""
    jobs = [{"name": "kl_reward-0.01/seed0", "out": "kl-0.01-seed0",
             "params": SWEEP_TABLE[1]["params"], "seed": 0, "status": "done", "seconds": 60.0,
             "summary": {"final_gold": 0.94}, "error": None}]  # fmt: skip
    path.mkdir(parents=True)
    write_ppo(path / "kl-0.01-seed0", "kl_reward", with_eval_files=False)
    summary = {"command": "ppo", "jobs": jobs, "table": SWEEP_TABLE}
    (path / "sweep_summary.json").write_text(json.dumps(summary))
    return path


def build_fake_runs(root: Path) -> Path:
    """A demo-like tree: ppo/<method>, bon, rm/seed1 + rm/inform, orpo/tomato, sweep."""
    for method in PPO_METHODS:
        write_ppo(root / "ppo" / method, method)
    write_bon(root / "bon")
    write_rm(root / "rm" / "seed1", RM_RESULTS["seed1"], seed=1)
    write_rm(root / "rm" / "inform", RM_RESULTS["inform"], seed=1)
    write_orpo(root / "orpo" / "tomato")
    write_sweep(root / "sweep")
    return root


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The builders and the known values behind them (test modules cannot import conftest)."""
    names = ("PPO_METHODS", "BON_CURVES", "RM_RESULTS", "SWEEP_TABLE", "bon_rows", "write_ppo",
             "write_bon", "write_rm", "write_orpo", "write_sweep", "build_fake_runs")  # fmt: skip
    return SimpleNamespace(**{n: globals()[n] for n in names})


@pytest.fixture
def fake_runs(tmp_path: Path) -> Path:
    return build_fake_runs(tmp_path / "runs")
