"""ORPO traffic rows (SUMO merge): base, proxy PPO, regularized, true-reward PPO on several seeds.

"ORPO" = occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's ORPO.

Run:  PYTHONPATH=src python benchmarks/traffic_table.py --seeds 0 1 2 --out DIR \
          [--methods no_reg ad_kl om_kl:0.05 ...] [--set key=value ...]

The traffic env costs ~1 ms of SUMO per step, so the coefficient grids of `orpo_table.py` do not
fit a 2-core machine; this runs one coefficient per method (default: the 7 rows base, no_reg,
AD-KL, OM-KL, OM-chi2, OM-sqrt-chi2, true reward at `orpo_table.ONE_COEF`; `name:coef` picks
another) with the preset configs/orpo/traffic.yaml through `orpo_table._job` (same
base-per-seed sharing, same result rows), one run at a time. Besides the mean and Student-t
95% interval over seeds, it prints "hacked": the fraction of seeds whose true return is below that
seed's base policy while the proxy return is above it. `--set` overrides every run's config
(base included), e.g. `bc.controller_eps=0.125`. Also prints the scripted policies' returns
(IDM, zero acceleration, full braking, full throttle) over one 300-step episode, which show what
the proxy and the true reward each prefer.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from orpo_table import METHODS, ONE_COEF, T95, _job

SCRIPTED = {"idm": None, "zero": 0.0, "brake": -1.5, "throttle": 1.5}


def scripted_returns(horizon: int = 300) -> dict[str, dict[str, float]]:
    """Summed true/proxy reward of each scripted policy over one episode (deterministic)."""
    from goodhartlab.envs.traffic import IDMController, TrafficEnv

    env, idm, out = TrafficEnv(horizon=horizon), IDMController(), {}
    for name, accel in SCRIPTED.items():
        obs, _ = env.reset(seed=0)
        true = proxy = 0.0
        for _ in range(horizon):
            action = idm(obs[None])[0] if accel is None else np.full(10, accel, np.float32)
            obs, _, terminated, truncated, info = env.step(action)
            true, proxy = true + info["true_reward"], proxy + info["proxy_reward"]
            if terminated or truncated:
                break
        out[name] = {"true": true, "proxy": proxy}
    env.close()
    return out


def table_lines(rows: list[dict]) -> list[str]:
    base = {r["seed"]: r for r in rows if r["method"] == "base"}
    lines = []
    for key in dict.fromkeys((r["method"], r["coef"]) for r in rows):
        runs = [r for r in rows if (r["method"], r["coef"]) == key]
        true = np.array([r["true"] for r in runs])
        n = len(true)
        half = T95.get(n, 1.96) * true.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
        hacked = sum(
            r["true"] < base[r["seed"]]["true"] and r["proxy"] > base[r["seed"]]["proxy"]
            for r in runs
        )
        proxy = np.mean([r["proxy"] for r in runs])
        seconds = np.mean([r["seconds"] for r in runs])
        lines.append(
            f"| {key[0]} | {key[1]:g} | {true.mean():,.0f} ± {half:,.0f} | {proxy:,.1f} | "
            f"{hacked}/{n} | {seconds:.0f} |"
        )
    return lines


def parse_method(text: str) -> tuple[str, float]:
    """'om_kl:0.2' -> ('om_kl', 0.2); a bare regularizer takes its `ONE_COEF`, no_reg and
    true_reward 0. An unknown name exits with one line."""
    name, _, coef = text.partition(":")
    if name not in METHODS:
        raise SystemExit(f"traffic_table: unknown method {name!r} (allowed: {', '.join(METHODS)})")
    try:
        return name, float(coef) if coef else ONE_COEF.get(name, 0.0)
    except ValueError:
        raise SystemExit(f"traffic_table: bad coefficient in {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, help="NAME or NAME:COEF")
    parser.add_argument("--out", default="runs/traffic_table")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for every run")
    args = parser.parse_args()
    extra = tuple(args.set)
    out = Path(args.out) / "traffic"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scripted = scripted_returns()
    rows = [_job(("traffic", s, "base", 0.0, str(out), extra)) for s in args.seeds]
    for name, coef in map(parse_method, args.methods):
        rows += [_job(("traffic", s, name, coef, str(out), extra)) for s in args.seeds]
    print("\n| scripted policy (1 episode) | true return | proxy return |\n|---|---|---|")
    for name, result in scripted.items():
        print(f"| {name} | {result['true']:,.0f} | {result['proxy']:,.1f} |")
    print(f"\n| method | coef | true return (95% CI, {len(args.seeds)} seeds) | proxy | hacked |"
          " s/run |\n|---|---|---|---|---|---|")  # fmt: skip
    print("\n".join(table_lines(rows)))
    print(f"wall {time.perf_counter() - start:.0f} s")
    table = {"rows": rows, "scripted": scripted, "overrides": list(extra)}
    (out / "table.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
