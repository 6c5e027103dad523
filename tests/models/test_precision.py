"""bf16-mixed precision: bf16 compute over fp32 weights; fp32 stays bit-exact (a no-op)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from goodhartlab.cli import main
from goodhartlab.models.precision import autocast

SFT = ["sft", "--config", "smoke", "device=cpu", "data.toy.n_train_demos=96",
       "data.toy.n_eval_prompts=16", "train.epochs=1", "train.batch_size=16",
       "train.eval_every=3", "sample.n_prompts=8"]  # fmt: skip


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_autocast_runs_matmuls_in_bf16_and_fp32_is_a_no_op() -> None:
    a = torch.randn(4, 4)
    with autocast("bf16-mixed", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("fp32", "auto"):
        assert (a @ a).dtype == torch.float32


def test_bf16_mixed_sft_trains_fp32_weights_close_to_fp32(tmp_path) -> None:
    assert main([*SFT, "--out", str(tmp_path / "fp32")]) == 0
    assert main([*SFT, "--out", str(tmp_path / "bf16"), "model.precision=bf16-mixed"]) == 0
    rows = {
        name: [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        for name in ("fp32", "bf16")
    }
    ours, ref = [r["loss/train"] for r in rows["bf16"]], [r["loss/train"] for r in rows["fp32"]]
    assert ours != ref  # bf16 compute really happened
    assert ours == pytest.approx(ref, rel=0.05)  # and tracks the fp32 run
    weights = load_file(str(tmp_path / "bf16" / "model" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}  # master weights stay fp32
    summary = json.loads((tmp_path / "bf16" / "sft_summary.json").read_text())
    assert summary["n_samples"] == 8


def test_bf16_mixed_train_rm_and_ppo_run(tmp_path, tiny_ppo_models, ppo_smoke_args) -> None:
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    make(tmp_path / "w", ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=64,
                                      n_eval_pairs=32, label_flip_prob=0.0))  # fmt: skip
    rm = ["train-rm", "--config", "smoke", "device=cpu", "model.source=toy:rm",
          f"data.train={tmp_path / 'w' / 'prefs_train.jsonl'}",
          f"data.eval={tmp_path / 'w' / 'prefs_eval.jsonl'}", "train.batch_size=16",
          "model.precision=bf16-mixed", "--out", str(tmp_path / "rm")]  # fmt: skip
    assert main(rm) == 0
    result = json.loads((tmp_path / "rm" / "rm_seed1" / "rm_eval.json").read_text())
    assert result["n_pairs"] == 32 and result["score_std"] > 0
    ppo = ppo_smoke_args(tmp_path / "ppo", tiny_ppo_models, "policy.precision=bf16-mixed",
                         "ppo.iterations=2")  # fmt: skip
    assert main(ppo) == 0
    summary = json.loads((tmp_path / "ppo" / "ppo_summary.json").read_text())
    assert summary["final_sqrt_kl"] > 0 and summary["final_gold"] == summary["final_gold"]
