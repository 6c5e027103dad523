"""Ensemble objectives against hand-computed numbers and plain numpy; torch and numpy agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from goodhartlab.core.ensemble import ENSEMBLE_METHODS, aggregate, ensemble_std, ensemble_var

# Two members, two samples. Per sample: mean [2, 4]; min [1, 2];
# population var [1, 4]; unbiased var [2, 8].
HAND = np.array([[1.0, 2.0], [3.0, 6.0]])


def test_methods_tuple() -> None:
    assert ENSEMBLE_METHODS == ("mean", "wco", "uwo")


@pytest.mark.parametrize(
    ("method", "uwo_coef", "ddof", "expected"),
    [
        ("mean", 0.5, 0, [2.0, 4.0]),
        ("wco", 0.5, 0, [1.0, 2.0]),
        ("uwo", 0.5, 0, [1.5, 2.0]),
        ("uwo", 0.5, 1, [1.0, 0.0]),
        ("uwo", 2.0, 0, [0.0, -4.0]),
        ("uwo", 0.0, 1, [2.0, 4.0]),  # a zero weight means no penalty (the seed made it 1)
    ],
)
def test_hand_computed(method: str, uwo_coef: float, ddof: int, expected: list[float]) -> None:
    np.testing.assert_allclose(aggregate(HAND, method, uwo_coef=uwo_coef, ddof=ddof), expected)
    out = aggregate(torch.tensor(HAND), method, uwo_coef=uwo_coef, ddof=ddof)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), expected)


def test_var_and_std_hand_computed() -> None:
    np.testing.assert_allclose(ensemble_var(HAND, ddof=0), [1.0, 4.0])
    np.testing.assert_allclose(ensemble_var(HAND, ddof=1), [2.0, 8.0])
    np.testing.assert_allclose(ensemble_std(HAND, ddof=0), [1.0, 2.0])
    np.testing.assert_allclose(ensemble_std(torch.tensor(HAND), ddof=1).numpy(), [2**0.5, 8**0.5])


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 6), (2, 1)])
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("method", ENSEMBLE_METHODS)
def test_random_against_numpy_and_torch(shape: tuple[int, ...], ddof: int, method: str) -> None:
    scores = np.random.default_rng(1).standard_normal(shape)
    coef = 0.7
    expected = {
        "mean": scores.mean(axis=0),
        "wco": scores.min(axis=0),
        "uwo": scores.mean(axis=0) - coef * scores.var(axis=0, ddof=ddof),
    }[method]
    got = aggregate(scores, method, uwo_coef=coef, ddof=ddof)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got_torch = aggregate(torch.from_numpy(scores), method, uwo_coef=coef, ddof=ddof)
    np.testing.assert_allclose(got_torch.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        ensemble_std(torch.from_numpy(scores), ddof=ddof).numpy(), scores.std(axis=0, ddof=ddof)
    )


def test_torch_keeps_autograd_and_dtype() -> None:
    scores = torch.tensor([[1.0, 2.0], [3.0, 6.0], [2.0, 1.0]], requires_grad=True)
    coef, ddof, k = 0.5, 1, 3
    out = aggregate(scores, "uwo", uwo_coef=coef, ddof=ddof)
    assert out.dtype == torch.float32 and out.requires_grad
    out.sum().backward()
    s = scores.detach()
    # d/ds_k [mean - c var] = 1/K - c * 2 (s_k - mean) / (K - ddof)
    expected = 1.0 / k - coef * 2.0 * (s - s.mean(dim=0)) / (k - ddof)
    torch.testing.assert_close(scores.grad, expected)


def test_torch_keeps_device() -> None:
    scores = torch.empty(3, 4, device="meta")
    for method in ENSEMBLE_METHODS:
        assert aggregate(scores, method).device.type == "meta"
    assert ensemble_std(scores).device.type == "meta"


def test_one_member() -> None:
    single = np.array([[0.3, -1.2, 4.0]])
    for method in ("mean", "wco"):
        np.testing.assert_array_equal(aggregate(single, method, ddof=1), single[0])
    np.testing.assert_array_equal(aggregate(single, "uwo", uwo_coef=3.0, ddof=0), single[0])
    with pytest.raises(ValueError, match="ddof=1 needs more than 1 member"):
        aggregate(single, "uwo", ddof=1)
    with pytest.raises(ValueError, match="K=1"):
        ensemble_std(torch.tensor(single), ddof=1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="allowed: mean, wco, uwo"):
        aggregate(HAND, "max")
    with pytest.raises(ValueError, match="uwo_coef"):
        aggregate(HAND, "uwo", uwo_coef=float("nan"))
    with pytest.raises(ValueError, match="ddof"):
        ensemble_var(HAND, ddof=-1)
    with pytest.raises(ValueError, match="member axis"):
        aggregate(np.float64(1.0), "mean")


def test_integer_scores_become_float() -> None:
    np.testing.assert_allclose(aggregate(np.array([[1, 2], [2, 4]]), "mean"), [1.5, 3.0])
    out = aggregate(torch.tensor([[1, 2], [2, 4]]), "uwo", ddof=0)
    assert out.is_floating_point()
