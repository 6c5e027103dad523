"""Typed configuration of `goodhart sweep`: a grid of runs of one command, over seeds.

Defaults are the toy-world PPO table (configs/sweep/toy.yaml must equal them): no regularizer,
KL in the reward and √χ² in the loss at three coefficients each, three seeds; the jobs the
hand-written benchmarks/ppo_table.py used to launch. Import-light: dataclasses only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from goodhartlab.config.schemas import _f

# Where each kind of `goodhart ppo` regularizer belongs when `placement` is not given: the seeds
# put KL per token in the reward; χ² and √χ² are sequence-level loss terms (ppo refuses others).
NATURAL_PLACEMENT = {"kl": "reward", "chi2": "loss", "sqrt_chi2": "loss"}
NOT_SWEEPABLE = ("sweep",)
PPO_METRICS = (
    "peak_gold",
    "final_gold",
    "final_proxy",
    "final_sqrt_kl",
    "final_length",
)  # a sweep of sweeps would nest job pools


_EXP_ONLY = re.compile(r"[-+]?\d+[eE][-+]?\d+")


def _number(value: Any) -> Any:
    """`1e-4` as a float: YAML 1.1 reads exponent forms without a dot as text, and grid values
    are untyped (the loader fixes this only for fields it knows are floats)."""
    return float(value) if isinstance(value, str) and _EXP_ONLY.fullmatch(value) else value


@dataclass
class RegularizerSweep:
    """One regularizer of a PPO sweep and the coefficients to try with it.

    Why a list of these rather than a grid over kind x coef: the product would make nonsense
    cells (kind=none with coef 0.1 is a config error in ppo; kl and chi2 want other scales).
    """

    kind: Literal["none", "kl", "chi2", "sqrt_chi2"] = _f("none", "regularizer.kind of the jobs")
    placement: Literal["reward", "loss"] | None = _f(
        None, "regularizer.placement (null: kl in the reward, chi2 / sqrt_chi2 in the loss)"
    )
    coefs: list[float] = field(
        default_factory=list,
        metadata={"help": "regularizer.coef values, one job each (kind none: leave empty)"},
    )

    def __post_init__(self) -> None:
        if self.kind == "none" and any(c != 0 for c in self.coefs):
            raise ValueError("coefs: kind none takes no coefficient (leave coefs empty)")
        if self.kind != "none" and not self.coefs:
            raise ValueError(f"coefs: give at least one coefficient for kind {self.kind}")

    def resolved_placement(self) -> str | None:
        """The placement given, else where the kind belongs (None for kind none)."""
        return self.placement or NATURAL_PLACEMENT.get(self.kind)


def _default_regularizers() -> list[RegularizerSweep]:
    return [
        RegularizerSweep("none", None, []),
        RegularizerSweep("kl", "reward", [0.02, 0.05, 0.1]),
        RegularizerSweep("sqrt_chi2", "loss", [0.02, 0.05, 0.1]),
    ]


@dataclass
class SweepConfig:
    command: str = _f("ppo", "the goodhart command every job runs (any but sweep)")
    base: str = _f("toy", "that command's preset name or YAML path")
    overrides: list[str] = field(
        default_factory=list, metadata={"help": "key=value overrides applied to every job"}
    )
    grid: dict[str, list[Any]] = field(
        default_factory=dict,
        metadata={"help": "config key -> values; every combination is a job (e.g. ppo.lr)"},
    )
    regularizers: list[RegularizerSweep] = field(
        default_factory=_default_regularizers,
        metadata={"help": "ppo only: (kind, placement, coefs) entries, crossed with the grid"},
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2], metadata={"help": "one job per seed of every cell"}
    )
    seed_key: str = _f("seed", "the command's config key each job's seed goes to")
    backend: Literal["process", "ray"] = _f(
        "process", "local worker processes, or Ray tasks ($RAY_ADDRESS or a local cluster)"
    )
    workers: int = _f(2, "jobs at a time (process workers / local Ray CPUs)")
    metrics: list[str] = field(
        default_factory=lambda: list(PPO_METRICS),
        metadata={"help": "summary metrics printed in the table (all numeric ones are saved)"},
    )
    plot_metric: str = _f("final_gold", "metric plotted against the coefficient")

    def __post_init__(self) -> None:
        if self.command in NOT_SWEEPABLE:
            raise ValueError(f"command: '{self.command}' cannot be swept")
        if self.regularizers and self.command != "ppo":
            raise ValueError(
                f"regularizers: only for command ppo; use grid (and regularizers: []) "
                f"for {self.command}"
            )
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: listed twice in {self.seeds}")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid: '{key}' needs a non-empty list of values")
            self.grid[key] = [_number(v) for v in values]
        if self.workers < 1:
            raise ValueError("workers: must be >= 1")
