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

from goodhartlab.runs.cpu_kernels import pin_cpu_kernels

# the CLI's portable CPU kernels, pinned before any test runs a torch op (the in-process recipe
# tests then build the same models as `goodhart` in a subprocess)
pin_cpu_kernels()


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
def toy_rm_seeds(tmp_path_factory):
    """Two random-init toy RMs as train-rm writes them: ROOT/rm_seed{1,2}/model + ensemble.json."""
    from goodhartlab.models.reward import (
        load_reward_model,
        save_reward_model,
        write_ensemble_manifest,
    )

    root = tmp_path_factory.mktemp("toy_rm_seeds")
    for seed in (1, 2):
        model, tok = load_reward_model("toy:rm", device="cpu", seed=seed)
        save_reward_model(model, tok, root / f"rm_seed{seed}" / "model", 0.0, 1.0)
    write_ensemble_manifest(
        root / "ensemble.json", [{"seed": s, "path": f"rm_seed{s}/model"} for s in (1, 2)]
    )
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


@pytest.fixture
def hf_offline_cache(tmp_path, monkeypatch):
    """`add(repo_id, {split: rows}) -> cache dir`: a private, offline Hugging Face datasets
    cache in which `load_dataset(repo_id)` finds those rows as if downloaded once.

    How the cache is keyed (datasets 2.16+, `load.CachedDatasetModuleFactory` and
    `packaged_modules/cache`): CACHE/<namespace>___<snake_case(name)>/<config>/<version>/
    <revision>/, holding `dataset_info.json` whose `config_name` equals <config> and Arrow files
    `<name>-<split>.arrow`. So the rows go through `load_dataset("json", data_files=...)` from
    local files (cached under json/default-<hash>/0.0.0/<hash>), and that directory is moved
    under the hub's key.
    """
    import json
    import shutil

    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)

    def add(repo_id: str, splits: dict) -> object:
        namespace, name = repo_id.split("/")
        files = {}
        for split, rows in splits.items():
            files[split] = tmp_path / f"{name}-{split}.jsonl"
            files[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
        datasets.load_dataset("json", data_files={k: str(v) for k, v in files.items()},
                              cache_dir=str(cache))  # fmt: skip
        (built,) = (cache / "json").glob("default-*/0.0.0/*/")
        target = cache / f"{namespace}___{name}" / "default" / "0.0.0" / ("0" * 40)
        shutil.copytree(built, target)
        for arrow in target.glob("json-*.arrow"):
            arrow.rename(target / arrow.name.replace("json-", f"{name}-", 1))
        shutil.rmtree(cache / "json")  # only the hub's key is left to find
        return cache

    return add
