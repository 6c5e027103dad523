"""`goodhart sweep`: a grid of runs of one command over seeds, as resumable parallel jobs.

Reads top to bottom: 1 expand regularizers x grid x seeds into jobs (RUN/jobs/<cell>/seed<s>/),
2 load every job's config (and the recipe's `check_config`) before any work, so a typo fails in
a second rather than after an hour, 3 run the jobs (`runs.jobs`: `workers` at a time, on local
processes or Ray; finished jobs are skipped, killed ones resume), 4 aggregate over seeds (mean
and a 95% Student-t interval of every numeric summary field) into RUN/sweep_summary.json,
5 plot `plot_metric` against the coefficient and print the table. Failed jobs are listed, and
after the others have finished the sweep raises `JobsFailed` (non-zero exit).

`--resume` is how a sweep dir is reopened (the CLI refuses a non-empty dir without it); which
jobs run then is decided by each job's own dir, not by the flag.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

from goodhartlab.analysis.plots import lines
from goodhartlab.analysis.report_sections import _sweep_lines
from goodhartlab.cli import COMMANDS
from goodhartlab.config.sweep_schema import RegularizerSweep, SweepConfig
from goodhartlab.core.curves import t_quantile
from goodhartlab.errors import ConfigError
from goodhartlab.runs import RunDir
from goodhartlab.runs.jobs import Job, check_job_configs, raise_for_failures, read_done, run_jobs
from goodhartlab.runs.progress import progress_bar

SUMMARY_FILE = "sweep_summary.json"
COEF_KEY = "regularizer.coef"


@dataclass
class Cell:
    """One point of the grid: its directory label, its parameters and the overrides they make."""

    label: str
    params: dict[str, Any]  # config key -> value, without the seed
    overrides: tuple[str, ...]
    method: str = ""  # the regularizer's "kind_placement" ("none", "kl_reward", ...), if any


@dataclass
class Planned:
    cell: Cell
    seed: int
    job: Any  # runs.jobs.Job


# ---------------------------------------------------------------- 1 the jobs


def _value_text(value: Any) -> str:
    """An override's right-hand side: JSON is YAML, and the loader reads `1e-05` as a float."""
    return json.dumps(value)


def _slug(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "x"


def regularizer_cells(entries: list[RegularizerSweep]) -> list[Cell]:
    cells = []
    for reg in entries:
        if reg.kind == "none":
            params = {"regularizer.kind": "none", "regularizer.placement": None, COEF_KEY: 0.0}
            cells.append(Cell("none", params, ("regularizer.kind=none", f"{COEF_KEY}=0.0"), "none"))
            continue
        placement = reg.resolved_placement()
        method = f"{reg.kind}_{placement}"
        for coef in reg.coefs:
            params = {"regularizer.kind": reg.kind, "regularizer.placement": placement,
                      COEF_KEY: coef}  # fmt: skip
            overrides = tuple(f"{k}={_value_text(v)}" for k, v in params.items())
            cells.append(Cell(f"{method}-{_slug(coef)}", params, overrides, method))
    return cells


def grid_cells(grid: dict[str, list[Any]]) -> list[Cell]:
    keys = list(grid)
    cells = []
    for values in itertools.product(*(grid[k] for k in keys)):
        label = "_".join(f"{k.rsplit('.', 1)[-1]}-{_slug(v)}" for k, v in zip(keys, values))
        overrides = tuple(f"{k}={_value_text(v)}" for k, v in zip(keys, values))
        cells.append(Cell(label, dict(zip(keys, values)), overrides))
    return cells


def cells(cfg: SweepConfig) -> list[Cell]:
    """Regularizer entries x grid combinations, in that order (each may be absent)."""
    out = []
    for reg in regularizer_cells(cfg.regularizers) or [Cell("", {}, ())]:
        for grid in grid_cells(cfg.grid):
            label = "_".join(p for p in (reg.label, grid.label) if p) or "base"
            params = {**reg.params, **grid.params}
            out.append(Cell(label, params, reg.overrides + grid.overrides, reg.method))
    return out


def plan(cfg: SweepConfig, run_dir: RunDir) -> list[Planned]:

    planned = []
    for cell in cells(cfg):
        for seed in cfg.seeds:
            name = f"{cell.label}/seed{seed}"
            overrides = (*cfg.overrides, *cell.overrides, f"{cfg.seed_key}={seed}")
            job = Job(name, cfg.command, run_dir.path / "jobs" / name, overrides, cfg.base)
            planned.append(Planned(cell, seed, job))
    return planned


# ---------------------------------------------------------------- 2 configs, before any work


def check_config(cfg: SweepConfig, planned: list[Planned]) -> None:
    """Every job's config loads and passes its recipe's own checks, or one error line."""

    if cfg.command not in COMMANDS:
        raise ConfigError(f"command: unknown '{cfg.command}' (allowed: {', '.join(COMMANDS)})")
    check_job_configs([p.job for p in planned], "sweep job '{name}'")


# ---------------------------------------------------------------- 4 aggregation


def mean_interval(values: list[float]) -> dict[str, float | None]:
    """Mean and the 95% Student-t interval of the mean (lo, hi are None for one value).

    The quantile is `core.curves.t_quantile` (no scipy: users may not have it), exact for 1 and
    2 degrees of freedom and within 0.2% of scipy's from 3 on (tests/recipes/test_sweep.py).
    """

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "lo": None, "hi": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def numeric_fields(summary: dict | None, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a summary, nested dicts flattened to dotted keys (bools are not)."""
    out: dict[str, float] = {}
    for key, value in (summary or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numeric_fields(value, name + "."))
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            out[name] = float(value)
    return out


def aggregate(cfg: SweepConfig, planned: list[Planned], results: list, run_dir: RunDir) -> dict:
    """RUN/sweep_summary.json's content: one entry per job, one table row per cell."""

    jobs, by_cell = [], {}
    for p, result in zip(planned, results):
        done = read_done(p.job.out) if result.status != "failed" else None
        jobs.append({
            "name": p.job.name, "out": str(p.job.out.relative_to(run_dir.path)),
            "params": p.cell.params, "seed": p.seed, "status": result.status,
            "seconds": (done or {}).get("seconds", round(result.seconds, 3)),
            "summary": result.summary, "error": result.error,
        })  # fmt: skip
        by_cell.setdefault(p.cell.label, (p.cell, []))[1].append(result)
    table = []
    for cell, cell_results in by_cell.values():
        ok = [numeric_fields(r.summary) for r in cell_results if r.status != "failed"]
        keys = list(dict.fromkeys(k for fields in ok for k in fields))
        metrics = {k: mean_interval([f[k] for f in ok if k in f]) for k in keys}
        table.append({"params": cell.params, "method": cell.method, "n": len(ok),
                      "metrics": metrics})  # fmt: skip
    return {"command": cfg.command, "jobs": jobs, "table": table}


# ---------------------------------------------------------------- 5 plot and table


def plot(run_dir: RunDir, table: list[dict], metric: str) -> None:
    """`metric` against the coefficient, one line per regularizer (x grid cell), with bands.

    The lines are the report's (`report_sections._sweep_lines`), so the sweep's own figure and
    its figure in report.html show the same thing.
    """

    series = _sweep_lines(table, metric)
    if not series:
        return
    positive = [x for s in series for x in s.x if x > 0]
    wide = bool(positive) and max(positive) / min(positive) >= 20
    lines(run_dir.file(f"sweep_{metric.replace('.', '_')}.png"), series, "regularizer coefficient",
          f"{metric} (mean, 95% t interval over seeds)", f"sweep: {metric} vs coefficient",
          xscale="symlog" if wide else "linear")  # fmt: skip


def print_table(cfg: SweepConfig, summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary["table"]
    present = [m for m in cfg.metrics if any(m in r["metrics"] for r in rows)]
    shown = present or list(dict.fromkeys(k for r in rows for k in r["metrics"]))[:5]
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    table = Table(title=f"goodhart sweep: {cfg.command}, mean [95% t interval] over seeds")
    for col in [*(k.rsplit(".", 1)[-1] for k in keys), "n", *shown]:
        table.add_column(col)
    for r in rows:
        cells = ["-" if r["params"].get(k) is None else str(r["params"][k]) for k in keys]
        for m in shown:
            s = r["metrics"].get(m)
            text = "-" if s is None else f"{s['mean']:.3f}"
            if s is not None and s["lo"] is not None:
                text += f" [{s['lo']:.2f}, {s['hi']:.2f}]"
            cells.append(text)
        table.add_row(*cells[: len(keys)], str(r["n"]), *cells[len(keys) :])
    Console().print(table)


# ---------------------------------------------------------------- the recipe


def run(cfg: SweepConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole sweep; returns the summary also written to RUN/sweep_summary.json."""

    # step 1. plan the grid of jobs and check every child config before anything runs
    planned = plan(cfg, run_dir)
    check_config(cfg, planned)
    # step 2. run the jobs (a failed job is reported and the others go on)
    with progress_bar(f"sweep {cfg.command}", len(planned)) as advance:

        def on_result(result: Any) -> None:
            if result.status == "failed":
                log = result.job.out / "job.log"
                print(f"job {result.job.name} failed: {result.error} (log: {log})",
                      file=sys.stderr, flush=True)  # fmt: skip
            advance(1, info=f"{result.job.name} {result.status}")

        jobs = [p.job for p in planned]
        results = run_jobs(jobs, cfg.workers, cfg.backend, on_result=on_result)
    # step 3. the table over the grid, its plot; a failure makes the sweep fail at the end
    summary = aggregate(cfg, planned, results, run_dir)
    run_dir.write_json(SUMMARY_FILE, summary)
    plot(run_dir, summary["table"], cfg.plot_metric)
    print_table(cfg, summary)
    raise_for_failures(results)
    return summary
