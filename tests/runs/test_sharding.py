"""runs.sharding: accelerate's FSDP variables are read (bad ones refused in one line), and in a
one-rank process group a sharded model trains like the plain one, gathers back to an unsharded
copy (same class, ties kept) and round-trips its optimizer state through the checkpoint layout.
The 2-process runs are in test_distributed.py."""

from __future__ import annotations

import pytest
import torch

from goodhartlab.errors import ConfigError
from goodhartlab.runs import sharding

FSDP = {"ACCELERATE_USE_FSDP": "true"}


def test_no_fsdp_variables_mean_no_sharding() -> None:
    assert sharding.fsdp_settings({}) is None
    assert sharding.fsdp_settings({"ACCELERATE_USE_FSDP": "false"}) is None


def test_accelerate_fsdp_variables_are_read() -> None:
    assert sharding.fsdp_settings(FSDP) == sharding.FSDPSettings(True, False, (), True)
    env = {**FSDP, "FSDP_RESHARD_AFTER_FORWARD": "shard_grad_op", "FSDP_OFFLOAD_PARAMS": "true",
           "FSDP_TRANSFORMER_CLS_TO_WRAP": "LlamaDecoderLayer, Qwen2DecoderLayer"}  # fmt: skip
    assert sharding.fsdp_settings(env) == sharding.FSDPSettings(
        False, True, ("LlamaDecoderLayer", "Qwen2DecoderLayer"), True
    )
    env = {**FSDP, "FSDP_RESHARD_AFTER_FORWARD": "false", "FSDP_AUTO_WRAP_POLICY": "NO_WRAP"}
    assert sharding.fsdp_settings(env) == sharding.FSDPSettings(False, False, (), False)


@pytest.mark.parametrize("strategy", ["SHARD_GRAD_OP", "2"])
def test_an_fsdp1_shard_grad_op_strategy_is_not_overridden_by_the_reshard_default(strategy):
    """accelerate exports FSDP_RESHARD_AFTER_FORWARD=true whatever an FSDP1 config says."""
    env = {**FSDP, "FSDP_SHARDING_STRATEGY": strategy, "FSDP_RESHARD_AFTER_FORWARD": "true"}
    assert sharding.fsdp_settings(env).reshard_after_forward is False
    full = {**FSDP, "FSDP_SHARDING_STRATEGY": "FULL_SHARD", "FSDP_RESHARD_AFTER_FORWARD": "true"}
    assert sharding.fsdp_settings(full).reshard_after_forward is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FSDP_SHARDING_STRATEGY": "NO_SHARD"},
            "FSDP_SHARDING_STRATEGY=NO_SHARD is not supported",
        ),
        ({"FSDP_SHARDING_STRATEGY": "HYBRID_SHARD"}, "HYBRID_SHARD is not supported"),
        ({"FSDP_RESHARD_AFTER_FORWARD": "no_reshard"}, "expected true (FULL_SHARD) or false"),
        ({"FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "expected one of ['TRANSFORMER_BASED_WRAP'"),
    ],
)
def test_unsupported_fsdp_settings_are_refused_in_one_line(env, message) -> None:
    with pytest.raises(ConfigError) as err:
        sharding.fsdp_settings({**FSDP, **env})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_fsdp_is_refused_for_commands_whose_loops_do_not_shard(monkeypatch) -> None:
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    sharding.check_launch("sft")
    sharding.check_launch("train-rm")
    with pytest.raises(ConfigError, match=r"FSDP sharding .* wired into sft, train-rm only, not "):
        sharding.check_launch("ppo")
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    sharding.check_launch("train-rm")
    with pytest.raises(ConfigError, match=r"DeepSpeed sharding .* not goodhart ppo"):
        sharding.check_launch("ppo")


@pytest.fixture
def one_rank(tmp_path):
    """A one-process gloo group: fully_shard runs for real (one shard = the whole tensor)."""
    import torch.distributed as dist

    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _tied_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                        tie_word_embeddings=True, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)  # fmt: skip
    return GPT2LMHeadModel(config)


def _train_step(model, opt, ids) -> None:
    model(input_ids=ids, labels=ids).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()


def test_sharded_model_trains_like_the_plain_one_and_gathers_back(one_rank) -> None:
    from torch.distributed.tensor import DTensor

    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))
    plain, model = _tied_gpt2(), _tied_gpt2()
    settings = sharding.FSDPSettings(True, False, (), True)
    assert sharding.block_classes(model) == {"GPT2Block"}
    sharding.shard_model(model, settings)
    assert sharding.is_sharded(model) and not sharding.is_sharded(plain)
    assert all(isinstance(p, DTensor) for p in model.parameters())
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (plain, model)]
    for _ in range(2):
        _train_step(plain, opts[0], ids)
        _train_step(model, opts[1], ids)

    whole, state = sharding.checkpoint_view(model, opts[1])
    assert type(whole) is type(plain)  # FSDP's subclass is gone: save_pretrained names it right
    assert whole.lm_head.weight is whole.transformer.wte.weight  # still tied
    assert not whole.lm_head.weight.is_meta
    for (name, got), want in zip(whole.named_parameters(), plain.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(whole(ids).logits, plain(ids).logits, rtol=1e-5, atol=1e-5)
    want_state = opts[0].state_dict()
    assert state["param_groups"] == want_state["param_groups"]
    for index, slots in want_state["state"].items():
        for key, value in slots.items():
            assert not isinstance(state["state"][index][key], DTensor)
            torch.testing.assert_close(state["state"][index][key], value, rtol=1e-4, atol=1e-6)

    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sharding.load_optimizer_state(fresh, state)
    exp_avg = fresh.state[model.lm_head.weight]["exp_avg"]
    assert isinstance(exp_avg, DTensor)
    torch.testing.assert_close(exp_avg.full_tensor(), want_state["state"][0]["exp_avg"])


def test_a_wrap_class_the_model_lacks_is_refused(one_rank) -> None:
    settings = sharding.FSDPSettings(True, False, ("LlamaDecoderLayer",), True)
    with pytest.raises(ConfigError, match=r"no module of that class \(its blocks: \['GPT2Block'\]"):
        sharding.shard_model(_tied_gpt2(), settings)


def test_unsharded_models_pass_through_untouched() -> None:
    model = _tied_gpt2()
    opt = torch.optim.AdamW(model.parameters())
    assert sharding.shard(model) is model  # no FSDP variables, no process group
    assert sharding.gather(model) is model
    assert sharding.checkpoint_view(model, opt) == (model, opt)


def test_ppo_under_an_fsdp_launch_is_refused_before_anything_runs(monkeypatch, capsys, tmp_path):
    from goodhartlab.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    out = tmp_path / "never"
    assert main(["ppo", "--config", "smoke", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "goodhart ppo: error: FSDP sharding (accelerate config) is wired into sft, train-rm "
        "only, not goodhart ppo; launch it with configs/accelerate/cpu_2proc.yaml or ddp_*.yaml"
    )
    assert not out.exists()
