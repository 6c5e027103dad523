"""Run directories, atomic writes, metrics and checkpoints."""

from goodhartlab.runs.atomic import atomic_directory, atomic_write_json, atomic_write_text
from goodhartlab.runs.rundir import RunDir

__all__ = ["RunDir", "atomic_directory", "atomic_write_json", "atomic_write_text"]
