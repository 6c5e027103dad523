"""Bradley-Terry loss, accuracy and label sampling."""

from __future__ import annotations

import math

import numpy as np
import torch

from goodhartlab.core.preference import (
    bradley_terry_loss,
    bt_sample_labels,
    flip_labels,
    preference_accuracy,
)


def test_bt_loss_hand_computed() -> None:
    chosen = torch.tensor([1.0, 0.0, 2.0])
    rejected = torch.tensor([0.0, 0.0, 3.0])
    out = bradley_terry_loss(chosen, rejected)
    expected = [math.log(1 + math.exp(-1)), math.log(2), math.log(1 + math.exp(1))]
    torch.testing.assert_close(out, torch.tensor(expected))


def test_bt_loss_margin_l2_and_centering() -> None:
    c, r = torch.tensor([1.0]), torch.tensor([-1.0])
    out = bradley_terry_loss(c, r, margin=torch.tensor([0.5]), l2_coef=0.001, center_coef=0.1)
    expected = math.log(1 + math.exp(-1.5)) + 0.001 * 0.5 * 2 + 0.1 * 0.0
    assert math.isclose(out.item(), expected, rel_tol=1e-6)
    out = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([1.0]), center_coef=0.1)
    assert math.isclose(out.item(), math.log(1 + math.exp(-1)) + 0.9, rel_tol=1e-6)


def test_bt_loss_is_finite_for_huge_gaps() -> None:
    out = bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
    assert math.isclose(out.item(), 400.0, rel_tol=1e-6)


def test_accuracy_counts_ties_as_wrong() -> None:
    acc = preference_accuracy(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    assert acc.tolist() == [1.0, 0.0, 0.0]


def test_flip_labels_is_seeded_with_the_right_rate() -> None:
    a = flip_labels(20000, 0.25, torch.Generator().manual_seed(3))
    b = flip_labels(20000, 0.25, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.bool
    assert abs(a.float().mean().item() - 0.25) < 0.01
    assert not flip_labels(10, 0.0, torch.Generator().manual_seed(0)).any()


def test_bt_sampling_follows_the_sigmoid() -> None:
    g = torch.Generator().manual_seed(0)
    n = 40000
    gold_a = torch.full((n,), 1.0)
    gold_b = torch.zeros(n)
    labels = bt_sample_labels(gold_a, gold_b, temperature=0.5, generator=g)
    assert abs(labels.float().mean().item() - 1 / (1 + math.exp(-2.0))) < 0.01
    exact = bt_sample_labels(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.0, g)
    assert exact.tolist() == [True, False]


def test_a_numpy_generator_draws_what_numpy_would() -> None:
    """The toy world labels with its numpy Generator: same draws, same comparisons as numpy's."""
    gold_a = np.random.default_rng(1).normal(size=500)
    gold_b = np.random.default_rng(2).normal(size=500)
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    labels = bt_sample_labels(torch.from_numpy(gold_a), torch.from_numpy(gold_b), 0.5, rng)
    flips = flip_labels(500, 0.25, rng)
    expected = ref.random(500) < 1.0 / (1.0 + np.exp(-(gold_a - gold_b) / 0.5))
    assert labels.numpy().tolist() == expected.tolist()
    assert flips.numpy().tolist() == (ref.random(500) < 0.25).tolist()
