"""Preference pairs labelled by the gold reward (Bradley–Terry sampling, optional label flips).

Why sampled labels and flips: the gap between proxy and gold is what produces overoptimization,
and its size is set by label noise and data size (Gao et al.; Coste et al. add 25% flips). With
P(a > b) = sigmoid((g_a - g_b) / temperature), close pairs get noisy labels, as human ones do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from goodhartlab.toyworld.gold import gold_reward


@dataclass(frozen=True)
class LabelledPair:
    """One preference: `chosen` won over `rejected`; gold scores kept for analysis."""

    prompt: str
    chosen: str
    rejected: str
    gold_chosen: float
    gold_rejected: float
    flipped: bool


def label_pairs(
    prompts: Sequence[str],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    rng: np.random.Generator,
    temperature: float = 1.0,
    flip_prob: float = 0.0,
) -> list[LabelledPair]:
    """Label each (a, b) pair by Bradley–Terry sampling on gold, then flip with `flip_prob`.

    Responses are words without specials and are taken to have ended with eos.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    ended = [True] * len(prompts)
    gold_a = np.asarray(gold_reward(prompts, responses_a, ended))
    gold_b = np.asarray(gold_reward(prompts, responses_b, ended))
    p_a = 1.0 / (1.0 + np.exp(-(gold_a - gold_b) / temperature))
    a_wins = rng.random(len(p_a)) < p_a
    flips = rng.random(len(p_a)) < flip_prob
    a_wins ^= flips
    pairs = []
    for i, prompt in enumerate(prompts):
        first, second = (responses_a[i], responses_b[i])
        g1, g2 = float(gold_a[i]), float(gold_b[i])
        if not a_wins[i]:
            first, second, g1, g2 = second, first, g2, g1
        pairs.append(LabelledPair(prompt, first, second, g1, g2, bool(flips[i])))
    return pairs
