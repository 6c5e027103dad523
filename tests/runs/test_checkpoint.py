"""Checkpoints restore optimizer and RNG state exactly, with no pickle."""

from functools import partial

import torch

from goodhartlab.models import load_policy, write_pretrained
from goodhartlab.runs.checkpoint import load_checkpoint_state, save_checkpoint


def _step(model, opt, ids) -> None:
    loss = model(ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad()


def test_resume_continues_bit_exact(tmp_path) -> None:
    ids = torch.randint(4, 80, (4, 10), generator=torch.Generator().manual_seed(0))
    model, tok = load_policy("toy:policy", device="cpu")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        _step(model, opt, ids)
    save_checkpoint(
        tmp_path / "c", partial(write_pretrained, model, tok), opt, 2, gen, extra={"k": 1}
    )
    assert not list((tmp_path / "c").glob("*.pt")) and not list((tmp_path / "c").glob("*.bin"))
    for _ in range(2):
        _step(model, opt, ids)
    expected = model(ids).logits
    draw = torch.rand(3, generator=gen)

    resumed, _ = load_policy(str(tmp_path / "c"), device="cpu")
    opt2 = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    gen2 = torch.Generator().manual_seed(999)
    step, extra = load_checkpoint_state(tmp_path / "c", opt2, gen2)
    assert (step, extra) == (2, {"k": 1})
    for _ in range(2):
        _step(resumed, opt2, ids)
    assert torch.equal(resumed(ids).logits, expected)
    assert torch.equal(torch.rand(3, generator=gen2), draw)
