"""`goodhart <command> [--config PRESET_OR_PATH] [key.sub=value ...] [--out RUN_DIR] [--resume]`.

A literal registry maps each command to its recipe module and config class, imported lazily so
`goodhart --help` stays instant (DESIGN.md §4). User mistakes (bad config, bad data) print one
line and exit non-zero; anything else is a bug and keeps its traceback.
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
    config_class: str  # name in goodhartlab.config.schemas
    summary: str


COMMANDS: dict[str, Command] = {
    "toyworld": Command(
        "goodhartlab.recipes.toyworld", "ToyWorldConfig", "write the toy world's data + tokenizer"
    ),
    "sft": Command("goodhartlab.recipes.sft", "SFTConfig", "supervised fine-tuning of a policy"),
    "demo": Command("goodhartlab.recipes.demo", "DemoConfig", "the whole chain on the toy world"),
}
DEFAULT_PRESET = "toy"
EPILOG = (
    "Every command takes --config PRESET_OR_PATH (presets: configs/<command>/*.yaml; "
    "'toy' is the default, 'smoke' runs in seconds), key.sub=value overrides, --out RUN_DIR "
    "and --resume. `goodhart validate <command> --config X` checks a config without running."
)


def _config_class(command: str):
    from goodhartlab.config import schemas

    return getattr(schemas, COMMANDS[command].config_class)


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


def run_command(command: str, argv: Sequence[str]) -> int:
    from goodhartlab.errors import GoodhartError

    args = _parser(command).parse_intermixed_args(argv)
    if args.help:
        print(_command_help(command))
        return 0
    cfg, text = load_command_config(command, args.config, args.overrides)
    from goodhartlab.runs import RunDir

    out = Path(args.out or f"runs/{command}-{time.strftime('%Y%m%d-%H%M%S')}")
    existed = out.exists()
    run_dir = RunDir.prepare(out, text, resume=args.resume)
    recipe = importlib.import_module(COMMANDS[command].module)
    try:
        recipe.run(cfg, run_dir, resume=args.resume)
    except GoodhartError:
        _discard_if_nothing_to_resume(run_dir, fresh=not args.resume and not existed)
        raise
    print(f"goodhart {command}: done; outputs in {out}")
    return 0


def _discard_if_nothing_to_resume(run_dir, fresh: bool) -> None:
    """A fresh run that failed on bad input before its first checkpoint leaves no directory.

    Why: a half-made run dir would block the corrected rerun ("not empty") and could be mistaken
    for results. A run that has checkpoints is kept, so `--resume` can continue it.
    """
    import shutil

    if fresh and not any(run_dir.checkpoints.glob("**/trainer_state.json")):
        shutil.rmtree(run_dir.path, ignore_errors=True)


def validate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="goodhart validate")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", default=DEFAULT_PRESET)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    _, text = load_command_config(args.command, args.config, args.overrides)
    print(f"goodhart validate: {args.command} config OK")
    print(text, end="")
    return 0


def _top_help() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
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


def main(argv: Sequence[str] | None = None) -> int:
    from goodhartlab.errors import GoodhartError

    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "validate":
            return validate(rest)
        if command not in COMMANDS:
            print(f"goodhart: error: unknown command {command!r}", file=sys.stderr)
            print(_top_help(), file=sys.stderr)
            return 2
        return run_command(command, rest)
    except GoodhartError as exc:
        print(f"goodhart {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"goodhart {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
