"""The cached toy models behind "toy:sft", "toy:rm-ensemble" and "toy:rm" (its seed-1 member).

Why: recipes default their inputs to the toy world (DESIGN.md §4), so `goodhart train-rm` or
`goodhart ppo` with no arguments needs an SFT policy; it is trained once with the SFT defaults
and reused from `$GOODHART_CACHE` (default ~/.cache/goodhartlab).

It lives among the recipes (not in `toyworld/`) because it runs the `sft` and `train-rm` recipes:
the toy world itself is data and gold reward only, and imports point down (docs/architecture.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from goodhartlab.config import dump_config
from goodhartlab.config.schemas import SFTConfig, TrainRMConfig
from goodhartlab.runs import RunDir
from goodhartlab.runs.cpu_kernels import pin_cpu_kernels

TOY_SFT = "toy:sft"
# Bumped whenever the toy world or the recipes' defaults change what a cached model would be,
# so a stale cache is never reused (v2: the teacher lists items in canonical order; v3: built with
# portable CPU kernels, runs.cpu_kernels, so every x86 machine builds the same models).
CACHE_VERSION = 3


def cache_tag() -> str:
    """`v3`, or `v3-native` for models built with this machine's own kernel choice (which another
    machine would not reproduce), so the two never stand in for each other.

    It pins the kernels itself (idempotent): a notebook that builds the cache without going
    through the CLI must not file a natively built model under the portable name."""
    native = "-native" if pin_cpu_kernels() == "native" else ""
    return f"v{CACHE_VERSION}{native}"


def cache_root() -> Path:
    return Path(os.environ.get("GOODHART_CACHE", Path.home() / ".cache" / "goodhartlab"))


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One process builds a cached model; others wait for it (parallel sweeps, tests)."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_toy_sft(seed: int = 0) -> Path:
    """Directory of the toy SFT policy for `seed`, training it (resumably) when missing."""
    from goodhartlab.recipes import sft

    out = cache_root() / f"toy-sft-{cache_tag()}-seed{seed}"
    model = sft.model_path(out)
    with _locked(out):
        if (model / "config.json").exists():
            return model
        cfg = SFTConfig(seed=seed)
        print(f"training the toy SFT policy once into {out} (reused afterwards)")
        run = RunDir.prepare(out, dump_config(cfg), resume=(out / "config.yaml").exists())
        sft.run(cfg, run, resume=(out / "checkpoints" / "latest").exists())
    return model


def resolve_source(source: str, seed: int = 0) -> str:
    """Map "toy:sft" to the cached policy directory; other sources pass through."""
    return str(cached_toy_sft(seed)) if source == TOY_SFT else source


TOY_RM_ENSEMBLE = "toy:rm-ensemble"
TOY_RM = "toy:rm"  # member seed 1 of the cached ensemble: the single-RM default
TOY_RM_SEEDS = (1, 2, 3, 4, 5)


def cached_toy_rm_ensemble() -> Path:
    """Run dir of the toy 5-seed reward-model ensemble (train-rm defaults), trained once."""
    from goodhartlab.recipes import train_rm

    out = cache_root() / f"toy-rm-ensemble-{cache_tag()}"
    with _locked(out):
        if (out / "ensemble.json").exists():
            return out
        cfg = TrainRMConfig(seeds=list(TOY_RM_SEEDS))
        print(f"training the toy reward-model ensemble once into {out} (reused afterwards)")
        run = RunDir.prepare(out, dump_config(cfg), resume=(out / "config.yaml").exists())
        train_rm.run(cfg, run, resume=(out / "config.yaml").exists())
    return out


def resolve_reward_source(source: str) -> str:
    """Map "toy:rm-ensemble" to the cached ensemble's run dir and "toy:rm" to its seed-1 member;
    other sources pass through."""
    if source == TOY_RM_ENSEMBLE:
        return str(cached_toy_rm_ensemble())
    if source == TOY_RM:
        return str(cached_toy_rm_ensemble() / f"rm_seed{TOY_RM_SEEDS[0]}" / "model")
    return source
