"""A LoRA run resumes from its adapter-only checkpoint to the same numbers (SFT and train-rm)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from goodhartlab.cli import main

LORA = ["model.lora.r=4", "model.lora.alpha=8", "device=cpu"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _as_if_killed_after(run, clone, checkpoints: str, step: int, finals: tuple[str, ...]) -> None:
    """A copy of a finished run as a run killed right after checkpoint `step` would leave it:
    the final outputs gone, `latest` at step_N (N < the last step, which is never checkpointed)."""
    shutil.copytree(run, clone)
    for name in finals:
        target = clone / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    (clone / checkpoints / "latest").write_text(f"step_{step}\n")


def _same_model(a, b) -> None:
    ours, ref = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert ours.keys() == ref.keys() and not any("lora" in k for k in ref)
    assert all(torch.equal(ours[k], ref[k]) for k in ref)


def _rows(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_lora_sft_resumes_from_its_adapter_checkpoint(tmp_path) -> None:
    args = ["sft", "--config", "smoke", *LORA, "data.toy.n_train_demos=96",
            "data.toy.n_eval_prompts=16", "train.epochs=1", "train.batch_size=16",
            "train.checkpoint_every=3", "train.eval_every=2", "sample.n_prompts=0"]  # fmt: skip
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert main([*args, "--out", str(full)]) == 0
    ckpt = full / "checkpoints" / "step_3"
    assert (ckpt / "adapter_config.json").exists() and not (ckpt / "model.safetensors").exists()
    _as_if_killed_after(full, killed, "checkpoints", 3, ("model", "sft_summary.json"))
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert _rows(killed / "metrics.jsonl") == _rows(full / "metrics.jsonl")
    _same_model(killed / "model", full / "model")


def test_lora_train_rm_resumes_from_its_adapter_checkpoint(tmp_path) -> None:
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    make(tmp_path / "w", ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=96,
                                      n_eval_pairs=32, label_flip_prob=0.0))  # fmt: skip
    args = ["train-rm", "--config", "smoke", *LORA, "model.source=toy:rm",
            f"data.train={tmp_path / 'w' / 'prefs_train.jsonl'}",
            f"data.eval={tmp_path / 'w' / 'prefs_eval.jsonl'}", "train.batch_size=16",
            "train.checkpoint_every=3"]  # fmt: skip
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert main([*args, "--out", str(full)]) == 0
    member = "rm_seed1"
    finals = tuple(
        f"{member}/{n}"
        for n in (
            "model",
            "rm_eval.json",
            "cartography.jsonl",
            "cartography_stats.jsonl",
            "proxy_vs_gold.png",
        )
    )
    finals += ("rm_summary.json", "ensemble.json")
    _as_if_killed_after(full, killed, f"{member}/checkpoints", 3, finals)
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert _rows(killed / member / "metrics.jsonl") == _rows(full / member / "metrics.jsonl")
    _same_model(killed / member / "model", full / member / "model")


def test_lora_ppo_resumes_from_its_adapter_checkpoints(tmp_path, tiny_ppo_models, ppo_smoke_args):
    """Policy and value model both carry adapters; the checkpoint keeps both adapters."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    extra = ("policy.lora.r=4", "policy.lora.alpha=8", "ppo.iterations=4", "checkpoint_every=2")
    assert main(ppo_smoke_args(full, tiny_ppo_models, *extra)) == 0
    ckpt = full / "checkpoints" / "step_2"
    assert (ckpt / "adapter_config.json").exists() and (
        ckpt / "value" / "adapter_config.json"
    ).exists()
    plots = tuple(p.name for p in full.glob("*.png"))
    finals = ("model", "value", "ppo_summary.json", *plots)  # what a run writes at its end
    _as_if_killed_after(full, killed, "checkpoints", 2, finals)
    assert main([*ppo_smoke_args(killed, tiny_ppo_models, *extra), "--resume"]) == 0
    assert _rows(killed / "metrics.jsonl") == _rows(full / "metrics.jsonl")
    _same_model(killed / "model", full / "model")
