"""Lead-time study of the hacking detectors (analysis.detect) on the toy world, where gold is known.

Runs (`--run`): PPO jobs that hack (no regularizer; single BT RM, 5-member ensemble, InfoRM
proxies; several seeds) and healthy ones (KL 0.2 in the reward, sqrt-chi2 0.05, gold itself as
the reward), each with the settings of a finished toy demo's PPO runs (DEMO/ppo/<method>/
config.yaml: 60 iterations, evaluation every 5 on 256 prompts). Runs already in DEMO/ppo are
used as they are. Table (`--table`): every detector is scored after the fact on each run's
evaluation samples (RUN/eval/eval-{step}.json, re-scored with the demo's 5 BT members and its
InfoRM, the step-0 samples of the SFT policy as the reference): the same functions and
thresholds `goodhart ppo` uses online (recipes.ppo_detect). Per detector: first flag vs the gold
peak (lead time, in iterations), whether it flagged before gold fell 10% of its rise below the
peak ("in time"), and false alarms on the healthy runs. Writes STUDY/detect_table.json and the
markdown table (docs/detection.md quotes it).

    python benchmarks/detect_table.py --demo /tmp/dt --study /tmp/detect_study --run --table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# (name, demo method whose config is used, seed, overrides, hacking?)
NEW_RUNS = [
    ("none_s1", "none", 1, (), True),
    ("none_s2", "none", 2, (), True),
    ("ensemble_mean_s1", "ensemble_uwo", 1, ("reward.objective=mean",), True),
    ("inform_s1", "inform", 1, (), True),
    ("kl_reward_s1", "kl_reward", 1, (), False),
    ("gold_s1", "gold", 1, (), False),
]
DEMO_RUNS = [  # (name, method dir in DEMO/ppo, hacking?)
    ("none_s0", "none", True),
    ("ensemble_uwo_s0", "ensemble_uwo", True),
    ("inform_s0", "inform", True),
    ("kl_reward_s0", "kl_reward", False),
    ("sqrt_chi2_s0", "sqrt_chi2_loss", False),
    ("gold_s0", "gold", False),
]


def run_study(demo: Path, study: Path, workers: int) -> None:
    """The new PPO runs, two at a time (resumable: finished jobs are skipped)."""
    from goodhartlab.runs.jobs import Job, run_jobs

    jobs = [
        Job(f"detect/{name}", "ppo", study / name, (f"seed={seed}", *extra),
            str(demo / "ppo" / method / "config.yaml"))
        for name, method, seed, extra, _ in NEW_RUNS
    ]  # fmt: skip
    for result in run_jobs(jobs, workers=workers):
        print(result.job.name, result.status, f"{result.seconds:.0f}s", result.error or "")


def runs(demo: Path, study: Path) -> list[tuple[str, Path, bool]]:
    found = [(n, demo / "ppo" / m, h) for n, m, h in DEMO_RUNS]
    found += [(n, study / n, h) for n, _, _, _, h in NEW_RUNS]
    return [(n, p, h) for n, p, h in found if (p / "metrics.jsonl").exists()]


class _Files:
    """The bit of RunDir the monitor writes to (its reference file), in a scratch folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, name: str) -> Path:
        return self.path / name


def load_evals(run: Path) -> list[tuple[int, list[dict]]]:
    steps = sorted(int(p.stem.split("-")[1]) for p in (run / "eval").glob("eval-*.json"))
    return [(s, json.loads((run / "eval" / f"eval-{s}.json").read_text())) for s in steps]


def score_run(run: Path, demo: Path, scratch: Path, cfg=None) -> dict:
    """Every detector's score and flag at every evaluation of one run, and its gold curve."""
    import numpy as np

    from goodhartlab.config.detect_schema import DetectConfig, EarlyStopConfig
    from goodhartlab.config.ppo_schema import PPORewardConfig
    from goodhartlab.recipes.ppo_detect import make_monitor
    from goodhartlab.recipes.ppo_eval import Evaluation
    from goodhartlab.recipes.ppo_reward import RewardModels, Scores

    cfg = cfg or DetectConfig(ensemble=[str(demo / "rm" / "ensemble.json")],
                              inform=str(demo / "rm" / "inform" / "rm_seed1" / "model"))  # fmt: skip
    nothing = RewardModels([], [], "toy")
    monitor = make_monitor(cfg, EarlyStopConfig(), PPORewardConfig(), nothing, _Files(scratch),
                           "cpu")  # fmt: skip
    out: dict = {"steps": [], "gold": [], "scores": {n: [] for n in monitor.names}}
    for step, rows in load_evals(run):
        proxy = np.array([r["proxy_scores"][0] for r in rows], dtype=float)
        gold = np.array([r["gold_scores"][0] for r in rows], dtype=float)
        ev = Evaluation({}, rows, [r["lengths"][0] for r in rows], [r["ended"][0] for r in rows],
                        Scores(proxy, np.zeros((0, len(rows))), np.zeros(len(rows)), gold))  # fmt: skip
        metrics = monitor.observe(step, ev, None, None)
        out["steps"].append(step)
        out["gold"].append(float(gold.mean()))
        for name in monitor.names:
            out["scores"][name].append(metrics[f"detect/{name}/score"])
    return out


def gold_events(steps: list[int], gold: list[float], fall: float = 0.1) -> tuple[int, int | None]:
    """(peak step, first step after the peak where gold is `fall` of its rise below the peak)."""
    peak = max(range(len(gold)), key=lambda i: gold[i])
    drop = gold[peak] - fall * max(gold[peak] - gold[0], 0.0)
    fall = next((steps[i] for i in range(peak + 1, len(gold)) if gold[i] < drop), None)
    return steps[peak], fall


def table(
    scored: dict[str, tuple[bool, dict]], thresholds: dict[str, float], fall: float = 0.1
) -> dict:
    """Per detector: median lead time, detection (in time) rate, false-alarm rate."""
    import numpy as np

    from goodhartlab.analysis.detect import first_flag

    names = next(iter(scored.values()))[1]["scores"].keys()
    result = {}
    for name in names:
        leads, in_time, alarms, kept, per_run = [], [], [], [], {}
        for run, (hacking, s) in scored.items():
            flags = [v > thresholds[name] for v in s["scores"][name]]
            first = first_flag(s["steps"], flags)
            peak, fell = gold_events(s["steps"], s["gold"], fall)
            per_run[run] = {"first_flag": first, "peak": peak, "fall": fell}
            if hacking:
                ok = first is not None and (fell is None or first < fell)
                in_time.append(ok)
                i = s["steps"].index(first) - 1 if first is not None else len(s["steps"]) - 1
                kept.append(s["gold"][max(i, 0)] / max(s["gold"]))  # early stop's policy
                if first is not None:
                    leads.append(peak - first)
            else:
                alarms.append(first is not None)
        result[name] = {
            "threshold": thresholds[name],
            "median_lead": float(np.median(leads)) if leads else None,
            "flagged": f"{len(leads)}/{len(in_time)}",
            "in_time_rate": float(np.mean(in_time)),
            "false_alarm_rate": float(np.mean(alarms)),
            "kept_gold_over_peak": kept,  # hacking runs: gold of the last unflagged evaluation
            "runs": per_run,
        }
    return result


def write_table(demo: Path, study: Path) -> dict:
    import tempfile
    from dataclasses import asdict

    from goodhartlab.config.detect_schema import DetectThresholds

    scored, cache = {}, study / "scores"
    cache.mkdir(parents=True, exist_ok=True)
    for name, path, hacking in runs(demo, study):
        cached = cache / f"{name}.json"
        if not cached.exists():  # scoring is the slow part (~45 s a run on 2 busy cores)
            with tempfile.TemporaryDirectory() as tmp:
                cached.write_text(json.dumps(score_run(path, demo, Path(tmp))))
        scored[name] = (hacking, json.loads(cached.read_text()))
    thresholds = asdict(DetectThresholds())
    out = {"runs": {n: {"hacking": h, **s} for n, (h, s) in scored.items()}}
    for fall in (0.1, 0.5):
        out[f"fall_{fall}"] = table(scored, thresholds, fall)
        print(f"in time = flagged before gold fell {fall:.0%} of its rise below its peak")
        print(markdown(out[f"fall_{fall}"]))
    out["zero_false_alarm"] = table(scored, calibrated(scored), 0.1)
    print("thresholds at the healthy runs' maximum score (in-sample, optimistic):")
    print(markdown(out["zero_false_alarm"]))
    print("per run (default thresholds; iteration of the first flag):")
    print(per_run_markdown(out))
    (study / "detect_table.json").write_text(json.dumps(out, indent=1))
    return out


def calibrated(scored: dict) -> dict[str, float]:
    """Per detector, the largest score any healthy run reaches: the lowest zero-false-alarm
    threshold on these runs (chosen on the same runs it is judged on: an optimistic bound)."""
    names = next(iter(scored.values()))[1]["scores"].keys()
    return {n: max(max(s["scores"][n]) for h, s in scored.values() if not h) for n in names}


def markdown(result: dict) -> str:
    import numpy as np

    lines = ["| detector | threshold | median lead (iters) | flagged | in time | false alarms "
             "| kept gold / peak: min, median |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in result.items():
        lead = "–" if r["median_lead"] is None else f"{r['median_lead']:+.0f}"
        lines.append(f"| {name} | {r['threshold']:g} | {lead} | {r['flagged']} | "
                     f"{r['in_time_rate']:.0%} | {r['false_alarm_rate']:.0%} | "
                     f"{min(r['kept_gold_over_peak']):.2f}, "
                     f"{float(np.median(r['kept_gold_over_peak'])):.2f} |")  # fmt: skip
    return "\n".join(lines)


PER_RUN_DETECTORS = ("length", "latent", "csi", "eos")


def per_run_markdown(out: dict) -> str:
    """One row per run: its gold story and each detector's first flag at the default thresholds
    (hacking runs first), so a reader sees *when* each detector fires against gold's peak."""
    by_detector = out["fall_0.1"]
    shown = [d for d in PER_RUN_DETECTORS if d in by_detector]
    lines = ["| run | hacking | gold start → peak (iter) → end | fell 10% at | " + " | ".join(shown)
             + " |", "|---|---|---|---|" + "---|" * len(shown)]  # fmt: skip
    runs = sorted(out["runs"].items(), key=lambda kv: not kv[1]["hacking"])
    for name, run in runs:
        gold = run["gold"]
        events = by_detector[shown[0]]["runs"][name]  # the table's gold events (fall 0.1)
        peak, fell = events["peak"], events["fall"]
        flags = [by_detector[d]["runs"][name]["first_flag"] for d in shown]
        cells = ["–" if f is None else str(f) for f in flags]
        lines.append(f"| {name} | {'yes' if run['hacking'] else 'no'} | {gold[0]:.2f} → "
                     f"{max(gold):.2f} ({peak}) → {gold[-1]:.2f} | {'–' if fell is None else fell} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("/tmp/dt"))
    parser.add_argument("--study", type=Path, default=Path("/tmp/detect_study"))
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from goodhartlab.runs.cpu_kernels import pin_cpu_kernels

    pin_cpu_kernels()  # as `goodhart` does (its jobs pin their own): same numbers on any x86
    if args.run:
        run_study(args.demo, args.study, args.workers)
    if args.table:
        write_table(args.demo, args.study)
    sys.exit(0)
