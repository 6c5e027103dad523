"""Test-wide settings: offline hub, one torch thread, deterministic seeds (DESIGN.md §6)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def kill_at_checkpoint():
    """Run `goodhart ARGS` in a subprocess and SIGKILL it once `marker` exists.

    Why a subprocess and SIGKILL: a resume test must survive a real, unclean death (no
    exception handlers, no atexit), which only killing another process gives.
    """
    import signal
    import subprocess
    import sys
    import time

    def run(args: list[str], marker) -> None:
        cmd = [sys.executable, "-m", "goodhartlab", *args]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    return run
