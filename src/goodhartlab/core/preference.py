"""Bradley–Terry reward-model loss, accuracy, and seeded label noise (spec §3, inform_length §A.3).

A reward model is trained on pairs (chosen, rejected) so that σ(r_c − r_r) is the probability the
chosen answer is preferred. The seeds add a small L2 penalty on the scores (Open-Assistant's
`score_l2_reg`, 0.001) and optionally a margin; a centering term keeps the free offset of the scores
near 0. Label noise and the simulated labeller (Bradley–Terry sampling from the gold reward) live
here too, because they are the same model run in the other direction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# The toy world draws all of its data from one numpy Generator; the recipes use torch ones. Both
# kinds are accepted so that one labeller serves both (same formula, the caller's random stream).
AnyGenerator = torch.Generator | np.random.Generator | None


def _uniform(
    shape: tuple[int, ...], generator: AnyGenerator, dtype: torch.dtype, device: torch.device | None
) -> torch.Tensor:
    """U[0, 1) draws from a torch generator (in `dtype`) or a numpy one (always float64, as numpy
    draws them: casting down could move a draw across the threshold it is compared with)."""
    if isinstance(generator, np.random.Generator):
        return torch.from_numpy(generator.random(shape)).to(device=device)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | float | None = None,
    l2_coef: float = 0.0,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """−log σ(r_c − r_r − margin) + l2_coef·½(r_c² + r_r²) + center_coef·(r_c + r_r)², per pair.

    Why: the BT negative log-likelihood. The loss only sees score differences, so the scores'
    offset drifts freely; the L2 term (the seeds use 0.001) and the centering term pin it down.
    `logsigmoid` keeps large negative differences finite.

    Shape: chosen, rejected, margin (N,) -> (N,)
    """
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff)
    if l2_coef:
        loss = loss + l2_coef * 0.5 * (chosen**2 + rejected**2)
    if center_coef:
        loss = loss + center_coef * (chosen + rejected) ** 2
    return loss


def preference_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """1.0 where r_c > r_r strictly (a tie counts as wrong, as in the seeds), else 0.0.

    Shape: chosen, rejected (N,) -> (N,)
    """
    return (chosen > rejected).to(torch.float32)


def flip_labels(n: int, prob: float, generator: AnyGenerator = None) -> torch.Tensor:
    """Which of n labels to flip: each independently with probability `prob`, seeded.

    Why: Coste et al. train RMs with 25% label noise; "flip with prob 0.25" equals the seed's
    commented-out "resample every other label" in expectation, and is reproducible here.

    Shape: -> (n,) bool, True = swap chosen and rejected
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"flip probability must be in [0, 1], got {prob}")
    device = generator.device if isinstance(generator, torch.Generator) else None
    return _uniform((n,), generator, torch.get_default_dtype(), device) < prob


def bt_sample_labels(
    gold_a: torch.Tensor,
    gold_b: torch.Tensor,
    temperature: float,
    generator: AnyGenerator = None,
) -> torch.Tensor:
    """Sample "a is preferred" with P(a ≻ b) = σ((g_a − g_b)/τ); τ = 0 is the noiseless labeller.

    Why: a simulated labeller that follows the Bradley–Terry model of the gold reward, so a
    perfectly trained RM would recover gold up to scale. With τ = 0 the better answer wins and
    a tie is a fair coin.

    Shape: gold_a, gold_b (N,) -> (N,) bool
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    diff = (gold_a - gold_b).to(torch.float64)
    if temperature == 0:
        prob = torch.where(diff > 0, 1.0, torch.where(diff < 0, 0.0, 0.5)).to(diff.dtype)
    else:
        prob = torch.sigmoid(diff / temperature)
    return _uniform(tuple(diff.shape), generator, diff.dtype, diff.device) < prob
