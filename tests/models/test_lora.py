"""LoRA through peft: merged saves load with plain transformers and score identically; adapter
checkpoints restore exactly; r=0 leaves the model untouched; bad settings are one line."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from goodhartlab.config.schemas import LoraSettings
from goodhartlab.errors import ConfigError
from goodhartlab.models import lora
from goodhartlab.models.loading import write_pretrained
from goodhartlab.models.reward import load_reward_model, save_reward_model, score_texts
from goodhartlab.runs.checkpoint import save_checkpoint

PROMPTS = ["list two fruits", "list three tools", "list one animals"]
RESPONSES = ["apple and pear", "hammer , saw great", "cat cat !"]


def _trained_lora_rm():
    """A toy RM with r=8 adapters whose B matrices are nonzero (as after training)."""
    model, tok = load_reward_model("toy:rm", device="cpu", seed=3)
    model = lora.attach(model, LoraSettings(r=8, alpha=16.0), "SEQ_CLS", seed=3)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if "lora_B" in name or "score" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=gen))
    return model.eval(), tok


def test_merged_lora_rm_scores_identically_in_plain_transformers(tmp_path) -> None:
    model, tok = _trained_lora_rm()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in model.parameters()) / 4
    ours = score_texts(model, tok, PROMPTS, RESPONSES)
    save_reward_model(model, tok, tmp_path / "rm", score_mean=0.5, score_std=2.0)
    assert not (tmp_path / "rm" / lora.ADAPTER_CONFIG).exists()
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    assert not any("lora" in k for k in plain.state_dict())
    theirs = score_texts(plain, tok, PROMPTS, RESPONSES)
    assert theirs == pytest.approx(ours, abs=1e-5)
    assert json.loads((tmp_path / "rm" / "config.json").read_text())["score_std"] == 2.0
    # the model in memory keeps its adapters (the merge happened on a copy)
    assert lora.is_lora_model(model)
    assert score_texts(model, tok, PROMPTS, RESPONSES).tolist() == ours.tolist()


def test_adapter_checkpoint_restores_the_same_model(tmp_path) -> None:
    model, tok = _trained_lora_rm()
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "step_1", partial(write_pretrained, model, tok), opt, 1)
    assert lora.is_adapter_dir(tmp_path / "step_1")
    assert lora.base_source(tmp_path / "step_1", "toy:rm") == "toy:rm"
    base, _ = load_reward_model(
        lora.base_source(tmp_path / "step_1", "toy:rm"), device="cpu", seed=3
    )
    again = lora.attach(base, LoraSettings(r=8), "SEQ_CLS", tmp_path / "step_1").eval()
    restored = score_texts(again, tok, PROMPTS, RESPONSES)
    assert restored.tolist() == score_texts(model, tok, PROMPTS, RESPONSES).tolist()
    assert any(p.requires_grad for p in again.parameters())  # trainable again


def test_rank_zero_is_full_fine_tuning(tmp_path) -> None:
    model, _ = load_reward_model("toy:rm", device="cpu")
    assert lora.attach(model, LoraSettings(r=0), "SEQ_CLS") is model
    assert lora.merged_copy(model) is model
    assert lora.base_source(tmp_path, "toy:rm") == str(tmp_path)  # a full checkpoint: itself
    assert lora.base_source(None, "toy:rm") == "toy:rm"


def test_bad_target_modules_is_one_config_line() -> None:
    model, _ = load_reward_model("toy:rm", device="cpu")
    with pytest.raises(ConfigError, match=r"lora\.target_modules") as err:
        lora.attach(model, LoraSettings(r=4, target_modules=["no_such_proj"]), "SEQ_CLS")
    assert "\n" not in str(err.value)


def test_lora_with_inform_is_refused() -> None:
    with pytest.raises(ConfigError, match="inform"):
        lora.check_not_inform(LoraSettings(r=8), inform_enabled=True)
    lora.check_not_inform(LoraSettings(r=0), inform_enabled=True)


def test_lora_policy_samples_like_its_merged_copy() -> None:
    """Our KV-cache sampling loop runs a peft-wrapped policy (whose forward takes **kwargs; the
    loop reads the wrapped model's argument names) exactly like the merged plain model."""
    from goodhartlab.models import load_policy
    from goodhartlab.rollout.sampling import sample_texts

    policy, tok = load_policy("toy:policy", device="cpu", seed=0)
    policy = lora.attach(policy, LoraSettings(r=4), "CAUSAL_LM", seed=1)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.add_(0.05)
    kwargs = {"max_new_tokens": 10, "temperature": 1.0, "seed": 5}
    ours = sample_texts(policy.eval(), tok, PROMPTS, **kwargs)
    plain = sample_texts(lora.merged_copy(policy).eval(), tok, PROMPTS, **kwargs)
    assert [s.response for s in ours] == [s.response for s in plain]
    assert len({s.response for s in ours}) > 1
