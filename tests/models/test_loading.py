"""Model loading: toy specs, local dirs through plain transformers, clear errors, freezing."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from goodhartlab.errors import InputError
from goodhartlab.models import freeze, load_model, load_policy, save_model
from goodhartlab.toyworld.vocab import build_tokenizer


def test_toy_policy_round_trip_with_plain_transformers(tmp_path) -> None:
    model, tok = load_policy("toy:policy", device="cpu", seed=3)
    again, _ = load_policy("toy:policy", device="cpu", seed=3)
    ids = tok("[BOS] list two fruits [SEP] apple", return_tensors="pt")["input_ids"]
    assert torch.equal(model(ids).logits, again(ids).logits)  # same seed, same init
    save_model(model, tok, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert torch.equal(plain(ids).logits, model(ids).logits)
    ours, tok2 = load_policy(str(tmp_path / "m"), device="cpu")
    assert torch.equal(ours(ids).logits, model(ids).logits) and len(tok2) == len(tok)


def test_scalar_role_loads_sequence_classifier(tmp_path) -> None:
    model, tok = load_model("toy:rm", role="scalar", device="cpu")
    save_model(model, tok, tmp_path / "rm")
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")
    batch = tok(["[BOS] list one fruits [SEP] apple [EOS]"], return_tensors="pt")
    assert plain(**batch).logits.shape == (1, 1)
    assert torch.equal(plain(**batch).logits, model(**batch).logits)


def test_errors_are_one_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(InputError, match=r"nope: model directory not found"):
        load_policy(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"not a model directory \(no config.json\)"):
        load_policy(str(tmp_path / "empty"), tokenizer=build_tokenizer())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set") as info:
        load_policy("some-org/not-a-cached-model")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="unknown toy size 'huge'"):
        load_policy("toy:policy-huge")


def test_tokenizer_model_mismatch(tmp_path) -> None:
    model, tok = load_policy("toy:policy", device="cpu")
    model.resize_token_embeddings(50)
    save_model(model, tok, tmp_path / "small")
    with pytest.raises(InputError, match="tokenizer has 89 tokens but the model embeds only 50"):
        load_policy(str(tmp_path / "small"))


def test_freeze() -> None:
    model, _ = load_policy("toy:policy", device="cpu")
    frozen = freeze(model)
    assert not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
