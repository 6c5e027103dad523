"""Divergence estimators against hand-computed values and exact categorical divergences."""

from __future__ import annotations

import math

import torch

from goodhartlab.core.divergences import (
    chi2,
    clipped_exp,
    exp_clip_fractions,
    kl_k1,
    kl_k2,
    kl_k3,
    sqrt_chi2,
    tv,
)

L = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
E = math.e


def test_hand_computed_terms() -> None:
    torch.testing.assert_close(kl_k1(L), L)
    torch.testing.assert_close(kl_k2(L), torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64))
    k3 = torch.tensor([0.0, 1 / E - 1 + 1, E**2 - 1 - 2], dtype=torch.float64)
    torch.testing.assert_close(kl_k3(L), k3)
    c2 = torch.tensor([0.0, E + 1 / E - 2, E**-2 + E**2 - 2], dtype=torch.float64)
    torch.testing.assert_close(chi2(L), c2)
    torch.testing.assert_close(
        tv(L), torch.tensor([0.0, 0.5 * (1 - 1 / E), 0.5 * (E**2 - 1)], dtype=torch.float64)
    )


def test_sqrt_after_the_mean_and_the_floor() -> None:
    expected = math.sqrt((E + 1 / E - 2 + E**-2 + E**2 - 2) / 3)
    assert math.isclose(sqrt_chi2(L).item(), expected, rel_tol=1e-12)
    tiny = torch.tensor([1e-3, -1e-3], dtype=torch.float64, requires_grad=True)
    out = sqrt_chi2(tiny)  # chi2 ≈ 1e-6 < floor 1e-4
    assert math.isclose(out.item(), 1e-2, rel_tol=1e-12)
    out.backward()
    assert torch.all(tiny.grad == 0)


def test_estimators_are_unbiased_for_categorical_divergences() -> None:
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    log_ratio = torch.log(p) - torch.log(q)
    kl = (p * log_ratio).sum()
    torch.testing.assert_close((p * kl_k1(log_ratio)).sum(), kl)
    torch.testing.assert_close((p * kl_k3(log_ratio)).sum(), kl)
    torch.testing.assert_close((p * chi2(log_ratio)).sum(), (p**2 / q).sum() - 1)
    torch.testing.assert_close((p * tv(log_ratio)).sum(), 0.5 * (p - q).abs().sum())


def test_clipped_exp_is_the_tangent_beyond_the_limit() -> None:
    x = torch.tensor([0.0, 9.0, 10.0, 12.0, 1000.0], dtype=torch.float64, requires_grad=True)
    out = clipped_exp(x, limit=10.0)
    e10 = math.exp(10.0)
    expected = torch.tensor([1.0, math.exp(9.0), e10, 3 * e10, 991 * e10], dtype=torch.float64)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    torch.testing.assert_close(
        x.grad, torch.tensor([1.0, math.exp(9.0), e10, e10, e10], dtype=torch.float64)
    )
    # the seed's ē: e^{-L} linearised for L <= -10, used by k3 and chi2 with a limit
    big = torch.tensor([-12.0, 12.0], dtype=torch.float64)
    torch.testing.assert_close(
        kl_k3(big, limit=10.0),
        torch.tensor([3 * e10 - 1 - 12, math.exp(-12) - 1 + 12], dtype=torch.float64),
    )
    torch.testing.assert_close(
        chi2(big, limit=10.0), torch.tensor([3 * e10 + math.exp(-12) - 2] * 2, dtype=torch.float64)
    )


def test_exp_clip_fractions() -> None:
    frac = exp_clip_fractions(torch.tensor([-11.0, -10.0, 0.0, 10.0, 3.0]), limit=10.0)
    assert math.isclose(frac.ratio.item(), 0.2, rel_tol=1e-6)
    assert math.isclose(frac.inv_ratio.item(), 0.4, rel_tol=1e-6)
