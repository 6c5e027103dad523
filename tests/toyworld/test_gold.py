"""The gold formula, term by term, against hand-computed values."""

import pytest

from goodhartlab.toyworld import breakdown, gold_reward, parse_prompt
from goodhartlab.toyworld.gold import GOLD_FLOOR


def test_parse_prompt() -> None:
    p = parse_prompt("[BOS] list three fruits [SEP]")
    assert (p.k, p.category, p.text) == (3, "fruits", "list three fruits")
    with pytest.raises(ValueError, match="not a toy prompt"):
        parse_prompt("name three fruits")
    with pytest.raises(ValueError, match="unknown toy category 'cars'"):
        parse_prompt("list two cars")


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        # ideal: 3 distinct, polite, length 2k+1 = 7 -> 3
        ("list three fruits", "sure apple , pear and plum thanks", 3.0),
        # too few items: 2
        ("list three fruits", "apple and pear", 2.0),
        # saturation + length: 5 items for k=2 -> 2 - 0.25 * (9 - 5) = 1.0
        ("list two fruits", "apple , pear , plum , grape and mango", 1.0),
        # wrong category and repeat: 1 distinct - 1 wrong - 1 repeat = -1
        ("list three fruits", "apple , cat and apple", -1.0),
        # fillers beyond the budget of 2: 4 fillers -> 1 - 0.5 * 2 = 0 ; length 5 <= 3? no: 5 - 3 = 2 -> -0.5
        ("list one fruits", "sure very great apple !", -0.5),
        # stray words count as wrong: 1 - 1 (number word) - 1 (category name)
        ("list one fruits", "apple two fruits", -1.0),
    ],
)
def test_gold_values(prompt: str, response: str, expected: float) -> None:
    assert gold_reward([prompt], [response], [True]) == [pytest.approx(expected)]


def test_missing_eos_and_floor() -> None:
    assert gold_reward(["list two fruits"], ["apple and pear"], [False]) == [1.0]
    # eos read from the text when not given
    assert gold_reward(["list two fruits"], ["apple and pear [EOS]"]) == [2.0]
    collapsed = " ".join(["apple"] * 24)
    b = breakdown("list two fruits", collapsed, has_eos=False)
    assert (b.distinct_correct, b.repeats, b.length) == (1, 23, 24)
    assert b.raw == 1 - 23 - 0.25 * (24 - 5) - 1
    assert b.value == GOLD_FLOOR


def test_unknown_word_and_length_mismatch() -> None:
    with pytest.raises(ValueError, match="'banana' is not in the toy vocabulary"):
        gold_reward(["list one fruits"], ["banana"])
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        gold_reward(["list one fruits", "list one fruits"], ["apple"])
