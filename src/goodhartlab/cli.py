"""`goodhart <command> [--config PRESET_OR_PATH] [key.sub=value ...] [--out RUN_DIR] [--resume]`.

A literal registry maps each command to its recipe module and config class, imported lazily so
`goodhart --help` stays instant (DESIGN.md §4). User mistakes (bad config, bad data) print one
line and exit with their code (2 for config); any other exception escaping a recipe prints one
line `goodhart <command>: error: <Type>: <message>` and exits 1. `GOODHART_DEBUG=1` re-raises
either with its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Command:
    module: str  # recipe module with `run(cfg, run_dir, resume) -> dict`
    config_class: str  # class name in `config_module`
    summary: str
    config_module: str = "goodhartlab.config.schemas"
    multi_process: bool = False  # runs data-parallel under torchrun / accelerate launch


COMMANDS: dict[str, Command] = {
    "toyworld": Command(
        "goodhartlab.recipes.toyworld", "ToyWorldConfig", "write the toy world's data + tokenizer"
    ),
    "sft": Command(
        "goodhartlab.recipes.sft",
        "SFTConfig",
        "supervised fine-tuning of a policy",
        multi_process=True,
    ),
    "train-rm": Command(
        "goodhartlab.recipes.train_rm",
        "TrainRMConfig",
        "train reward models (BT / InfoRM), seeds",
        multi_process=True,
    ),
    "bon": Command(
        "goodhartlab.recipes.bon",
        "BonConfig",
        "best-of-n curves (unbiased estimator) for RMs and ensembles",
        config_module="goodhartlab.config.bon_schema",
    ),
    "ppo": Command(
        "goodhartlab.recipes.ppo",
        "PPOConfig",
        "PPO for language models: proxy / ensemble / gold / length rewards, KL, chi2, sqrt-chi2",
        config_module="goodhartlab.config.ppo_schema",
        multi_process=True,
    ),
    "evaluate": Command(
        "goodhartlab.recipes.evaluate",
        "EvaluateConfig",
        "answer held-out prompts with a policy checkpoint; proxy and gold scores",
        config_module="goodhartlab.config.ppo_schema",
    ),
    "evaluate-rm": Command(
        "goodhartlab.recipes.evaluate_rm",
        "EvaluateRMConfig",
        "reward-model accuracy vs gold, rank and length correlations (also `evaluate rm`)",
    ),
    "evaluate-latents": Command(
        "goodhartlab.recipes.evaluate_latents",
        "EvaluateLatentsConfig",
        "InfoRM latents of SFT vs RLHF samples: outlier rate per checkpoint, 2-D plot "
        "(also `evaluate latents`)",
        config_module="goodhartlab.config.detect_schema",
    ),
    "score": Command(
        "goodhartlab.recipes.score",
        "ScoreConfig",
        "score an existing generation file: goodhart score FILE --rm RM [--rm RM2] [--gold G]",
        config_module="goodhartlab.config.score_schema",
    ),
    "orpo": Command(
        "goodhartlab.recipes.orpo",
        "OrpoConfig",
        "occupancy-measure regularized PPO on gym envs (not odds-ratio PO)",
        config_module="goodhartlab.config.orpo_schema",
    ),
    "demo": Command(
        "goodhartlab.recipes.demo",
        "DemoConfig",
        "the whole chain on the toy world: RMs, best-of-n, PPO with every cure, report.html",
        config_module="goodhartlab.config.demo_schema",
    ),
    "sweep": Command(
        "goodhartlab.recipes.sweep",
        "SweepConfig",
        "a grid of runs (coefficients x seeds x any keys) as resumable parallel jobs (Ray optional)",
        config_module="goodhartlab.config.sweep_schema",
    ),
}
# Commands with their own argument parsing (positional run dirs): module with `main(argv) -> int`.
STANDALONE: dict[str, tuple[str, str]] = {
    "report": ("goodhartlab.recipes.report", "the Goodhart report (report.html) of finished runs"),
}
DEFAULT_PRESET = "toy"
EPILOG = (
    "Every command takes --config PRESET_OR_PATH (presets: configs/<command>/*.yaml; "
    "'toy' is the default, 'smoke' runs in seconds), key.sub=value overrides, --out RUN_DIR "
    "and --resume. `goodhart validate <command> --config X` checks a config without running."
)


def _config_class(command: str):
    spec = COMMANDS[command]
    return getattr(importlib.import_module(spec.config_module), spec.config_class)


def _command_help(command: str) -> str:
    from goodhartlab.config import config_fields

    lines = [f"goodhart {command}: {COMMANDS[command].summary}", "", "config fields:"]
    for info in config_fields(_config_class(command)):
        lines.append(f"  {info.name} = {info.default}  ({info.type}) {info.help}")
    return "\n".join(lines)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"goodhart {command}",
        description=COMMANDS[command].summary,
        add_help=False,
    )
    parser.add_argument("--config", default=DEFAULT_PRESET, help="preset name or YAML path")
    parser.add_argument("--out", default=None, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue a killed run")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("overrides", nargs="*", help="key.sub=value")
    return parser


def load_command_config(command: str, config: str | None, overrides: Sequence[str]):
    """Resolve the preset, load it strictly, apply overrides: (config object, YAML text)."""
    from goodhartlab.config import dump_config, find_configs_dir, load_config, resolve_config_path

    # Outside a checkout (a plain wheel install) there is no configs/ folder; the default preset
    # 'toy' equals the classes' defaults (a test holds them equal), so it needs no file.
    default_only = config == DEFAULT_PRESET and find_configs_dir() is None
    path = None if default_only else resolve_config_path(command, config)
    cfg = load_config(_config_class(command), path, overrides)
    return cfg, dump_config(cfg)


def set_cpu_threads() -> int:
    """torch's CPU threads: $GOODHART_THREADS, default 1.

    Why 1: the toy world's models are far too small for intra-op parallelism, and with two
    threads per process on a busy 2-core machine, OpenMP's spinning made a toy PPO step ~15x
    slower (measured: 127 ms vs 1.96 s for one forward+backward). Raise it for real models on CPU;
    on a GPU it does not matter.

    It first pins the CPU kernels (`runs.cpu_kernels`: the same numbers on any x86 machine),
    which must happen before torch runs its first op.
    """
    from goodhartlab.runs.cpu_kernels import pin_cpu_kernels

    pin_cpu_kernels()
    import torch

    threads = int(os.environ.get("GOODHART_THREADS", "1"))
    torch.set_num_threads(threads)
    return threads


def run_command(command: str, argv: Sequence[str]) -> int:

    args = _parser(command).parse_intermixed_args(argv)
    if args.help:
        print(_command_help(command))
        return 0
    cfg, text = load_command_config(command, args.config, args.overrides)
    set_cpu_threads()
    from goodhartlab.runs import RunDir, distributed

    _join_processes(command, cfg)
    out = Path(args.out or f"runs/{command}-{time.strftime('%Y%m%d-%H%M%S')}")
    kept = out.is_dir() and not any(out.iterdir())  # an empty dir the user made stays, emptied
    fresh = not args.resume and (kept or not out.exists())
    run_dir = RunDir.prepare(out, text, resume=args.resume)
    recipe = importlib.import_module(COMMANDS[command].module)
    try:
        recipe.run(cfg, run_dir, resume=args.resume)
    except Exception:  # GoodhartError or not: main prints it; a fresh run leaves no blocker
        if distributed.is_main_process():
            worth_keeping = getattr(recipe, "worth_keeping", None)
            keep = worth_keeping is not None and worth_keeping(cfg, run_dir)
            _discard_if_nothing_to_resume(run_dir, fresh=fresh, keep_dir=kept, keep=keep)
        raise
    distributed.finish()
    if distributed.is_main_process():
        print(f"goodhart {command}: done; outputs in {out}")
    return 0


def _join_processes(command: str, cfg) -> None:
    """Under torchrun / `accelerate launch` (WORLD_SIZE > 1): join the process group, or refuse
    a command that would run N colliding copies of itself."""
    from goodhartlab.errors import ConfigError
    from goodhartlab.runs import distributed, sharding

    if distributed.world_size() <= 1:
        return
    if not COMMANDS[command].multi_process:
        allowed = ", ".join(name for name, c in COMMANDS.items() if c.multi_process)
        raise ConfigError(
            f"goodhart {command} runs in one process (WORLD_SIZE={distributed.world_size()}); "
            f"multi-process training: {allowed}"
        )
    sharding.check_launch(command)  # FSDP for sft / train-rm; DeepSpeed: one line, refused
    distributed.init(getattr(cfg, "device", "auto"))


def _discard_if_nothing_to_resume(
    run_dir, fresh: bool, keep_dir: bool = False, keep: bool = False
) -> None:
    """A fresh run that failed on bad input before its first checkpoint leaves no directory.

    Why: a half-made run dir would block the corrected rerun ("not empty") and could be mistaken
    for results. A run that has checkpoints is kept, so `--resume` can continue it, and so is one
    whose recipe says it holds finished work (`worth_keeping`: bon's drawn samples); a note says so.
    """
    import shutil

    if not fresh:
        return
    # Anywhere below RUN: train-rm keeps checkpoints per member, and a demo or sweep keeps its
    # finished child runs (their job.log) that the error message points at.
    resumable = ("**/trainer_state.json", "**/job.log")
    if keep or any(next(run_dir.path.glob(p), None) for p in resumable):
        # on stdout: stderr keeps its one error line
        print(
            f"goodhart: note: kept {run_dir.path}: it holds finished work that --resume continues"
        )
        return
    shutil.rmtree(run_dir.path, ignore_errors=True)
    if keep_dir:
        run_dir.path.mkdir(parents=True, exist_ok=True)


def validate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="goodhart validate")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", default=DEFAULT_PRESET)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    cfg, text = load_command_config(args.command, args.config, args.overrides)
    check_command_config(args.command, cfg)
    print(f"goodhart validate: {args.command} config OK")
    print(text, end="")
    return 0


def check_command_config(command: str, cfg) -> None:
    """The recipe's cross-field checks (`check_config(cfg)`, e.g. ppo's minibatch divides the
    batch), when it has one that needs nothing but the config."""
    import inspect

    check = getattr(importlib.import_module(COMMANDS[command].module), "check_config", None)
    if check is not None and len(inspect.signature(check).parameters) == 1:
        check(cfg)


def _top_help() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    rows += [f"  {name:<{width}}  {summary}" for name, (_, summary) in STANDALONE.items()]
    rows.append(f"  {'validate':<{width}}  check a config without running")
    return "\n".join(
        [
            "usage: goodhart <command> [--config PRESET_OR_PATH] [key=value ...] [--out DIR]",
            "",
            "goodhartlab: measure and mitigate reward hacking (reward-model overoptimization).",
            "",
            "commands:",
            *rows,
            "",
            EPILOG,
        ]
    )


def _flag_to_override(args: list[str], flag: str, key: str) -> list[str]:
    """`--checkpoint DIR` (the seeds' spelling) is the override `checkpoint=DIR`."""
    out, i = [], 0
    while i < len(args):
        if args[i] == flag and i + 1 < len(args):
            out.append(f"{key}={args[i + 1]}")
            i += 2
        elif args[i].startswith(flag + "="):
            out.append(f"{key}={args[i].split('=', 1)[1]}")
            i += 1
        else:
            out.append(args[i])
            i += 1
    return out


def quiet_libraries() -> None:
    """What every command (in the CLI or a job worker) sets before it runs: no tokenizer
    fork warnings, and no transformers per-file load/save bars, which drown our own progress
    lines ($HF_HUB_DISABLE_PROGRESS_BARS=0 brings them back)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
        # imported before us (a notebook, a test): it read the variable already
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    from goodhartlab.errors import GoodhartError

    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "evaluate" and rest[:1] == ["rm"]:  # `goodhart evaluate rm ...`
        command, rest = "evaluate-rm", rest[1:]
    if command == "evaluate" and rest[:1] == ["latents"]:  # repeated --checkpoint: a list
        command = "evaluate-latents"
        from goodhartlab.recipes.short_forms import latents_args  # stdlib only: quick --help

        rest = latents_args(rest[1:])
    if command == "score" or (command == "validate" and rest[:1] == ["score"]):
        at = 0 if command == "score" else 1  # positional GENERATIONS, repeated --rm, --gold
        from goodhartlab.recipes.short_forms import score_args

        rest[at:] = score_args(rest[at:])
    rest = _flag_to_override(rest, "--checkpoint", "checkpoint")
    try:
        if command == "validate":
            return validate(rest)
        if command in STANDALONE:
            set_cpu_threads()
            return importlib.import_module(STANDALONE[command][0]).main(rest)
        if command not in COMMANDS:
            print(f"goodhart: error: unknown command {command!r}", file=sys.stderr)
            print(_top_help(), file=sys.stderr)
            return 2
        return run_command(command, rest)
    except GoodhartError as exc:
        if os.environ.get("GOODHART_DEBUG") == "1":
            raise
        print(f"goodhart {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"goodhart {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # torch's ValueError, a full disk, ...: one line, not a traceback
        if os.environ.get("GOODHART_DEBUG") == "1":
            raise
        message = " ".join(str(exc).split())
        print(f"goodhart {command}: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
