"""ORPO discriminator losses, per-step distances and reward shaping against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from goodhartlab.core.occupancy import (
    OM_DIVERGENCES,
    balanced_mean,
    coef_reward_scale,
    discriminator_loss,
    gradient_penalty,
    om_distance,
    om_shaping_reward,
    trimmed_mean,
)

SCORES = torch.tensor([1.0, -0.5, 2.0, 0.0], dtype=torch.float64)
IS_BASE = torch.tensor([False, False, True, True])


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize("divergence", ["kl", "chi2", "sqrt_chi2"])
def test_logistic_loss_by_hand(divergence: str) -> None:
    got = discriminator_loss(SCORES, IS_BASE, divergence)  # type: ignore[arg-type]
    want = [_softplus(-1.0), _softplus(0.5), _softplus(2.0), math.log(2.0)]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    balanced = balanced_mean(got, IS_BASE).item()
    assert balanced == pytest.approx((want[0] + want[1]) / 2 + (want[2] + want[3]) / 2)


def test_tv_and_wasserstein_loss_by_hand() -> None:
    tv = discriminator_loss(SCORES, IS_BASE, "tv")
    want_tv = [
        math.tanh(-1.0) + 0.01,
        math.tanh(0.5) + 0.0025,
        math.tanh(2.0) + 0.04,
        0.0,
    ]
    assert tv.tolist() == pytest.approx(want_tv, rel=1e-12)
    w = discriminator_loss(SCORES, IS_BASE, "wasserstein")
    assert w.tolist() == [-1.0, 0.5, 2.0, 0.0]
    # -mean_cur d + mean_base d = -(0.25) + 1.0
    assert balanced_mean(w, IS_BASE).item() == pytest.approx(0.75)


def test_balanced_mean_unequal_and_empty_groups() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 10.0])
    is_base = torch.tensor([False, False, False, True])
    assert balanced_mean(values, is_base).item() == pytest.approx(2.0 + 10.0)
    only_cur = torch.zeros(4, dtype=torch.bool)
    assert balanced_mean(values, only_cur).item() == pytest.approx(4.0)
    assert balanced_mean(values, ~only_cur).item() == pytest.approx(4.0)


def test_gradient_penalty_linear_critic() -> None:
    # d(x) = w . x with ||w|| = 2: the gradient norm is 2 everywhere, so the penalty is (2-1)^2.
    w = torch.tensor([1.2, -1.6], dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    gp = gradient_penalty(x @ w, x)
    assert gp.tolist() == pytest.approx([1.0] * 5, rel=1e-9)
    # Differentiable in the critic's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = w.
    gp.mean().backward()
    assert w.grad.tolist() == pytest.approx([1.2, -1.6], rel=1e-8)


def test_trimmed_mean_against_brute_force() -> None:
    values = torch.randn(250, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    values[7] = 1e9
    ordered = sorted(values.tolist())
    want = sum(ordered[2:-2]) / (250 - 4)  # int(0.01 * 250) = 2 from each end
    assert trimmed_mean(values).item() == pytest.approx(want, rel=1e-12)
    assert trimmed_mean(torch.tensor([1.0, 2.0, 6.0])).item() == pytest.approx(3.0)  # trims 0


def test_distances_by_hand() -> None:
    d = torch.tensor([0.0, math.log(3.0), -math.log(2.0)], dtype=torch.float64)
    assert om_distance(d, "kl").tolist() == pytest.approx(d.tolist())
    assert om_distance(d, "chi2").tolist() == pytest.approx([0.0, 2.0, -0.5])
    # Fewer than 100 samples: nothing trimmed, C = mean(0, 2, -0.5) = 0.5.
    c = 0.5
    assert om_distance(d, "sqrt_chi2").tolist() == pytest.approx([0.0, 2.0 / c**0.5, -0.5 / c**0.5])
    assert om_distance(d, "tv").tolist() == [0.0, 1.0, -1.0]
    assert om_distance(d, "wasserstein").tolist() == pytest.approx(d.tolist())
    shifted = om_distance(d, "wasserstein", base_score_mean=0.25)
    assert shifted.tolist() == pytest.approx((d - 0.25).tolist())


def test_sqrt_chi2_trimmed_normalizer_and_nonpositive_case() -> None:
    # 100 samples: int(0.01 * 100) = 1 dropped from each end, so the outlier does not count.
    ratio_minus_one = torch.full((100,), 0.25, dtype=torch.float64)
    ratio_minus_one[0] = 1e6
    ratio_minus_one[1] = -0.9
    d = torch.log1p(ratio_minus_one)
    got = om_distance(d, "sqrt_chi2")
    assert got.tolist() == pytest.approx((ratio_minus_one / 0.5).tolist(), rel=1e-9)  # sqrt(.25)
    # C <= 0: the distance stays exp(d) - 1, unnormalized.
    d_neg = torch.log1p(torch.tensor([-0.5, -0.2, 0.1], dtype=torch.float64))
    assert om_distance(d_neg, "sqrt_chi2").tolist() == pytest.approx([-0.5, -0.2, 0.1])


def test_distance_is_detached() -> None:
    d = torch.tensor([0.3, -0.1], requires_grad=True)
    for divergence in OM_DIVERGENCES:
        assert not om_distance(d, divergence).requires_grad  # type: ignore[arg-type]


def test_shaping_reward_several_policies_clip_and_nonfinite() -> None:
    distances = torch.tensor(
        [
            [1.0, 2.0, float("nan"), 10.0],  # towards base policy 0 with c = 0.5
            [0.5, float("inf"), 1.0, -3.0],  # away from base policy 1 with c = -2
            [float("inf"), 7.0, 7.0, 7.0],  # c = 0: ignored, inf must not give NaN
        ]
    )
    got = om_shaping_reward(distances, [0.5, -2.0, 0.0], reward_clip=4.0)
    # pen = [0.5 - 1, 1 + 0, 0 - 2, 5 + 6] -> r = [0.5, -1, 2, -11 -> clip -4]
    assert got.tolist() == pytest.approx([0.5, -1.0, 2.0, -4.0])
    unclipped = om_shaping_reward(distances[:1], [0.5])
    assert unclipped.tolist() == pytest.approx([-0.5, -1.0, 0.0, -5.0])
    with pytest.raises(ValueError, match="one coefficient per base policy"):
        om_shaping_reward(distances, [1.0])


def test_coef_reward_scale_is_the_kl_scale_for_kl_and_sigma_r_otherwise() -> None:
    assert coef_reward_scale("kl", reward_std=0.05, kl_reward_scale=0.8) == 0.8
    for kind in ("sqrt_chi2", "chi2", "tv", "wasserstein"):
        assert coef_reward_scale(kind, reward_std=0.05, kl_reward_scale=0.8) == 0.05
    with pytest.raises(ValueError, match="unknown OM divergence"):
        coef_reward_scale("KL", 0.05, 0.8)


def test_unknown_divergence() -> None:
    with pytest.raises(ValueError, match="unknown OM divergence"):
        discriminator_loss(SCORES, IS_BASE, "js")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown OM divergence"):
        om_distance(SCORES, "js")  # type: ignore[arg-type]


# Population check: with one free score per state and the population-weighted balanced loss,
# the minimizer is what the spec says, and the mean distance under mu_pi is the divergence.
P = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)  # current policy's occupancy
Q = torch.tensor([0.25, 0.25, 0.4, 0.1], dtype=torch.float64)  # base policy's occupancy


def _fit_population(divergence: str, iters: int = 3000) -> torch.Tensor:
    d = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([d], lr=0.05)
    cur, base = torch.zeros(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool)
    for _ in range(iters):
        loss = (P * discriminator_loss(d, cur, divergence)).sum()  # type: ignore[arg-type]
        loss = loss + (Q * discriminator_loss(d, base, divergence)).sum()  # type: ignore[arg-type]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return d.detach()


def test_logistic_minimizer_is_log_ratio_and_distances_estimate_divergences() -> None:
    d = _fit_population("kl")
    log_ratio = torch.log(P / Q)
    assert d.tolist() == pytest.approx(log_ratio.tolist(), abs=1e-4)
    kl = (P * log_ratio).sum().item()
    chi2 = ((P - Q) ** 2 / Q).sum().item()
    assert (P * om_distance(log_ratio, "kl")).sum().item() == pytest.approx(kl, rel=1e-12)
    assert (P * om_distance(log_ratio, "chi2")).sum().item() == pytest.approx(chi2, rel=1e-12)


def test_tv_minimizer_sign_recovers_total_variation() -> None:
    d = _fit_population("tv")
    sign = om_distance(d, "tv")
    assert sign.tolist() == torch.sign(P - Q).tolist()
    tv = 0.5 * (P - Q).abs().sum().item()
    assert ((P - Q) * sign).sum().item() == pytest.approx(2 * tv, rel=1e-12)
