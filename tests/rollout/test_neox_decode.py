"""The lean GPT-NeoX decode step gives the same bits as transformers' forward, so the same samples."""

import pytest
import torch

from goodhartlab.data.encoding import encode_prompts
from goodhartlab.models import load_policy
from goodhartlab.rollout.generate import sample
from goodhartlab.rollout.neox_decode import HFStep, NeoXStep, decode_step, lean_step_supported

# different lengths, so the prompts are left-padded and the padding mask is not all ones
PROMPTS = ["list two fruits", "list five colors and two fruits", "list one animals", "list two"]


@pytest.fixture(scope="module", params=[True, False], ids=["parallel", "sequential"])
def policy(request):
    model, tok = load_policy("toy:policy", device="cpu", seed=5)
    model.config.use_parallel_residual = request.param
    for layer in model.gpt_neox.layers:
        layer.use_parallel_residual = request.param
    return model.eval(), tok


def _sample(model, tok, lean: bool, prompts=PROMPTS, **kw):
    ids, mask = encode_prompts(tok, prompts)
    assert not bool(mask.all()) or prompts is not PROMPTS  # the padded case is exercised
    return sample(
        model, ids, mask, max_new_tokens=16, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(7), lean=lean, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7, "top_k": 5}, {"temperature": 0.0}])
def test_lean_and_transformers_steps_give_identical_samples(policy, kw) -> None:
    model, tok = policy
    lean, hf = _sample(model, tok, True, **kw), _sample(model, tok, False, **kw)
    assert torch.equal(lean.response_ids, hf.response_ids)
    assert torch.equal(lean.logprobs, hf.logprobs)  # bit-identical, not merely close
    assert torch.equal(lean.response_mask, hf.response_mask)


def test_logits_bit_identical_per_step_with_padding_and_dropped_rows(policy) -> None:
    model, tok = policy
    ids, mask = encode_prompts(tok, PROMPTS)
    attention = mask.long()
    positions = (attention.cumsum(1) - 1).clamp_min(0)[:, -1:] + 1
    with torch.no_grad():
        first = model(input_ids=ids, attention_mask=attention, use_cache=True,
                      position_ids=(attention.cumsum(1) - 1).clamp_min(0))  # fmt: skip
        second = model(input_ids=ids, attention_mask=attention, use_cache=True,
                       position_ids=(attention.cumsum(1) - 1).clamp_min(0))  # fmt: skip
        lean, hf = NeoXStep(model, first.cache), HFStep(model, second.cache, "cache")
        token = first.logits[:, -1].argmax(-1)
        for step in range(4):
            if step == 2:  # a row leaves the batch, as when it emits eos
                keep = torch.tensor([0, 1, 3])
                lean.keep(keep), hf.keep(keep)
                token, attention, positions = token[keep], attention[keep], positions[keep]
            attention = torch.cat([attention, attention.new_ones((len(token), 1))], dim=1)
            a, b = lean(token, positions, attention), hf(token, positions, attention)
            assert torch.equal(a, b)
            token, positions = a.argmax(-1), positions + 1


def test_lean_step_only_where_it_is_exact(policy) -> None:
    model, _ = policy
    assert lean_step_supported(model)
    model.config._attn_implementation = "eager"  # eager attention rounds differently
    try:
        assert not lean_step_supported(model)
        assert isinstance(decode_step(model, object(), "cache"), HFStep)
    finally:
        model.config._attn_implementation = "sdpa"
