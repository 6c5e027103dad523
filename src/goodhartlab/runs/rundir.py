"""Run directories (DESIGN.md §4): config.yaml first, metrics.jsonl, checkpoints/, results.

Layout:
    RUN/config.yaml            resolved config, written before any work
    RUN/metrics.jsonl          one JSON object per logged step: {"step": s, "reward/gold": ...}
    RUN/checkpoints/step_N/    safetensors + HF config + tokenizer + trainer_state.json
    RUN/checkpoints/latest     name of the newest complete checkpoint
    RUN/*.json, *.png          results and plots, written atomically

In a multi-process run (runs.distributed) only rank 0 creates and writes the dir; the other
ranks hold the same RunDir and only read.

Why refuse to reuse a dir without --resume: a second run silently appending to another run's
metrics is how results get lost or mixed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.errors import GoodhartError, input_error
from goodhartlab.runs.atomic import atomic_write_json, atomic_write_text, json_safe
from goodhartlab.runs.distributed import is_main_process

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"


@dataclass
class RunDir:
    """A run directory; create with `RunDir.prepare`."""

    path: Path

    @classmethod
    def prepare(cls, path: str | Path, config_text: str, resume: bool = False) -> RunDir:
        """Create RUN (or reopen it with resume) and write config.yaml before any work.

        On resume the saved config must equal the new one: resuming with other settings would
        not give the numbers of an uninterrupted run.
        """
        run = cls(Path(path))
        cfg = run.path / CONFIG_FILE
        if not is_main_process():  # several processes: rank 0 creates and writes the dir
            return run
        if resume:
            if not cfg.exists():
                raise input_error("nothing to resume (no config.yaml)", run.path)
            if cfg.read_text(encoding="utf-8") != config_text:
                raise GoodhartError(
                    f"{cfg}: the saved config differs from this one; resume with the same "
                    "config and overrides, or start a new --out"
                )
            return run
        if run.path.exists() and any(run.path.iterdir()):
            raise GoodhartError(
                f"{run.path}: directory is not empty; pass --resume to continue that run "
                "or choose another --out"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg, config_text)
        return run

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        if not is_main_process():
            return self.path / name
        return atomic_write_json(self.path / name, obj)

    # metrics ---------------------------------------------------------------
    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Append one metrics line (flushed at once, so a killed run keeps what it logged)."""
        if not is_main_process():
            return
        row = {"step": int(step), **json_safe(metrics)}
        with (self.path / METRICS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, allow_nan=False) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The logged rows; a torn last line (a run killed mid-write, a full disk) is left out."""
        return self._metrics_rows()[0]

    def _metrics_rows(self) -> tuple[list[dict[str, Any]], bool]:
        """(complete rows, whether a torn last line was dropped); a bad line elsewhere is an
        InputError naming file and line."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return [], False
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")  # a complete file ends in "\n": the last piece is ""
        rows, torn = [], False
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                complete = number < len(lines) and isinstance(row, dict) and "step" in row
            except json.JSONDecodeError:
                complete = False
            if not complete:
                if number < len(lines) - (lines[-1] == ""):  # not the last line: damage, not a tear
                    raise input_error("not a metrics row (JSON object with 'step')", path, number)
                torn = True
                continue
            rows.append(row)
        return rows, torn

    def truncate_metrics_after(self, step: int | None) -> None:
        """Resume: keep the complete rows logged at or before the checkpoint's `step` (None: no
        checkpoint, so the rerun starts from an empty file). The resumed run re-logs the rest
        identically, so the file ends equal to an uninterrupted run's. A torn tail is dropped
        with a printed note."""
        if not is_main_process():
            return
        rows, torn = self._metrics_rows()
        if torn:
            print(
                f"{self.path / METRICS_FILE}: dropped a torn last line (the run was killed mid-write)"
            )
        keep = [r for r in rows if step is not None and r["step"] <= step]
        if keep == rows and not torn and (step is not None or not rows):
            return
        lines = "".join(json.dumps(r, allow_nan=False) + "\n" for r in keep)
        atomic_write_text(self.path / METRICS_FILE, lines)

    # checkpoints -----------------------------------------------------------
    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints / f"step_{step}"

    def mark_latest(self, step: int, keep: int = 2) -> None:
        """Point `latest` at step_N (atomically) and delete all but the newest `keep`."""
        if not is_main_process():
            return
        atomic_write_text(self.checkpoints / "latest", f"step_{step}\n")
        steps = sorted(
            int(p.name.removeprefix("step_")) for p in self.checkpoints.glob("step_*") if p.is_dir()
        )
        for old in steps[:-keep] if keep > 0 else []:
            shutil.rmtree(self.checkpoint_dir(old), ignore_errors=True)

    def latest_checkpoint(self) -> Path | None:
        marker = self.checkpoints / "latest"
        if not marker.exists():
            return None
        path = self.checkpoints / marker.read_text().strip()
        return path if path.is_dir() else None
