"""Reward models: save -> load is bit-exact (BT and InfoRM), HF loads ours, pooling, latents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from goodhartlab.models.inform import InfoRMConfig, last_token_index
from goodhartlab.models.reward import (
    encode_for_reward,
    ensemble_members,
    load_reward_model,
    load_reward_models,
    reward_forward,
    save_reward_model,
    score_texts,
    write_ensemble_manifest,
    write_score_stats,
)

PROMPTS = ["list two colors", "list three tools", "list one fruits"]
RESPONSES = ["red and blue", "saw , drill and hammer thanks !", ""]


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a, b) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_bt_round_trip_is_bit_exact_and_plain_hf_agrees(tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification

    model, tok = load_reward_model("toy:rm", seed=3)
    model.eval()
    before = score_texts(model, tok, PROMPTS, RESPONSES)
    save_reward_model(model, tok, tmp_path / "rm", score_mean=0.25, score_std=2.0)
    again, tok2 = load_reward_model(str(tmp_path / "rm"))
    _assert_same_state(model, again)
    np.testing.assert_array_equal(score_texts(again.eval(), tok2, PROMPTS, RESPONSES), before)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    assert (plain.config.score_mean, plain.config.score_std) == (0.25, 2.0)
    ids, mask = encode_for_reward(tok, PROMPTS, RESPONSES)
    with torch.no_grad():
        theirs = plain(input_ids=ids, attention_mask=mask).logits[:, 0].double().numpy()
    np.testing.assert_array_equal(theirs, before)


@pytest.mark.parametrize("decoder", ["linear", "swiglu"])
def test_inform_round_trip_is_bit_exact(tmp_path, decoder) -> None:
    model, tok = load_reward_model("toy:rm", seed=1, inform=InfoRMConfig(8, decoder))
    model.eval()
    before, mu = score_texts(model, tok, PROMPTS, RESPONSES, return_latents=True)
    assert mu.shape == (3, 8)
    save_reward_model(model, tok, tmp_path / "rm", score_mean=0.0, score_std=1.0)
    again, tok2 = load_reward_model(str(tmp_path / "rm"))
    _assert_same_state(model, again)
    after, mu2 = score_texts(again.eval(), tok2, PROMPTS, RESPONSES, return_latents=True)
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(mu2, mu)
    config = json.loads((tmp_path / "rm" / "inform_config.json").read_text())
    assert config == {"latent_dim": 8, "decoder": decoder, "score_mean": 0.0, "score_std": 1.0}


def test_inform_samples_in_training_and_uses_mu_in_eval() -> None:
    model, tok = load_reward_model("toy:rm", seed=1, inform=InfoRMConfig(4))
    ids, mask = encode_for_reward(tok, PROMPTS, RESPONSES)
    model.eval()
    with torch.no_grad():
        out = reward_forward(model, ids, mask)
        expected = model.decode_head(out.mu).squeeze(-1)
        torch.testing.assert_close(out.scores, expected)
        model.train()
        model.noise_generator = torch.Generator().manual_seed(0)
        noisy = reward_forward(model, ids, mask).scores
    assert not torch.allclose(noisy, out.scores)


def test_bt_latents_are_refused() -> None:
    model, tok = load_reward_model("toy:rm")
    with pytest.raises(ValueError, match="InfoRM"):
        score_texts(model, tok, PROMPTS, RESPONSES, return_latents=True)


def test_last_token_index_left_and_right_padding() -> None:
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    assert last_token_index(right).tolist() == [2, 3, 0]
    assert last_token_index(left).tolist() == [3, 3, 3]


def test_scores_do_not_depend_on_batch_padding() -> None:
    model, tok = load_reward_model("toy:rm", seed=2)
    model.eval()
    together = score_texts(model, tok, PROMPTS, RESPONSES)
    alone = [score_texts(model, tok, [p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_different_seeds_give_different_heads() -> None:
    a, _ = load_reward_model("toy:rm", seed=1)
    b, _ = load_reward_model("toy:rm", seed=2)
    c, _ = load_reward_model("toy:rm", seed=1)
    assert not torch.equal(a.score.weight, b.score.weight)
    assert torch.equal(a.score.weight, c.score.weight)


def test_manifest_members_and_score_stats(tmp_path) -> None:
    for seed in (1, 2):
        model, tok = load_reward_model("toy:rm", seed=seed)
        save_reward_model(model, tok, tmp_path / f"rm_seed{seed}" / "model", 0.0, 1.0)
    write_ensemble_manifest(
        tmp_path / "ensemble.json",
        [{"seed": s, "path": f"rm_seed{s}/model"} for s in (1, 2)],
    )
    assert ensemble_members(tmp_path) == [tmp_path / f"rm_seed{s}" / "model" for s in (1, 2)]
    assert ensemble_members(tmp_path / "rm_seed2") == [tmp_path / "rm_seed2" / "model"]
    assert len(load_reward_models([tmp_path, tmp_path / "rm_seed1" / "model"])) == 3
    write_score_stats(tmp_path / "rm_seed1" / "model", 1.5, 0.5)
    config = json.loads((tmp_path / "rm_seed1" / "model" / "config.json").read_text())
    assert (config["score_mean"], config["score_std"]) == (1.5, 0.5)
    with pytest.raises(ValueError, match="no reward model"):
        ensemble_members(tmp_path / "missing")
