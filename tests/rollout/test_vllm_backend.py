"""`generate.backend=vllm`: one clear line where vLLM cannot run; the plumbing (prompt token
ids in, our tokenizer's decoding out, sampling settings mapped) checked against a fake engine.
(No GPU or vLLM here: the real engine is not exercised by this suite.)"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from goodhartlab.cli import main
from goodhartlab.config.schemas import GenerationConfig
from goodhartlab.errors import ConfigError
from goodhartlab.rollout import vllm_backend
from goodhartlab.runs.seeding import derive_seed


def test_vllm_missing_is_one_line_and_leaves_no_run_dir(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    out = tmp_path / "run"
    assert main(["bon", "--config", "smoke", "--out", str(out), "generate.backend=vllm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "vLLM is not installed" in err and "generate.backend=transformers" in err
    assert "\n" not in err and not out.exists()


def test_vllm_without_a_gpu_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        vllm_backend.check_available("vllm")
    vllm_backend.check_available("transformers")  # the default never needs either


def test_sample_vllm_plumbing_with_a_fake_engine(monkeypatch) -> None:
    from goodhartlab.data.encoding import encode_prompts
    from goodhartlab.toyworld.vocab import build_tokenizer

    tok = build_tokenizer()
    seen = {}
    answer = tok("red and blue", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]

    class Params:
        def __init__(self, **kwargs):
            seen.setdefault("params", []).append(kwargs)

    class Engine:
        def __init__(self, **kwargs):
            seen["engine"] = kwargs

        def generate(self, prompts, params):
            seen["prompts"] = prompts
            outs = [
                types.SimpleNamespace(token_ids=answer, finish_reason=r) for r in ("stop", "length")
            ]
            return [types.SimpleNamespace(outputs=outs) for _ in prompts]

    monkeypatch.setitem(
        sys.modules, "vllm", types.SimpleNamespace(LLM=Engine, SamplingParams=Params)
    )
    prompts = ["list two colors", "list one fruits"]
    gen = GenerationConfig(max_new_tokens=7, temperature=0.7, top_k=0, top_p=0.9)
    answers, ended = vllm_backend.sample_vllm("DIR", tok, prompts, 2, gen, seed=3)
    assert answers == [["red and blue"] * 2] * 2
    np.testing.assert_array_equal(ended, [[True, False], [True, False]])
    first, second = seen["params"]  # one request per prompt, each with its own seed
    assert first == {"n": 2, "temperature": 0.7, "top_k": -1, "top_p": 0.9, "max_tokens": 7,
                     "seed": derive_seed(3, "bon/vllm_prompt", 0), "skip_special_tokens": True}  # fmt: skip
    assert second == {**first, "seed": derive_seed(3, "bon/vllm_prompt", 1)}
    assert first["seed"] != second["seed"]
    assert seen["engine"]["model"] == "DIR" and seen["engine"]["seed"] == 3
    ids, mask = encode_prompts(tok, prompts)
    ours = [row[m].tolist() for row, m in zip(ids, mask)]
    assert [p["prompt_token_ids"] for p in seen["prompts"]] == ours
