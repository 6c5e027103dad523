"""InfoRM Gaussian KL in both modes, reparameterisation, total loss."""

from __future__ import annotations

import math

import pytest
import torch

from goodhartlab.core.bottleneck import gaussian_kl, inform_loss, reparameterize

MU = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
LOGVAR = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])


def test_standard_sum_kl() -> None:
    # row 0: per dim ½μ² = 0.5 each -> 1.0 ; row 1: dim 0 ½(2 − 1 − ln 2), dim 1 0
    expected = torch.tensor([1.0, 0.5 * (1 - math.log(2.0))])
    torch.testing.assert_close(gaussian_kl(MU, LOGVAR), expected)


def test_mean_pooled_kl_is_the_seed_code() -> None:
    # row 0: mean μ = 0, mean logvar = 0 -> KL 0 although each μ_j = ±1
    # row 1: m = 0, ℓ = ln2/2 -> −½(1 + ℓ − e^ℓ)
    ell = math.log(2.0) / 2
    expected = torch.tensor([0.0, -0.5 * (1 + ell - math.exp(ell))])
    torch.testing.assert_close(gaussian_kl(MU, LOGVAR, mode="mean_pooled"), expected)
    with pytest.raises(ValueError, match="kl mode"):
        gaussian_kl(MU, LOGVAR, mode="sum")  # type: ignore[arg-type]


def test_reparameterize_is_seeded_and_has_the_right_moments() -> None:
    mu = torch.full((20000, 2), 3.0)
    logvar = torch.full((20000, 2), math.log(4.0))
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    again = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)
    assert abs(z.mean().item() - 3.0) < 0.05 and abs(z.std().item() - 2.0) < 0.05
    mu_g = mu[:1].clone().requires_grad_(True)
    reparameterize(mu_g, logvar[:1]).sum().backward()
    torch.testing.assert_close(mu_g.grad, torch.ones(1, 2))


def test_inform_loss_averages_kl_over_all_sequences() -> None:
    bt = torch.tensor([1.0, 3.0])
    kl = torch.tensor([0.0, 1.0, 2.0, 5.0])
    assert inform_loss(bt, kl, beta=0.1).item() == pytest.approx(2.0 + 0.1 * 2.0)
