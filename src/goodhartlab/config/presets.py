"""Preset lookup: `--config NAME` -> `configs/<command>/NAME.yaml`, or a YAML path as given."""

from __future__ import annotations

import os
from pathlib import Path

from goodhartlab.errors import ConfigError


def find_configs_dir() -> Path | None:
    """`$GOODHART_CONFIGS` if set, else the first `configs/` with subdirectories found walking up
    from this file (a repo checkout or editable install), else None."""
    env = os.environ.get("GOODHART_CONFIGS")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "configs"
        if candidate.is_dir() and any(child.is_dir() for child in candidate.iterdir()):
            return candidate
    return None


def resolve_config_path(
    command: str, name_or_path: str | os.PathLike | None, configs_dir: Path | None = None
) -> Path | None:
    """An existing file as is; otherwise preset NAME -> `<configs_dir>/<command>/NAME.yaml`.

    None stays None (class defaults). A name that looks like a path (has a separator or a .yaml /
    .yml suffix) but does not exist, or an unknown preset, raises ConfigError; the latter lists
    the presets available for `command`.
    """
    if name_or_path is None:
        return None
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    if "/" in text or os.sep in text or path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"{text}: config file not found")
    configs_dir = configs_dir if configs_dir is not None else find_configs_dir()
    if configs_dir is None:
        raise ConfigError(
            f"preset '{text}' for '{command}': no configs directory found "
            "(set GOODHART_CONFIGS or pass a YAML path)"
        )
    preset = Path(configs_dir) / command / f"{text}.yaml"
    if preset.is_file():
        return preset
    folder = Path(configs_dir) / command
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    available = ", ".join(names) if names else f"none in {folder}"
    raise ConfigError(f"unknown preset '{text}' for '{command}' (available: {available})")
