"""Tiny Llama, Qwen2, GPT-2 and GPT-NeoX models (built from configs, no download) each go
SFT -> train-rm -> PPO -> best-of-n through the CLI; the Llama chain trains with LoRA and its
merged RM scores the same in plain `AutoModelForSequenceClassification`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from goodhartlab.cli import main
from goodhartlab.models.architectures import ARCHITECTURES, save_tiny_policy

LORA = ["model.lora.r=8", "model.lora.alpha=16"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> list[str]:
    """Gold-labelled teacher pairs as preference files (sampling pairs from a policy trained
    for 6 steps gives too few distinct pairs)."""
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    out = tmp_path_factory.mktemp("world")
    make(out, ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=48,
                           n_eval_pairs=24, label_flip_prob=0.0))  # fmt: skip
    return [f"data.train={out / 'prefs_train.jsonl'}", f"data.eval={out / 'prefs_eval.jsonl'}"]


def _chain(arch: str, root, lora: bool, pairs: list[str]) -> dict:
    """Run the four commands a few steps each; return the run dirs."""
    base = save_tiny_policy(arch, root / "base")
    runs = {name: root / name for name in ("sft", "rm", "ppo", "bon")}
    extra = LORA if lora else []
    sft = ["sft", "--config", "smoke", "--out", str(runs["sft"]), "device=cpu",
           f"model.source={base}", "data.toy.n_train_demos=96", "data.toy.n_eval_prompts=16",
           "train.epochs=1", "train.batch_size=16", "train.eval_every=100", "sample.n_prompts=8",
           "optim.warmup_steps=1", *extra]  # fmt: skip
    assert main(sft) == 0
    policy = runs["sft"] / "model"
    rm = ["train-rm", "--config", "smoke", "--out", str(runs["rm"]), "device=cpu",
          f"model.source={policy}", *pairs, "train.batch_size=16", *extra]  # fmt: skip
    assert main(rm) == 0
    member = runs["rm"] / "rm_seed1" / "model"
    ppo = ["ppo", "--config", "smoke", "--out", str(runs["ppo"]), "device=cpu",
           f"policy.source={policy}", f"reward.reward_models=[{member}]", "ppo.iterations=2",
           "ppo.prompts_per_iteration=8", "ppo.minibatch_size=4", "ppo.epochs=1",
           "eval.n_prompts=8", "eval.every=1", "checkpoint_every=1",
           "generation.max_new_tokens=8", "eval.generation.max_new_tokens=8",
           *(["policy.lora.r=4"] if lora else [])]  # fmt: skip
    assert main(ppo) == 0
    bon = ["bon", "--config", "smoke", "--out", str(runs["bon"]), "device=cpu",
           f"generate.policy={runs['ppo'] / 'model'}", f"reward_models=[{member}]",
           "generate.n_prompts=4", "generate.n_samples=4", "sample_ns=[1,2,4]",
           "objectives=[mean]", "generate.sampling.max_new_tokens=8"]  # fmt: skip
    assert main(bon) == 0
    return runs


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_goes_through_the_whole_chain(arch: str, tmp_path, pair_files) -> None:
    lora = arch == "llama"
    runs = _chain(arch, tmp_path, lora, pair_files)
    rows = [json.loads(x) for x in (runs["sft"] / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["loss/train"] < rows[0]["loss/train"]
    for run in ("sft", "ppo"):  # saved merged: plain transformers loads them, no peft
        plain = AutoModelForCausalLM.from_pretrained(runs[run] / "model")
        assert plain.config.model_type == arch
        assert not any("lora" in key for key in plain.state_dict())
    member = runs["rm"] / "rm_seed1"
    result = json.loads((member / "rm_eval.json").read_text())
    assert result["n_pairs"] > 0 and np.isfinite(result["score_mean"])
    if lora:
        # the eval scores were computed by the in-memory LoRA model; plain transformers on
        # the merged save gives the same numbers
        from goodhartlab.config.schemas import PreferenceDataConfig
        from goodhartlab.models import load_tokenizer
        from goodhartlab.recipes.evaluate_rm import evaluate_member, read_pair_file

        plain = AutoModelForSequenceClassification.from_pretrained(member / "model").eval()
        assert plain.config.model_type == arch
        tok = load_tokenizer(str(member / "model"), padding_side="right")
        held_out = pair_files[1].split("=", 1)[1]
        pairs = read_pair_file(held_out, PreferenceDataConfig())
        again = evaluate_member(plain, tok, pairs, None, None)
        assert again["score_mean"] == pytest.approx(result["score_mean"], abs=1e-5)
        assert again["score_std"] == pytest.approx(result["score_std"], abs=1e-5)
        assert (runs["ppo"] / "checkpoints" / "step_1" / "adapter_config.json").exists()
    ppo = json.loads((runs["ppo"] / "ppo_summary.json").read_text())
    assert np.isfinite([ppo["final_gold"], ppo["final_sqrt_kl"]]).all()
    assert ppo["final_sqrt_kl"] > 0  # the policy moved
    bon = json.loads((runs["bon"] / "bon_summary.json").read_text())
    curve = bon["curves"]["single/rm_seed1"]
    assert bon["n_samples"] == 4 and curve["final_n"] == 4
    assert np.isfinite([curve["final_gold"], curve["final_proxy"]]).all()
