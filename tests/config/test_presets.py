"""Every preset loads; each command's 'toy' preset equals its config class defaults."""

import pytest

from goodhartlab.cli import COMMANDS, _config_class
from goodhartlab.config import find_configs_dir, load_config

CONFIGS = find_configs_dir()
# configs/accelerate/ holds launcher configs (`accelerate launch --config_file`), not presets.
LAUNCHERS = sorted(CONFIGS.glob("accelerate/*.yaml")) if CONFIGS else []
PRESETS = sorted(set(CONFIGS.glob("*/*.yaml")) - set(LAUNCHERS)) if CONFIGS else []


def test_presets_found() -> None:
    assert CONFIGS is not None
    commands = {p.parent.name for p in PRESETS}
    assert set(COMMANDS) <= commands  # every command has presets
    for command in COMMANDS:
        names = {p.stem for p in PRESETS if p.parent.name == command}
        assert {"toy", "smoke"} <= names, command


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_preset_loads(path) -> None:
    assert path.parent.name in COMMANDS, f"{path}: presets of a command the CLI does not know"
    cls = _config_class(path.parent.name)
    cfg = load_config(cls, path)
    assert isinstance(cfg, cls)
    if path.stem == "toy":
        # The CLI falls back to class defaults for 'toy' when no configs/ folder is installed.
        assert cfg == cls(), f"{path} drifted from the {cls.__name__} defaults"


def _launch_env(path) -> dict[str, str]:
    """The variables `accelerate launch --config_file PATH` exports to every process."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    if not args.use_deepspeed:
        return prepare_multi_gpu_env(args)
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch
    return prepare_deepspeed_cmd_env(args)[1]


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.stem)
def test_accelerate_launcher_configs_start_processes_goodhart_can_run(path) -> None:
    """Each launcher config starts N processes, DDP-style or sharded (FSDP, DeepSpeed ZeRO), and
    what accelerate exports from it is what runs.sharding / runs.zero accept."""
    import yaml

    from goodhartlab.runs import sharding, zero

    cfg = yaml.safe_load(path.read_text())
    kind = cfg["distributed_type"]
    assert kind in ("MULTI_GPU", "FSDP", "DEEPSPEED") and cfg["num_processes"] >= 2
    assert cfg["num_processes"] % cfg["num_machines"] == 0
    env = _launch_env(path)
    assert (sharding.fsdp_settings(env) is not None) == (kind == "FSDP")
    assert zero.requested(env) == (kind == "DEEPSPEED")
    if kind == "DEEPSPEED":
        stage = zero.zero_config(8, 1.0, env)["zero_optimization"]["stage"]
        assert f"zero{stage}" in path.stem
