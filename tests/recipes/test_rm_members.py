"""The one home of bon's and score's proxy members: a score that is not finite fails the same
way in both recipes, naming the RM, the answer and the value."""

import numpy as np
import pytest

from goodhartlab.errors import InputError
from goodhartlab.recipes import rm_members


class _Model:
    def eval(self) -> None:
        pass


class _Encodings:
    def get(self, tokenizer):
        return tokenizer


def test_a_nan_score_names_the_rm_and_the_answer(monkeypatch) -> None:
    monkeypatch.setattr(rm_members, "load_reward_model", lambda path, device: (_Model(), "tok"))
    monkeypatch.setattr(rm_members, "score_encoded", lambda m, x, b: np.array([0.5, np.nan, 1.0]))
    with pytest.raises(InputError, match=r"reward model rm/a: .* not finite for answer 1 \(nan\)"):
        rm_members.score_member("rm/a", _Encodings(), "cpu", 4)


def test_finite_scores_come_back_as_float64_with_the_tokenizer(monkeypatch) -> None:
    monkeypatch.setattr(rm_members, "load_reward_model", lambda path, device: (_Model(), "tok"))
    monkeypatch.setattr(rm_members, "score_encoded", lambda m, x, b: np.array([1, 2], np.float32))
    values, tok = rm_members.score_member("rm/a", _Encodings(), "cpu", 4)
    assert tok == "tok" and values.dtype == np.float64 and values.tolist() == [1.0, 2.0]


def test_member_names_are_dirs_and_unique() -> None:
    from pathlib import Path

    names = rm_members.member_names([Path("r/rm_seed1/model"), Path("r/rm_seed2/model")])
    assert names == ["rm_seed1", "rm_seed2"]
    assert rm_members.member_names([Path("a/x"), Path("b/x")]) == ["0_x", "1_x"]
