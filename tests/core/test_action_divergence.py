"""Closed-form action-distribution divergences against brute-force sums and numerical integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from goodhartlab.core.action_divergence import (
    action_divergence,
    beta_chi2,
    beta_kl,
    categorical_chi2,
    categorical_kl,
    chi2_or_kl,
    gaussian_chi2,
    gaussian_kl,
    sqrt_chi2,
)


def _brute_categorical(logits: list[float], ref_logits: list[float]) -> tuple[float, float]:
    p = [math.exp(v) for v in logits]
    q = [math.exp(v) for v in ref_logits]
    p = [v / sum(p) for v in p]
    q = [v / sum(q) for v in q]
    kl = sum(pa * math.log(pa / qa) for pa, qa in zip(p, q, strict=True))
    chi2 = sum((pa - qa) ** 2 / qa for pa, qa in zip(p, q, strict=True))
    return kl, chi2


def test_categorical_matches_brute_force_both_directions() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2
    ref = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2
    for a, b in ((logits, ref), (ref, logits)):
        kl, chi2 = categorical_kl(a, b), categorical_chi2(a, b)
        assert kl.shape == chi2.shape == (6,)
        for i in range(6):
            want_kl, want_chi2 = _brute_categorical(a[i].tolist(), b[i].tolist())
            assert kl[i].item() == pytest.approx(want_kl, rel=1e-10)
            assert chi2[i].item() == pytest.approx(want_chi2, rel=1e-10)
    forward, backward = categorical_kl(logits, ref), categorical_kl(ref, logits)
    assert not torch.allclose(forward, backward)  # asymmetric: direction matters
    assert torch.allclose(categorical_kl(logits, logits), torch.zeros(6, dtype=torch.float64))
    assert torch.allclose(categorical_chi2(logits, logits), torch.zeros(6, dtype=torch.float64))


def test_categorical_masked_actions() -> None:
    inf = float("inf")
    # P puts no mass on action 2 (0 log 0 = 0 and 0/q terms are q): finite.
    p_logits = torch.tensor([[0.0, 0.0, -inf]])
    q_logits = torch.tensor([[0.0, 0.0, 0.0]])
    assert categorical_kl(p_logits, q_logits).item() == pytest.approx(math.log(1.5), rel=1e-6)
    # sum (p-q)^2/q = 2 * (1/2 - 1/3)^2 / (1/3) + (1/3)^2 / (1/3) = 1/6 + 1/3 = 0.5
    assert categorical_chi2(p_logits, q_logits).item() == pytest.approx(0.5, rel=1e-6)
    # Q puts no mass where P does: infinite. Both masked: 0/0 counts as 0.
    assert categorical_kl(q_logits, p_logits).item() == inf
    assert categorical_chi2(q_logits, p_logits).item() == inf
    assert categorical_chi2(p_logits, p_logits).item() == 0.0
    assert categorical_kl(p_logits, p_logits).item() == 0.0
    # Gradients stay finite for the finite case with masked logits.
    x = p_logits.clone().requires_grad_(True)
    (categorical_kl(x, q_logits) + categorical_chi2(x, q_logits)).sum().backward()
    assert torch.isfinite(x.grad[:, :2]).all()


def _normal_pdf(x: float, m: float, s: float) -> float:
    return stats.norm.pdf(x, m, s)


def _quad_kl(m1: float, s1: float, m2: float, s2: float) -> float:
    def f(x: float) -> float:
        return _normal_pdf(x, m1, s1) * (
            stats.norm.logpdf(x, m1, s1) - stats.norm.logpdf(x, m2, s2)
        )

    return integrate.quad(f, m1 - 30 * s1, m1 + 30 * s1, limit=200)[0]


def _quad_chi2(m1: float, s1: float, m2: float, s2: float) -> float:
    def f(x: float) -> float:
        return math.exp(2 * stats.norm.logpdf(x, m1, s1) - stats.norm.logpdf(x, m2, s2))

    return integrate.quad(f, -np.inf, np.inf, limit=200)[0] - 1.0


@pytest.mark.parametrize(
    ("m1", "s1", "m2", "s2"),
    [(0.3, 0.5, -0.2, 0.8), (1.0, 1.2, 0.0, 1.0), (0.0, 0.2, 0.1, 0.15), (-0.5, 1.0, -0.5, 1.0)],
)
def test_gaussian_1d_matches_quadrature(m1: float, s1: float, m2: float, s2: float) -> None:
    args = [torch.tensor([[v]], dtype=torch.float64) for v in (m1, math.log(s1), m2, math.log(s2))]
    assert gaussian_kl(*args).item() == pytest.approx(_quad_kl(m1, s1, m2, s2), abs=1e-8)
    assert gaussian_chi2(*args).item() == pytest.approx(_quad_chi2(m1, s1, m2, s2), abs=1e-7)


def test_gaussian_multidim_sums_kl_and_multiplies_chi2() -> None:
    dims = [(0.3, 0.5, -0.2, 0.8), (1.0, 1.2, 0.0, 1.0)]
    mean, log_std, ref_mean, ref_log_std = (
        torch.tensor([[d[i] if i % 2 == 0 else math.log(d[i]) for d in dims]], dtype=torch.float64)
        for i in range(4)
    )
    want_kl = sum(_quad_kl(*d) for d in dims)
    want_chi2 = math.prod(1.0 + _quad_chi2(*d) for d in dims) - 1.0
    assert gaussian_kl(mean, log_std, ref_mean, ref_log_std).item() == pytest.approx(
        want_kl, abs=1e-7
    )
    got = gaussian_chi2(mean, log_std, ref_mean, ref_log_std).item()
    assert got == pytest.approx(want_chi2, abs=1e-6)


def test_gaussian_chi2_infinite_when_variance_too_wide() -> None:
    # sigma_P^2 = 2 sigma_Q^2 exactly (boundary) and beyond: the integral diverges.
    mean = torch.zeros(3, 1)
    ref_mean = torch.zeros(3, 1)
    log_std = torch.tensor([[math.log(math.sqrt(2.0))], [math.log(3.0)], [0.0]], requires_grad=True)
    ref_log_std = torch.zeros(3, 1)
    chi2 = gaussian_chi2(mean, log_std, ref_mean, ref_log_std)
    assert torch.isinf(chi2[:2]).all() and chi2[2].item() == pytest.approx(0.0, abs=1e-6)
    kl = gaussian_kl(mean, log_std, ref_mean, ref_log_std)
    fallback = chi2_or_kl(chi2, kl)
    assert torch.isfinite(fallback).all()
    assert fallback[1].item() == pytest.approx(math.log(1 / 3) + 0.5 * (9 - 1), rel=1e-5)
    fallback.sum().backward()
    assert torch.isfinite(log_std.grad).all()
    # The reverse direction (narrow P against wide Q) stays finite.
    assert torch.isfinite(gaussian_chi2(mean, ref_log_std, ref_mean, log_std.detach())).all()


def test_sqrt_chi2_floor() -> None:
    chi2 = torch.tensor([0.0, 1e-6, 4.0], requires_grad=True)
    out = sqrt_chi2(chi2)
    assert out.tolist() == pytest.approx([0.01, 0.01, 2.0])
    out.sum().backward()
    assert chi2.grad.tolist() == pytest.approx([0.0, 0.0, 0.25])


@pytest.mark.parametrize(("a1", "b1", "a2", "b2"), [(2.0, 3.0, 2.5, 2.0), (5.0, 2.0, 3.0, 3.0)])
def test_beta_matches_quadrature(a1: float, b1: float, a2: float, b2: float) -> None:
    p, q = stats.beta(a1, b1), stats.beta(a2, b2)
    want_kl = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), 0, 1, limit=200)[0]
    want_chi2 = (
        integrate.quad(lambda x: math.exp(2 * p.logpdf(x) - q.logpdf(x)), 0, 1, limit=200)[0] - 1.0
    )
    args = [torch.tensor([[v]], dtype=torch.float64) for v in (a1, b1, a2, b2)]
    assert beta_kl(*args).item() == pytest.approx(want_kl, abs=1e-7)
    assert beta_chi2(*args).item() == pytest.approx(want_chi2, abs=1e-6)


def test_beta_chi2_infinite_outside_domain() -> None:
    # 2 * a1 <= a2: p^2/q ~ x^(2 a1 - a2 - 1) is not integrable at 0.
    args = [torch.tensor([[v]]) for v in (1.0, 2.0, 2.5, 2.0)]
    assert torch.isinf(beta_chi2(*args)).all()


def test_action_divergence_dispatch() -> None:
    gen = torch.Generator().manual_seed(1)
    logits, ref = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    assert torch.allclose(
        action_divergence(logits, ref, "categorical", "kl"), categorical_kl(logits, ref)
    )
    chi2 = categorical_chi2(logits, ref)
    assert torch.allclose(action_divergence(logits, ref, "categorical", "chi2"), chi2)
    assert torch.allclose(
        action_divergence(logits, ref, "categorical", "sqrt_chi2"), chi2.clamp(min=1e-4).sqrt()
    )
    # Gaussian inputs are [mean | log_std]; row 1 has an infinite chi2 and falls back to KL.
    inputs = torch.tensor([[0.1, -0.2, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    ref_inputs = torch.tensor([[0.0, 0.0, -0.1, 0.2], [0.0, 0.0, 0.0, 0.0]])
    kl = gaussian_kl(inputs[:, :2], inputs[:, 2:], ref_inputs[:, :2], ref_inputs[:, 2:])
    chi2 = gaussian_chi2(inputs[:, :2], inputs[:, 2:], ref_inputs[:, :2], ref_inputs[:, 2:])
    got = action_divergence(inputs, ref_inputs, "gaussian", "chi2")
    assert got[0].item() == pytest.approx(chi2[0].item()) and math.isinf(chi2[1].item())
    assert got[1].item() == pytest.approx(kl[1].item())
    beta_inputs = torch.tensor([[2.0, 3.0]])
    beta_ref = torch.tensor([[2.5, 2.0]])
    want = beta_kl(*beta_inputs.chunk(2, -1), *beta_ref.chunk(2, -1))
    assert torch.allclose(action_divergence(beta_inputs, beta_ref, "beta", "kl"), want)
    with pytest.raises(ValueError, match="unknown AD divergence"):
        action_divergence(logits, ref, "categorical", "tv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="family"):
        action_divergence(logits, ref, "poisson", "kl")  # type: ignore[arg-type]
