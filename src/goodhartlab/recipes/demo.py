"""`goodhart demo`: the whole chain on the toy world, ending in the Goodhart report.

Reads top to bottom:
  step 1. the toy world and the SFT policy (DEMO/sft), the start and reference of everything;
  step 2. one shared set of preference pairs of SFT samples labelled by gold (DEMO/pairs), so
          every reward model learns from the same data and only the seed (or InfoRM) differs;
  step 3. the reward models as parallel jobs: a BT member per seed (DEMO/rm/seed{s}), an InfoRM
          model (DEMO/rm/inform), and the ensemble manifest DEMO/rm/ensemble.json;
  step 4. the optimizers as parallel jobs: best-of-n over the ensemble (DEMO/bon) and one PPO
          run per method (DEMO/ppo/<method>: no regularizer, KL, √χ², ensemble, length penalty,
          InfoRM, and gold itself as the ceiling);
  step 5. DEMO/report.html, a one-screen summary table and the wall time of every stage.

Independent runs go to `runs.jobs` worker processes (both cores); every stage records itself in
DEMO/stages.json when it finishes, so a killed demo rerun with --resume skips finished stages,
and finished jobs inside a stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.analysis.report import build_report as build
from goodhartlab.cli import load_command_config
from goodhartlab.config.demo_schema import DemoConfig
from goodhartlab.errors import ConfigError
from goodhartlab.models.reward import write_ensemble_manifest
from goodhartlab.recipes.train_rm import sample_toy_pairs
from goodhartlab.runs import RunDir
from goodhartlab.runs.atomic import atomic_write_json
from goodhartlab.runs.jobs import Job, check_job_configs, raise_for_failures, run_jobs
from goodhartlab.runs.progress import stage_progress

STAGES_FILE = "stages.json"
# Rough share of the demo's wall time per stage (measured at the toy sizes), for the overall bar.
STAGE_WEIGHTS = {"sft": 12, "pairs": 5, "reward_models": 25, "optimize": 55, "report": 3}


@dataclass(frozen=True)
class DemoPaths:
    """Where each product of the demo lives, and the placeholder values overrides may use."""

    root: Path

    @property
    def sft_model(self) -> Path:
        return self.root / "sft" / "model"

    def pair_file(self, split: str) -> Path:
        return self.root / "pairs" / f"prefs_{split}.jsonl"

    def member(self, seed: int) -> Path:
        return self.root / "rm" / f"seed{seed}" / f"rm_seed{seed}" / "model"

    @property
    def inform(self) -> Path:
        return self.root / "rm" / "inform" / "rm_seed1" / "model"

    @property
    def ensemble(self) -> Path:
        return self.root / "rm" / "ensemble.json"

    def placeholders(self, cfg: DemoConfig) -> dict[str, str]:
        return {
            "seed": str(cfg.seed),
            "sft": str(self.sft_model),
            "rm": str(self.member(cfg.ppo.single_rm_seed)),
            "ensemble": str(self.ensemble),
            "inform": str(self.inform),
            "pairs_train": str(self.pair_file("train")),
            "pairs_eval": str(self.pair_file("eval")),
        }


def fill(overrides: Sequence[str], values: dict[str, str]) -> tuple[str, ...]:
    """Replace `{name}` placeholders (only the known names: other braces stay as they are)."""
    out = []
    for text in overrides:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        out.append(text)
    return tuple(out)


class StageLedger:
    """DEMO/stages.json: the finished stages with their wall seconds, written after each."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.stages: dict[str, dict[str, Any]] = {}
        if resume and path.exists():
            self.stages = json.loads(path.read_text())["stages"]

    def done(self, stage: str) -> bool:
        return stage in self.stages

    def finish(self, stage: str, seconds: float, **info: Any) -> None:
        self.stages[stage] = {"seconds": round(seconds, 1), **info}
        atomic_write_json(self.path, {"stages": self.stages})


def run_stage_jobs(jobs: list, workers: int, advance: Callable[[float, str], None]) -> list:
    """Run jobs in parallel workers, advancing the bar as each ends; any failure is an error."""

    def on_result(result: Any) -> None:
        advance(1 / len(jobs), f"{result.job.name} {result.status} ({result.seconds:.0f} s)")

    results = run_jobs(jobs, workers=workers, on_result=on_result)
    raise_for_failures(results)  # after the others finished: their results are kept
    return results


def sft_jobs(cfg: DemoConfig, paths: DemoPaths) -> list:

    values = paths.placeholders(cfg)
    return [Job("sft", "sft", paths.root / "sft", fill(cfg.sft.overrides, values), cfg.sft.preset)]


def make_pairs(cfg: DemoConfig, paths: DemoPaths) -> dict[str, int]:
    """Step 2: sample the toy preference pairs once, with train-rm's own sampler and settings."""

    overrides = fill(cfg.rm.overrides, paths.placeholders(cfg))
    rm_cfg, text = load_command_config("train-rm", cfg.rm.preset, overrides)
    out = paths.pair_file("train").parent
    run = RunDir.prepare(out, text, resume=out.exists())
    sets = sample_toy_pairs(rm_cfg, run)
    return {split: len(pairs.pairs) for split, pairs in sets.items()}


def reward_model_jobs(cfg: DemoConfig, paths: DemoPaths) -> list:
    """Step 3: a train-rm job per BT seed on the shared pairs, and one InfoRM job."""

    data = ["data.train={pairs_train}", "data.eval={pairs_eval}"]
    values = paths.placeholders(cfg)
    jobs = [
        Job(f"rm/seed{s}", "train-rm", paths.root / "rm" / f"seed{s}",
            fill([*cfg.rm.overrides, *data, f"seeds=[{s}]"], values), cfg.rm.preset)
        for s in cfg.rm.seeds
    ]  # fmt: skip
    if cfg.rm.inform:
        overrides = [*cfg.rm.overrides, *data, "seeds=[1]", *cfg.rm.inform_overrides]
        jobs.append(
            Job("rm/inform", "train-rm", paths.root / "rm" / "inform", fill(overrides, values),
                cfg.rm.preset)
        )  # fmt: skip
    return jobs


def write_ensemble(cfg: DemoConfig, paths: DemoPaths) -> None:

    rows = [
        {"seed": s, "path": str(paths.member(s).relative_to(paths.ensemble.parent))}
        for s in cfg.rm.seeds
    ]
    write_ensemble_manifest(paths.ensemble, rows)


def optimize_jobs(cfg: DemoConfig, paths: DemoPaths) -> list:
    """Step 4: best-of-n first (the longest job), then one PPO run per method."""

    values = paths.placeholders(cfg)
    jobs = []
    if cfg.bon.enabled:
        jobs.append(
            Job("bon", "bon", paths.root / "bon", fill(cfg.bon.overrides, values), cfg.bon.preset)
        )
    for method, own in cfg.ppo.methods.items():
        overrides = fill([*cfg.ppo.overrides, *own, *cfg.ppo.extra_overrides], values)
        jobs.append(Job(f"ppo/{method}", "ppo", paths.root / "ppo" / method, overrides,
                        cfg.ppo.preset))  # fmt: skip
    return jobs


def check_config(cfg: DemoConfig) -> None:
    """Mistakes that would otherwise surface minutes later, inside a worker."""

    if cfg.ppo.single_rm_seed not in cfg.rm.seeds:
        raise ConfigError(f"ppo.single_rm_seed={cfg.ppo.single_rm_seed} is not in rm.seeds")
    method_overrides = [o for own in cfg.ppo.methods.values() for o in own]
    if len(cfg.rm.seeds) < 2 and any(
        "{ensemble}" in o for o in [*cfg.bon.overrides, *method_overrides]
    ):
        raise ConfigError("an ensemble ({ensemble}) needs at least two rm.seeds")
    uses_inform = any("{inform}" in o for o in method_overrides)
    if uses_inform and not cfg.rm.inform:
        raise ConfigError("a ppo method uses {inform} but rm.inform=false")
    if cfg.workers < 1:
        raise ConfigError(f"workers={cfg.workers}: must be >= 1")


def check_children(cfg: DemoConfig, paths: DemoPaths) -> None:
    """Load every child run's config (and PPO's own checks) before any work, so a typo in a
    method's overrides fails now, naming the run, not minutes later inside a worker."""

    jobs = sft_jobs(cfg, paths) + reward_model_jobs(cfg, paths) + optimize_jobs(cfg, paths)
    check_job_configs(jobs, "demo run {name}")


def collect(paths: DemoPaths, cfg: DemoConfig) -> dict[str, Any]:
    """The products' summaries, read back from their run dirs (so --resume gets them too)."""

    def read(path: Path) -> Any:
        return json.loads(path.read_text()) if path.exists() else None

    out: dict[str, Any] = {
        "world": read(paths.root / "sft" / "toyworld" / "world.json"),
        "sft": read(paths.root / "sft" / "sft_summary.json"),
        "reward_models": {},
        "bon": read(paths.root / "bon" / "bon_summary.json"),
        "ppo": {m: read(paths.root / "ppo" / m / "ppo_summary.json") for m in cfg.ppo.methods},
    }
    names = [f"seed{s}" for s in cfg.rm.seeds] + (["inform"] if cfg.rm.inform else [])
    for name in names:
        summary = read(paths.root / "rm" / name / "rm_summary.json")
        if summary:
            out["reward_models"][name] = next(iter(summary["members"].values()))
    return out


def print_summary(result: dict[str, Any], stages: dict[str, dict], report: Path | None) -> None:
    """One screen: PPO methods ranked by final gold, best-of-n peaks, stage wall times."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ppo = {m: s for m, s in result["ppo"].items() if s}
    table = Table(title="PPO on the toy world: held-out gold (the true reward) and proxy")
    for col in ("method", "peak gold", "at iter", "final gold", "final proxy", "√KL", "length"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for method, s in sorted(ppo.items(), key=lambda kv: -kv[1]["final_gold"]):
        table.add_row(
            method, f"{s['peak_gold']:.3f}", str(s["peak_step"]), f"{s['final_gold']:.3f}",
            f"{s['final_proxy']:.3f}" if s.get("final_proxy") is not None else "-",
            f"{s['final_sqrt_kl']:.2f}", f"{s['final_length']:.1f}",
        )  # fmt: skip
    console.print(table)
    if result.get("bon"):
        bon = Table(title="best-of-n: gold at its peak and at the largest n")
        for col in ("curve", "peak gold", "peak n", "final gold"):
            bon.add_column(col, justify="left" if col == "curve" else "right")
        for name, c in result["bon"]["curves"].items():
            bon.add_row(name, f"{c['peak_gold']:.3f}", str(c["peak_n"]), f"{c['final_gold']:.3f}")
        console.print(bon)
    walls = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in stages.items())
    total = sum(v["seconds"] for v in stages.values())
    console.print(f"wall time per stage: {walls}; total {total:.0f} s ({total / 60:.1f} min)")
    if report is not None:
        console.print(f"[bold]report:[/] {report}")


def build_report(paths: DemoPaths) -> Path:

    intro = (
        "Made by `goodhart demo`: one SFT policy, five Bradley-Terry reward models and an "
        "InfoRM model trained on the same gold-labelled pairs (25% label flips), then "
        "best-of-n and PPO against them. Gold is the toy world's known reward program."
    )
    return build([paths.root], paths.root, title="goodhart demo: the Goodhart report", intro=intro)


def run(cfg: DemoConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole chain; returns the summary also written to DEMO/demo_summary.json."""
    check_config(cfg)
    paths = DemoPaths(run_dir.path)
    check_children(cfg, paths)
    ledger = StageLedger(run_dir.file(STAGES_FILE), resume)
    steps: list[tuple[str, Callable[[Callable[[float, str], None]], dict]]] = [
        ("sft", lambda adv: {"jobs": len(run_stage_jobs(sft_jobs(cfg, paths), 1, adv))}),
        ("pairs", lambda adv: make_pairs(cfg, paths)),
        ("reward_models", lambda adv: _reward_models(cfg, paths, adv)),
        ("optimize", lambda adv: _optimize(cfg, paths, adv)),
    ]
    if cfg.report:
        steps.append(("report", lambda adv: {"path": str(build_report(paths))}))
    with stage_progress("demo", {name: STAGE_WEIGHTS[name] for name, _ in steps}) as bar:
        for name, step in steps:  # steps 1-5
            if ledger.done(name):
                bar.skip(name)
                continue
            tic = time.perf_counter()
            with bar.stage(name) as advance:
                info = step(advance)
            ledger.finish(name, time.perf_counter() - tic, **info)
    result = collect(paths, cfg) | {"stages": ledger.stages}
    run_dir.write_json("demo_summary.json", result)
    report = run_dir.file("report.html") if cfg.report else None
    print_summary(result, ledger.stages, report)
    return result


def _optimize(cfg: DemoConfig, paths: DemoPaths, advance: Callable) -> dict:
    return {"jobs": len(run_stage_jobs(optimize_jobs(cfg, paths), cfg.workers, advance))}


def _reward_models(cfg: DemoConfig, paths: DemoPaths, advance: Callable) -> dict:
    results = run_stage_jobs(reward_model_jobs(cfg, paths), cfg.workers, advance)
    write_ensemble(cfg, paths)
    return {"jobs": len(results)}
