"""The ORPO discriminator: architecture, input encoding, and training that recovers known ratios."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from goodhartlab.core.occupancy import om_distance
from goodhartlab.models.discriminator import (
    Discriminator,
    clip_weights_,
    discriminator_scores,
    train_discriminator,
)

P = torch.tensor([0.1, 0.2, 0.3, 0.4])  # current policy's state occupancy
Q = torch.tensor([0.25, 0.25, 0.4, 0.1])  # base policy's state occupancy
STATES = torch.eye(4)


def test_architecture_matches_seed_defaults() -> None:
    disc = Discriminator(state_dim=26 + 10, action_dim=4, discrete_actions=True)
    kinds = [type(m) for m in disc.net]
    assert kinds == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear]
    shapes = [tuple(m.weight.shape) for m in disc.net if isinstance(m, nn.Linear)]
    assert shapes == [(256, 40), (256, 256), (1, 256)]  # tomato: 40 inputs
    assert disc.net[1].negative_slope == 0.01
    assert disc(torch.zeros(3, 40)).shape == (3,)


def test_encode_discrete_continuous_and_state_only() -> None:
    obs = torch.arange(6.0).reshape(2, 1, 3)
    disc = Discriminator(state_dim=3, action_dim=3, discrete_actions=True, width=8)
    x = disc.encode(obs, torch.tensor([2, 0]))
    assert x.tolist() == [[0, 1, 2, 0, 0, 1], [3, 4, 5, 1, 0, 0]]
    cont = Discriminator(state_dim=3, action_dim=2, discrete_actions=False, width=8)
    x = cont.encode(obs, torch.tensor([[0.5, -1.0], [0.25, 2.0]]))
    assert x.tolist() == [[0, 1, 2, 0.5, -1.0], [3, 4, 5, 0.25, 2.0]]
    state_only = Discriminator(state_dim=3, use_action_for_disc=False, width=8)
    assert state_only.in_dim == 3
    assert state_only.encode(obs).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="pass actions"):
        disc.encode(obs)
    with pytest.raises(ValueError, match="state features"):
        disc.encode(torch.zeros(2, 4), torch.tensor([0, 1]))


def _samples(probs: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n one-hot states drawn with exactly round(n * p) of each (no sampling noise)."""
    counts = torch.round(probs * n).long()
    idx = torch.repeat_interleave(torch.arange(len(probs)), counts)
    return STATES[idx[torch.randperm(len(idx), generator=gen)]]


def _train(divergence: str, seed: int = 0, **kwargs: float) -> Discriminator:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    disc = Discriminator(state_dim=4, use_action_for_disc=False, width=32)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    cur, base = _samples(P, 1000, gen), _samples(Q, 600, gen)  # unequal sizes on purpose
    metrics = train_discriminator(
        disc, opt, cur, base, divergence, steps=30, minibatch_size=256, generator=gen, **kwargs
    )
    assert metrics["updates"] == 30 * math.ceil(1600 / 256)
    assert math.isfinite(metrics["loss"])
    for group in opt.param_groups:  # a short low-lr phase removes most of Adam's jitter
        group["lr"] = 3e-4
    train_discriminator(
        disc, opt, cur, base, divergence, steps=10, minibatch_size=256, generator=gen, **kwargs
    )
    return disc


def test_trained_kl_discriminator_recovers_log_ratio_and_divergences() -> None:
    disc = _train("kl")
    d = discriminator_scores(disc, STATES)
    assert d.tolist() == pytest.approx(torch.log(P / Q).tolist(), abs=0.06)
    kl = (P * torch.log(P / Q)).sum().item()
    chi2 = ((P - Q) ** 2 / Q).sum().item()
    assert (P * om_distance(d, "kl")).sum().item() == pytest.approx(kl, abs=0.02)
    assert (P * om_distance(d, "chi2")).sum().item() == pytest.approx(chi2, abs=0.06)
    assert om_distance(d, "chi2").tolist() == pytest.approx((P / Q - 1).tolist(), abs=0.15)


def test_trained_tv_discriminator_recovers_sign() -> None:
    d = discriminator_scores(_train("tv"), STATES)
    assert torch.sign(d).tolist() == torch.sign(P - Q).tolist()


def _mean_input_grad_norm(disc: Discriminator) -> float:
    x = STATES.clone().requires_grad_(True)
    (grads,) = torch.autograd.grad(disc(x).sum(), x)
    return grads.norm(dim=1).mean().item()


def test_wasserstein_with_gradient_penalty_and_weight_clip() -> None:
    disc = _train("wasserstein", grad_penalty_weight=1.0)
    d = discriminator_scores(disc, STATES)
    # The critic puts its highest score where the current policy visits most in excess of the
    # base policy, and the estimate E_P d - E_Q d of the (dual) Wasserstein objective is positive.
    assert d.argmax().item() == 3 and ((P - Q) * d).sum().item() > 0.2
    # The penalty holds the input-gradient norm near 1; without it the critic's scores explode.
    assert _mean_input_grad_norm(disc) < 3.0
    unconstrained = _train("wasserstein")
    assert _mean_input_grad_norm(unconstrained) > 10.0
    clipped = _train("wasserstein", weight_clip=0.01)
    assert all(p.abs().max().item() <= 0.01 + 1e-8 for p in clipped.parameters())


def test_clip_weights_and_chunked_scores() -> None:
    disc = Discriminator(state_dim=2, action_dim=2, width=8)
    clip_weights_(disc, 0.05)
    assert max(p.abs().max().item() for p in disc.parameters()) <= 0.05 + 1e-8
    obs = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([0, 1] * 5)
    whole = disc(disc.encode(obs, actions))
    chunked = discriminator_scores(disc, (obs, actions), chunk_size=3)
    assert torch.allclose(whole, chunked) and not chunked.requires_grad


def test_state_action_chi2_training_from_obs_action_pairs() -> None:
    # Same state, different action frequencies: only the one-hot action separates the policies.
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    obs = torch.zeros(800, 1)
    cur_actions = (torch.arange(800) < 640).long()  # P(a=1) = 0.8
    base_actions = (torch.arange(800) < 320).long()  # P(a=1) = 0.4
    disc = Discriminator(state_dim=1, action_dim=2, discrete_actions=True, width=16)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    batches = ((obs, cur_actions), (obs, base_actions))
    train_discriminator(disc, opt, *batches, "chi2", 10, 200, generator=gen)
    for group in opt.param_groups:
        group["lr"] = 3e-4
    metrics = train_discriminator(disc, opt, *batches, "chi2", 5, 200, generator=gen)
    # sign(d) is right for 640 current (a=1) and 480 base (a=0) samples out of 1600.
    assert metrics["accuracy"] == pytest.approx(0.7)
    d = discriminator_scores(disc, (obs[:2], torch.tensor([0, 1])))
    # chi2 distance = ratio - 1 per state-action: 0.2 / 0.6 - 1 and 0.8 / 0.4 - 1.
    assert om_distance(d, "chi2").tolist() == pytest.approx([-2 / 3, 1.0], abs=0.05)
