"""`goodhart ppo generation.backend=vllm` against a fake engine with vLLM's interface (no GPU or
vLLM here): the rollouts are the engine's samples, the policy's weights reach the engine after
every update, old logprobs come from the policy's own forward pass, and missing vLLM or CUDA is
one line."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from typing import ClassVar

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from goodhartlab.cli import main
from goodhartlab.config.ppo_schema import PPOConfig
from goodhartlab.errors import ConfigError
from goodhartlab.recipes import ppo
from goodhartlab.rollout import vllm_backend
from goodhartlab.rollout.llm import policy_pass


class FakeParams:
    """vLLM's SamplingParams: keeps its arguments."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeModel:
    """The engine's model: `load_weights` records a copy of what it was given."""

    def __init__(self):
        self.loads: list[dict[str, torch.Tensor]] = []

    def load_weights(self, weights):
        self.loads.append({name: t.detach().clone() for name, t in weights})
        return set(self.loads[-1])


class FakeLLM:
    """vLLM's LLM as PPO calls it: built once, `apply_model(fn)` runs fn on the (one worker's)
    model, `generate` answers token-id prompts with one seeded sample per request: random
    vocabulary words, stopped at eos (kept in token_ids) or at max_tokens."""

    instances: ClassVar[list[FakeLLM]] = []
    words: ClassVar[list[int]] = []
    eos: int = -1

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.model = FakeModel()
        self.requests: list[tuple[list, list, list]] = []
        self.calls: list[str] = []  # "push" / "generate", in order
        FakeLLM.instances.append(self)

    def apply_model(self, fn):
        self.calls.append("push")
        return [fn(self.model)]

    def generate(self, prompts, params, use_tqdm=True):
        outputs, answers = [], []
        for p in params:
            rng = np.random.default_rng(p.kwargs["seed"])
            limit = p.kwargs["max_tokens"]
            n = int(rng.integers(1, limit + 2))  # limit + 1: stopped by the length limit
            tokens = [int(t) for t in rng.choice(self.words, size=min(n, limit))]
            reason = "length" if n > limit else "stop"
            if reason == "stop":
                tokens[-1] = self.eos
            sample = types.SimpleNamespace(token_ids=tokens, finish_reason=reason, logprobs=None)
            outputs.append(types.SimpleNamespace(outputs=[sample]))
            answers.append(sample)
        self.requests.append((prompts, params, answers))
        self.calls.append("generate")
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch, tiny_ppo_models):
    from goodhartlab.models import load_policy

    _, tok = load_policy(str(tiny_ppo_models / "policy"), device="cpu")
    FakeLLM.instances = []
    FakeLLM.words = [i for i in range(len(tok)) if i not in tok.all_special_ids]
    FakeLLM.eos = tok.eos_token_id
    monkeypatch.setitem(
        sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=FakeParams)
    )
    monkeypatch.setattr(ppo, "check_available", lambda backend, key: None)  # no CUDA here
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # restored after the test
    return FakeLLM


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].dtype)) for k in a)


def test_ppo_samples_from_the_engine_and_pushes_weights_each_iteration(
    fake_vllm, tiny_ppo_models, tmp_path, ppo_smoke_args
) -> None:
    out = tmp_path / "vllm"
    assert main(ppo_smoke_args(out, tiny_ppo_models, "generation.backend=vllm")) == 0
    (engine,) = fake_vllm.instances  # one engine for the run
    assert engine.kwargs["model"] == str(tiny_ppo_models / "policy")
    assert engine.kwargs["enable_prefix_caching"] is False
    assert engine.kwargs["gpu_memory_utilization"] == 0.3 and engine.kwargs["seed"] == 0
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # the engine in this process
    loads = engine.model.loads
    assert len(loads) == 1 + 4  # at start, then after each of the 4 updates
    assert engine.calls == ["push", "generate"] * 4 + ["push"]  # each rollout: the latest policy
    start = load_file(tiny_ppo_models / "policy" / "model.safetensors")
    step2 = load_file(out / "checkpoints" / "step_2" / "model.safetensors")
    final = load_file(out / "model" / "model.safetensors")
    assert loads[0].keys() == start.keys()  # a saved checkpoint's names: what vLLM's loaders read
    assert _same(loads[0], {k: start[k] for k in loads[0]})
    assert _same(loads[2], {k: step2[k] for k in loads[2]})  # the policy after update 2
    assert _same(loads[4], {k: final[k] for k in loads[4]})
    assert all(not torch.equal(loads[i]["embed_out.weight"], loads[i + 1]["embed_out.weight"])
               for i in range(4))  # fmt: skip
    # the rollouts are the engine's answers: their lengths and eos flags are the logged ones
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]
    assert len(engine.requests) == 4
    for row, (prompts, params, answers) in zip(rows, engine.requests):
        assert len(prompts) == 16 and len({p.kwargs["seed"] for p in params}) == 16
        assert all(p.kwargs["n"] == 1 and p.kwargs["max_tokens"] == 8 for p in params)
        assert row["length/mean"] == pytest.approx(np.mean([len(a.token_ids) for a in answers]))
        ended = [a.finish_reason == "stop" for a in answers]
        assert row["eos_rate"] == pytest.approx(np.mean(ended))
    seeds = [p.kwargs["seed"] for _, params, _ in engine.requests for p in params]
    assert len(set(seeds)) == len(seeds)  # no prompt shares another's random stream


def test_old_logprobs_are_the_policys_not_the_samplers(fake_vllm, tiny_ppo_models) -> None:
    from goodhartlab.recipes.ppo_step import collect_rollout, iteration_generator

    cfg = PPOConfig(device="cpu")
    cfg.policy.source = str(tiny_ppo_models / "policy")
    cfg.generation.backend = "vllm"
    cfg.generation.max_new_tokens = 6
    cfg.ppo.prompts_per_iteration = 8
    state = ppo.build_state(cfg, cfg.policy.source, None)
    ppo.start_rollout_engine(cfg, state, cfg.policy.source)
    ro = collect_rollout(cfg, state, 1, None, iteration_generator(0, 1, state.device))
    (engine,) = fake_vllm.instances
    _, _, answers = engine.requests[0]
    mask = ro.batch.response_mask
    assert [row[m].tolist() for row, m in zip(ro.batch.response_ids, mask)] == [
        list(a.token_ids) for a in answers
    ]
    assert ro.ended.tolist() == [a.finish_reason == "stop" for a in answers]
    with torch.no_grad():
        ours = policy_pass(state.policy, ro.batch).logprobs
    assert torch.equal(ro.old_logprobs * mask, ours * mask)
    assert (ro.old_logprobs[mask] < 0).all()  # real logprobs, not a placeholder


def test_missing_vllm_is_one_line_and_leaves_no_run_dir(
    tiny_ppo_models, tmp_path, monkeypatch, capsys, ppo_smoke_args
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    out = tmp_path / "run"
    assert main(ppo_smoke_args(out, tiny_ppo_models, "generation.backend=vllm")) == 2
    err = capsys.readouterr().err.strip()
    assert "generation.backend=vllm: vLLM is not installed" in err
    assert "use generation.backend=transformers" in err and "\n" not in err
    assert not out.exists()


def test_no_gpu_names_the_ppo_field(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^generation.backend=vllm needs a CUDA GPU"):
        vllm_backend.check_available("vllm", "generation.backend")


def test_a_vllm_without_apply_model_is_refused(monkeypatch) -> None:
    from goodhartlab.rollout.vllm_policy import start_engine

    class OldLLM:
        def __init__(self, **kwargs):
            pass

    old = types.SimpleNamespace(LLM=OldLLM, __version__="0.5.0")
    monkeypatch.setitem(sys.modules, "vllm", old)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    with pytest.raises(ConfigError, match=r"vLLM 0.5.0 has no LLM.apply_model"):
        start_engine("DIR", 0, 0.3)


def test_a_lora_policy_pushes_its_merged_weights_under_checkpoint_names(tiny_ppo_models) -> None:
    pytest.importorskip("peft")
    from goodhartlab.config.schemas import LoraSettings
    from goodhartlab.models import load_policy, lora
    from goodhartlab.rollout.vllm_policy import checkpoint_names, policy_weights

    model, _ = load_policy(str(tiny_ppo_models / "policy"), device="cpu")
    model = lora.attach(model, LoraSettings(r=4, alpha=8), "CAUSAL_LM", None, 0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()  # adapters that change the weights
    pushed = dict(policy_weights(model))
    saved = load_file(tiny_ppo_models / "policy" / "model.safetensors")
    assert pushed.keys() == saved.keys()  # no lora_A/B, no peft prefixes
    merged = lora.merged_copy(model)
    assert _same(pushed, checkpoint_names(merged, dict(merged.named_parameters())))
    assert not _same(pushed, saved)  # the adapters are in the pushed weights
