"""Off-distribution toy responses, for probing reward models where the SFT policy never goes.

These are the shapes hacking takes in the toy world: stuffing politeness fillers, and padding the
answer with more items than asked. Ensemble disagreement should be larger on them.
"""

from __future__ import annotations

import numpy as np

from goodhartlab.toyworld.gold import parse_prompt
from goodhartlab.toyworld.vocab import CATEGORIES


def stuff_fillers(response: str, n: int = 6) -> str:
    """Append n filler words ("thanks great very ! ...")."""
    fillers = ("thanks", "great", "very", "!")
    return " ".join([response, *[fillers[i % len(fillers)] for i in range(n)]]).strip()


def overlong(prompt: str, response: str, rng: np.random.Generator, n_extra: int = 6) -> str:
    """Append n_extra more items of the asked category (repeats allowed), joined by ','."""
    items = CATEGORIES[parse_prompt(prompt).category]
    extra = [str(items[int(i)]) for i in rng.integers(0, len(items), size=n_extra)]
    return " , ".join([response, *extra]) if response else " , ".join(extra)
