"""Test-wide settings: offline hub, one torch thread, deterministic seeds (DESIGN.md §6)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# transformers reads this once, at import: set before any test imports it, or the CLI's own
# setting comes too late in a test process and model-loading bars land on stderr
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

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


@pytest.fixture(scope="session")
def tiny_ppo_models(tmp_path_factory):
    """A random-init toy policy and a toy RM saved as dirs, for `ppo --config smoke` jobs.

    Why not the cached toy models: building those trains an SFT policy and an RM (minutes);
    PPO's plumbing and the sweep runner need only models of the right shape.
    """
    from goodhartlab.models import load_policy, save_model
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    root = tmp_path_factory.mktemp("tiny_ppo_models")
    policy, tok = load_policy("toy:policy", device="cpu", seed=0)
    save_model(policy, tok, root / "policy")
    rm, rtok = load_reward_model("toy:rm", device="cpu", seed=1)
    save_reward_model(rm, rtok, root / "rm", 0.0, 1.0)
    return root


@pytest.fixture(scope="session")
def ppo_smoke_args():
    """`args(out, models, *extra)`: `goodhart ppo --config smoke` on the tiny models, short."""

    def args(out, models, *extra) -> list[str]:
        return [
            "ppo", "--config", "smoke", "--out", str(out), "device=cpu",
            f"policy.source={models / 'policy'}", f"reward.reward_models=[{models / 'rm'}]",
            "generation.max_new_tokens=8", "eval.n_prompts=16", "ppo.lr=1e-3", *extra,
        ]  # fmt: skip

    return args
