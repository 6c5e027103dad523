"""KV-cache sampling: same tokens and logprobs as full forward passes, eos handling, filters."""

import math

import pytest
import torch

from goodhartlab.data.encoding import encode_prompts
from goodhartlab.models import load_policy
from goodhartlab.rollout.generate import filter_logits, sample
from goodhartlab.rollout.sampling import sample_texts

PROMPTS = ["list two fruits", "list five colors", "list one animals"]


@pytest.fixture(scope="module")
def policy():
    model, tok = load_policy("toy:policy", device="cpu", seed=5)
    return model.eval(), tok


def _sample(model, tok, seed=0, **kw):
    ids, mask = encode_prompts(tok, PROMPTS)
    gen = torch.Generator().manual_seed(seed)
    kw.setdefault("max_new_tokens", 12)
    return sample(
        model,
        ids,
        mask,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        generator=gen,
        **kw,
    )


def test_logprobs_equal_a_full_forward_pass(policy) -> None:
    model, tok = policy
    out = _sample(model, tok, temperature=1.0)
    full_ids = torch.cat([out.prompt_ids, out.response_ids], dim=1)
    full_mask = torch.cat([out.prompt_mask, out.response_mask], dim=1).long()
    positions = (full_mask.cumsum(1) - 1).clamp_min(0)
    logits = model(input_ids=full_ids, attention_mask=full_mask, position_ids=positions).logits
    p = out.prompt_ids.shape[1]
    ref = logits[:, p - 1 : -1].log_softmax(-1).gather(-1, out.response_ids[..., None])[..., 0]
    m = out.response_mask
    assert m.any()
    assert torch.allclose(out.logprobs[m], ref[m], atol=1e-5)
    assert torch.all(out.logprobs[~m] == 0)


def test_rows_stop_at_eos_and_are_padded(policy) -> None:
    model, tok = policy
    out = _sample(model, tok, max_new_tokens=30)
    assert out.response_ids.shape[1] == int(out.response_mask.sum(1).max())  # no pad-only columns
    for row in range(len(PROMPTS)):
        ids, m = out.response_ids[row], out.response_mask[row]
        n = int(m.sum())
        assert m[:n].all() and not m[n:].any()  # mask is a prefix
        assert torch.all(ids[n:] == tok.pad_token_id)
        eos_at = (ids[:n] == tok.eos_token_id).nonzero()
        if bool(out.ended[row]):
            assert eos_at.numel() == 1 and int(eos_at[0]) == n - 1  # eos is the last token
        else:
            assert eos_at.numel() == 0 and n == 30


def test_same_seed_same_samples_and_greedy_is_argmax(policy) -> None:
    model, tok = policy
    a, b = _sample(model, tok, seed=3), _sample(model, tok, seed=3)
    assert torch.equal(a.response_ids, b.response_ids) and torch.equal(a.logprobs, b.logprobs)
    c = _sample(model, tok, seed=4)
    assert not torch.equal(a.response_ids, c.response_ids)
    greedy = _sample(model, tok, temperature=0.0, max_new_tokens=1)
    ids, mask = encode_prompts(tok, PROMPTS)
    positions = (mask.long().cumsum(1) - 1).clamp_min(0)
    logits = model(input_ids=ids, attention_mask=mask.long(), position_ids=positions).logits
    assert torch.equal(greedy.response_ids[:, 0], logits[:, -1].argmax(-1))


def test_matches_transformers_generate_greedy(policy) -> None:
    model, tok = policy
    ours = _sample(model, tok, temperature=0.0, max_new_tokens=10)
    ids, mask = encode_prompts(tok, PROMPTS)
    theirs = model.generate(
        input_ids=ids,
        attention_mask=mask.long(),
        do_sample=False,
        max_new_tokens=10,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )[:, ids.shape[1] :]
    width = theirs.shape[1]
    assert torch.equal(ours.response_ids[:, :width], theirs)


def test_repetition_penalty_matches_transformers_generate(policy) -> None:
    """The length paper samples its evaluations with repetition_penalty 1.2 through generate()."""
    model, tok = policy
    ids, mask = encode_prompts(tok, PROMPTS)  # equal lengths: no padding for generate() to count
    assert bool(mask.all())
    for penalty in (1.2, 3.0):
        ours = _sample(model, tok, temperature=0.0, max_new_tokens=10, repetition_penalty=penalty)
        theirs = model.generate(
            input_ids=ids, attention_mask=mask.long(), do_sample=False, max_new_tokens=10,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            repetition_penalty=penalty,
        )[:, ids.shape[1] :]  # fmt: skip
        assert torch.equal(ours.response_ids[:, : theirs.shape[1]], theirs), penalty
    plain = _sample(model, tok, temperature=0.0, max_new_tokens=10)
    assert not torch.equal(plain.response_ids, ours.response_ids)  # the penalty did act
    row = ours.response_ids[0][ours.response_mask[0]].tolist()
    assert len(set(row)) > len(set(plain.response_ids[0][plain.response_mask[0]].tolist()))


def test_apply_repetition_penalty_hand_values() -> None:
    from goodhartlab.rollout.generate import apply_repetition_penalty

    logits = torch.tensor([[2.0, -2.0, 1.0]])
    seen = torch.tensor([[True, True, False]])
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


def test_filters_keep_the_right_tokens() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    # top_p 0.75: 0.5 alone < 0.75, 0.5 + 0.3 reaches it -> keep two
    assert torch.isinf(filter_logits(logits, top_p=0.75)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.5)).tolist() == [[False, True, True, True]]
    kept = filter_logits(logits, top_p=0.9).log_softmax(-1).exp()
    assert math.isclose(float(kept[0, 0]), 0.5 / 0.95, rel_tol=1e-6)


def test_top_k_one_sampling_is_greedy(policy) -> None:
    model, tok = policy
    k1 = _sample(model, tok, seed=9, top_k=1)
    greedy = _sample(model, tok, temperature=0.0)
    assert torch.equal(k1.response_ids, greedy.response_ids)
    assert torch.allclose(k1.logprobs, torch.zeros_like(k1.logprobs))  # one token has all mass


def test_sample_texts_decodes_and_batches_consistently(policy) -> None:
    model, tok = policy
    whole = sample_texts(model, tok, PROMPTS, max_new_tokens=8, seed=1, batch_size=8)
    assert [s.prompt for s in whole] == PROMPTS
    assert all("[EOS]" not in s.response and "[PAD]" not in s.response for s in whole)
    assert all(0 < s.n_tokens <= 8 for s in whole)


def test_bad_arguments(policy) -> None:
    model, tok = policy
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        _sample(model, tok, max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        _sample(model, tok, temperature=-1.0)
