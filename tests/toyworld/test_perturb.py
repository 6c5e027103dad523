"""Off-distribution toy responses: what they append, and that gold sees them as worse or longer."""

from __future__ import annotations

import numpy as np

from goodhartlab.toyworld.gold import breakdown, parse_prompt
from goodhartlab.toyworld.perturb import overlong, stuff_fillers
from goodhartlab.toyworld.vocab import CATEGORIES


def test_stuff_fillers_appends_n_fillers() -> None:
    assert stuff_fillers("red and blue", n=5) == "red and blue thanks great very ! thanks"
    assert stuff_fillers("", n=2) == "thanks great"
    parts = breakdown("list two colors", stuff_fillers("red and blue"), has_eos=True)
    assert parts.fillers == 6


def test_overlong_adds_items_of_the_asked_category() -> None:
    rng = np.random.default_rng(0)
    out = overlong("list two colors", "red and blue", rng, n_extra=4)
    assert out.startswith("red and blue , ")
    extra = out.removeprefix("red and blue , ").split(" , ")
    items = {str(i) for i in CATEGORIES[parse_prompt("list two colors").category]}
    assert len(extra) == 4 and set(extra) <= items
    long = breakdown("list two colors", out, has_eos=True)
    assert long.length > breakdown("list two colors", "red and blue", has_eos=True).length


def test_spread_fillers_and_repeat_item() -> None:
    from goodhartlab.toyworld.perturb import repeat_item, spread_fillers

    assert spread_fillers("red , blue and green") == "red very , blue very and green very"
    assert spread_fillers("") == "very"
    assert repeat_item("list two colors", "sure red and blue", n=3) == "red , red , red"
    parts = breakdown("list two colors", repeat_item("list two colors", "red", n=4), has_eos=True)
    assert parts.repeats == 3
