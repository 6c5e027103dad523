"""masked reductions against hand-computed numbers."""

from __future__ import annotations

import math

import torch

from goodhartlab.core.masked import masked_mean, masked_sum, masked_var, normalize

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, float("nan")]])
M = torch.tensor([[True, True, True], [True, False, False]])


def test_sum_and_mean_ignore_padding_even_nan() -> None:
    assert masked_sum(X, M).item() == 10.0
    assert masked_mean(X, M).item() == 2.5
    torch.testing.assert_close(masked_mean(X, M, dim=1), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(masked_sum(X, M, dim=0), torch.tensor([5.0, 2.0, 3.0]))


def test_mean_of_empty_row_is_zero() -> None:
    m = torch.tensor([[True, False, False], [False, False, False]])
    torch.testing.assert_close(masked_mean(X, m, dim=1), torch.tensor([1.0, 0.0]))


def test_var_unbiased_and_biased() -> None:
    # values 1, 2, 3, 4: mean 2.5, squared deviations sum 5
    assert math.isclose(masked_var(X, M).item(), 5 / 3, rel_tol=1e-6)
    assert math.isclose(masked_var(X, M, unbiased=False).item(), 5 / 4, rel_tol=1e-6)
    torch.testing.assert_close(masked_var(X, M, dim=1), torch.tensor([1.0, 0.0]))


def test_gradient_does_not_see_padding() -> None:
    x = X.clone().requires_grad_(True)
    masked_mean(x, M).backward()
    expected = torch.tensor([[0.25, 0.25, 0.25], [0.25, 0.0, 0.0]])
    torch.testing.assert_close(x.grad, expected)


def test_normalize_whitens_valid_entries_only() -> None:
    out = normalize(X, M)
    std = math.sqrt(5 / 3)
    expected = torch.tensor([[-1.5 / std, -0.5 / std, 0.5 / std], [1.5 / std, 0.0, 0.0]])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    # padding does not change the statistics (trlx's whitening would)
    padded = torch.cat([X, torch.zeros(2, 5)], dim=1)
    padded_mask = torch.cat([M, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(normalize(padded, padded_mask)[:, :3], expected, atol=1e-6, rtol=0)


def test_normalize_without_centering_keeps_the_mean() -> None:
    out = normalize(X, M, center=False)
    assert math.isclose(masked_mean(out, M).item(), 2.5, rel_tol=1e-6)
    assert math.isclose(masked_var(out, M).item(), 1.0, rel_tol=1e-5)
