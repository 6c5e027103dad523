"""Off-distribution toy responses, for probing reward models where the SFT policy never goes.

These are the shapes hacking takes in the toy world: stuffing politeness fillers (at the end, or
spread between the words), padding the answer with more items than asked, and repeating one item
(what a collapsed RL policy emits). Ensemble disagreement is expected to be larger on them.
"""

from __future__ import annotations

import numpy as np

from goodhartlab.toyworld.gold import parse_prompt
from goodhartlab.toyworld.vocab import CATEGORIES

FILLERS = ("thanks", "great", "very", "!")
CONNECTIVES = (",", "and")


def stuff_fillers(response: str, n: int = 6) -> str:
    """Append n filler words ("thanks great very ! ...")."""
    return " ".join([response, *[FILLERS[i % len(FILLERS)] for i in range(n)]]).strip()


def spread_fillers(response: str, filler: str = "very") -> str:
    """Put `filler` after every item word (connectives left alone): "red very and blue very"."""
    words = response.split()
    return " ".join(w if w in CONNECTIVES else f"{w} {filler}" for w in words) or filler


def overlong(prompt: str, response: str, rng: np.random.Generator, n_extra: int = 6) -> str:
    """Append n_extra more items of the asked category (repeats allowed), joined by ','."""
    items = CATEGORIES[parse_prompt(prompt).category]
    extra = [str(items[int(i)]) for i in rng.integers(0, len(items), size=n_extra)]
    return " , ".join([response, *extra]) if response else " , ".join(extra)


def repeat_item(prompt: str, response: str, n: int = 10) -> str:
    """The response's first item (else the category's first) repeated n times, joined by ','."""
    words = [w for w in response.split() if w not in CONNECTIVES + FILLERS and w != "sure"]
    item = words[0] if words else str(CATEGORIES[parse_prompt(prompt).category][0])
    return " , ".join([item] * n)
