"""Preference pairs labelled by the gold reward (Bradley–Terry sampling, optional label flips).

Why sampled labels and flips: the gap between proxy and gold is what produces overoptimization,
and its size is set by label noise and data size (Gao et al.; Coste et al. add 25% flips). With
P(a > b) = sigmoid((g_a - g_b) / temperature), close pairs get noisy labels, as human ones do.
The labeller itself is `core.preference` (`bt_sample_labels`, `flip_labels`), drawing from the
toy world's numpy generator.
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

    Responses are words without specials and are taken to have ended with eos. `temperature` 0
    is the noiseless labeller (the better answer wins, a tie is a coin), as in `core.preference`.
    """
    # torch only here: `import goodhartlab.toyworld` (gold_reward, the prompts) stays numpy-only
    import torch

    from goodhartlab.core.preference import bt_sample_labels, flip_labels

    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    ended = [True] * len(prompts)
    gold_a = np.asarray(gold_reward(prompts, responses_a, ended), np.float64)
    gold_b = np.asarray(gold_reward(prompts, responses_b, ended), np.float64)
    a_wins = bt_sample_labels(torch.from_numpy(gold_a), torch.from_numpy(gold_b), temperature, rng)
    flips = flip_labels(len(gold_a), flip_prob, rng)
    a_wins = (a_wins ^ flips).numpy()
    flips = flips.numpy()
    pairs = []
    for i, prompt in enumerate(prompts):
        first, second = (responses_a[i], responses_b[i])
        g1, g2 = float(gold_a[i]), float(gold_b[i])
        if not a_wins[i]:
            first, second, g1, g2 = second, first, g2, g1
        pairs.append(LabelledPair(prompt, first, second, g1, g2, bool(flips[i])))
    return pairs
