"""Prompts and the noisy teacher whose demonstrations the SFT policy imitates.

The teacher has a latent skill s ~ U(0, 1) per demonstration. It lists
m = k - Binomial(k - 1, 0.6 (1 - s)) items; each is of a wrong category with probability
0.3 (1 - s), else a repeat with probability 0.15 (1 - s), else a new correct item. It starts with
"sure" with probability 0.6 s and ends with one filler with probability 0.1 + 0.8 q^2, where q is
the realised fraction of distinct correct items.

Why the filler follows the *realised* quality q (not s): a small policy only picks up the
correlation "polite endings go with good answers" when it is visible in the text itself
(DESIGN.md §3). The result: within the teacher's distribution length and fillers correlate with
gold, which is what an RM learns and optimization later exploits.
"""

from __future__ import annotations

import numpy as np

from goodhartlab.toyworld.gold import Prompt
from goodhartlab.toyworld.vocab import CATEGORIES, MAX_K

CLOSING_FILLERS = ("thanks", "great", "!")


def sample_prompts(n: int, rng: np.random.Generator) -> list[Prompt]:
    """n prompts with k uniform in 1..5 and a uniform category."""
    cats = list(CATEGORIES)
    ks = rng.integers(1, MAX_K + 1, size=n)
    cs = rng.integers(0, len(cats), size=n)
    return [Prompt(int(k), cats[int(c)]) for k, c in zip(ks, cs)]


def _pick_items(prompt: Prompt, skill: float, rng: np.random.Generator) -> tuple[list[str], int]:
    """The teacher's item words and how many distinct correct ones they contain."""
    own = list(CATEGORIES[prompt.category])
    others = [w for c, items in CATEGORIES.items() if c != prompt.category for w in items]
    m = prompt.k - int(rng.binomial(prompt.k - 1, 0.6 * (1 - skill)))
    # Distinct items come in the category's own order (pop() takes from the end). Why: with a
    # random order the tiny SFT policy could not track which items it had already listed, so it
    # repeated twice as often as the teacher and reached only ~80% of the teacher's gold (issue:
    # >= 90%); in canonical order "not yet listed" is "later in the list", which it learns (95%).
    unused = sorted(rng.permutation(own)[:m].tolist(), key=own.index, reverse=True)
    chosen: list[str] = []
    distinct: list[str] = []
    for _ in range(m):
        u = rng.random()
        if u < 0.3 * (1 - skill):
            chosen.append(str(others[rng.integers(len(others))]))
        elif distinct and u < 0.3 * (1 - skill) + 0.15 * (1 - skill):
            chosen.append(distinct[rng.integers(len(distinct))])
        else:
            word = str(unused.pop())
            distinct.append(word)
            chosen.append(word)
    return chosen, len(distinct)


def join_items(items: list[str], rng: np.random.Generator) -> list[str]:
    """Join items with connectives: ',' between, 'and' before the last (sometimes ',' only)."""
    words: list[str] = []
    for i, item in enumerate(items):
        if i > 0:
            last = i == len(items) - 1
            words.append("and" if last and rng.random() < 0.8 else ",")
        words.append(item)
    return words


def demonstration(prompt: Prompt, rng: np.random.Generator) -> str:
    """One teacher response (words only; the eos is added by the formatting step)."""
    skill = float(rng.random())
    items, n_distinct = _pick_items(prompt, skill, rng)
    words = join_items(items, rng)
    if rng.random() < 0.6 * skill:
        words.insert(0, "sure")
    quality = n_distinct / prompt.k
    if rng.random() < 0.1 + 0.8 * quality**2:
        words.append(CLOSING_FILLERS[rng.integers(len(CLOSING_FILLERS))])
    return " ".join(words)


def demonstrations(prompts: list[Prompt], rng: np.random.Generator) -> list[str]:
    """One teacher response per prompt."""
    return [demonstration(p, rng) for p in prompts]
