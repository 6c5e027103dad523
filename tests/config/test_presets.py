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


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.stem)
def test_accelerate_launcher_configs_are_data_parallel(path) -> None:
    """Each launcher config starts N processes of DDP kind (FSDP/DeepSpeed are refused by
    runs.distributed, so none is shipped)."""
    import yaml

    cfg = yaml.safe_load(path.read_text())
    assert cfg["distributed_type"] == "MULTI_GPU" and cfg["num_processes"] >= 2
    assert cfg["num_processes"] % cfg["num_machines"] == 0
