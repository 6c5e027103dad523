"""Reward models: save -> load is bit-exact (BT and InfoRM), HF loads ours, pooling, latents;
batched encoding equals the per-row loop, sorted batches and shared encodings equal plain scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from goodhartlab.data.encoding import (
    SharedEncodings,
    encode_reward_inputs,
    format_prompt,
    tokenizer_key,
)
from goodhartlab.models.inform import InfoRMConfig, last_token_index
from goodhartlab.models.reward import (
    encode_for_reward,
    ensemble_members,
    load_reward_model,
    load_reward_models,
    pad_rows,
    reward_forward,
    reward_token_rows,
    save_reward_model,
    score_encoded,
    score_members,
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


# Many rows of varied length (empty, long, repeated prompts) for the batching tests.
MANY_PROMPTS = [PROMPTS[i % 3] for i in range(11)] + ["list five animals"]
MANY_RESPONSES = [
    "",
    "red",
    "red and blue",
    "saw , drill and hammer thanks !",
    "sure red , blue , green and red great",
    "apple",
    " ".join(["very"] * 80),  # longer than the toy tokenizer's 64: cut before eos
    "saw and saw",
    "thanks",
    "red , blue",
    "hammer",
    "cat , dog and goat",
]


def _per_row(tok, prompts, responses, template=None, max_length=None) -> list[list[int]]:
    """The reference: one tokenizer call per prompt and per response, cut, then eos."""
    limit = max_length or tok.model_max_length
    rows = []
    for prompt, response in zip(prompts, responses):
        p_ids = tok(format_prompt(tok, prompt, template), add_special_tokens=False)["input_ids"]
        r_ids = tok(response, add_special_tokens=False)["input_ids"] if response else []
        rows.append([*(list(p_ids) + list(r_ids))[: limit - 1], tok.eos_token_id])
    return rows


@pytest.mark.parametrize("template", [None, "{bos} {prompt} and {sep}"])
@pytest.mark.parametrize("max_length", [None, 1, 4, 9, 200])
def test_batched_encoding_gives_the_per_row_ids(template, max_length) -> None:
    _, tok = load_reward_model("toy:rm")
    expected = _per_row(tok, MANY_PROMPTS, MANY_RESPONSES, template, max_length)
    inputs = encode_reward_inputs(tok, MANY_PROMPTS, MANY_RESPONSES, template, max_length)
    assert inputs.rows() == expected
    answer_tokens = [len(tok(r, add_special_tokens=False)["input_ids"]) for r in MANY_RESPONSES]
    assert inputs.response_lengths.tolist() == answer_tokens  # uncut, whatever max_length
    assert reward_token_rows(tok, MANY_PROMPTS, MANY_RESPONSES, template, max_length) == expected
    width = max(map(len, expected))
    ids, mask = encode_for_reward(tok, MANY_PROMPTS, MANY_RESPONSES, template, max_length)
    assert ids.dtype == mask.dtype == torch.long and ids.shape == (len(expected), width)
    for i, row in enumerate(expected):
        assert ids[i].tolist() == row + [tok.pad_token_id] * (width - len(row))
        assert mask[i].tolist() == [1] * len(row) + [0] * (width - len(row))
    again, again_mask = pad_rows(expected, tok.pad_token_id)
    assert torch.equal(again, ids) and torch.equal(again_mask, mask)


@pytest.mark.parametrize("inform", [False, True])
def test_sorted_batches_equal_one_at_a_time(inform) -> None:
    model, tok = load_reward_model("toy:rm", seed=4, inform=InfoRMConfig(4) if inform else None)
    model.eval()
    alone = [
        score_texts(model, tok, [p], [r], return_latents=inform)
        for p, r in zip(MANY_PROMPTS, MANY_RESPONSES)
    ]
    # batch 5 over 12 rows of varied length: three batches cut from the length-sorted order
    batched = score_texts(model, tok, MANY_PROMPTS, MANY_RESPONSES, batch_size=5,
                          return_latents=inform)  # fmt: skip
    if inform:
        (scores, mu), alone_mu = batched, np.concatenate([a[1] for a in alone])
        np.testing.assert_allclose(mu, alone_mu, rtol=1e-5, atol=1e-6)
        alone = [a[0] for a in alone]
    else:
        scores = batched
    assert scores.dtype == np.float64 and scores.shape == (len(MANY_PROMPTS),)
    # padding is masked; only float summation order differs between batch layouts
    np.testing.assert_allclose(scores, np.concatenate(alone), rtol=1e-5, atol=1e-6)


def test_shared_encoding_scores_each_member_as_alone(monkeypatch) -> None:
    import goodhartlab.data.encoding as encoding

    members = [load_reward_model("toy:rm", seed=s) for s in (1, 2)]
    members = [(m.eval(), t) for m, t in members]
    assert members[0][1] is not members[1][1] and tokenizer_key(members[0][1]) == tokenizer_key(
        members[1][1]
    )
    calls = []
    real = encoding.encode_reward_inputs
    monkeypatch.setattr(
        encoding, "encode_reward_inputs", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    together = score_members(members, MANY_PROMPTS, MANY_RESPONSES, batch_size=4)
    assert len(calls) == 1  # two members, one tokenizer: encoded once
    for (model, tok), scores in zip(members, together):
        alone = score_texts(model, tok, MANY_PROMPTS, MANY_RESPONSES, batch_size=4)
        np.testing.assert_array_equal(scores, alone)
    assert not np.allclose(together[0], together[1])


def test_members_with_different_tokenizers_are_encoded_apart() -> None:
    model, tok = load_reward_model("toy:rm", seed=1)
    _, same = load_reward_model("toy:rm", seed=2)
    _, templated = load_reward_model("toy:rm", seed=3)
    templated.chat_template = (
        "{{ bos_token }} {% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    _, grown = load_reward_model("toy:rm", seed=4)
    grown.add_tokens(["zebra"])
    keys = {tokenizer_key(t) for t in (tok, same, templated, grown)}
    assert len(keys) == 3
    same(["red"], padding=True)  # padding state left on the backend does not change the ids
    assert tokenizer_key(same) == tokenizer_key(tok)
    shared = SharedEncodings(MANY_PROMPTS, MANY_RESPONSES)
    for t in (tok, same, templated, grown):
        assert shared.get(t).rows() == _per_row(t, MANY_PROMPTS, MANY_RESPONSES)
    assert len(shared) == 3
    assert shared.get(templated).rows() != shared.get(tok).rows()
    model.eval()
    np.testing.assert_array_equal(
        score_encoded(model, shared.get(same), 4),
        score_texts(model, tok, MANY_PROMPTS, MANY_RESPONSES, batch_size=4),
    )
