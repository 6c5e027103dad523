"""`goodhart score GENERATIONS --rm RM [--gold G]`: scores equal the RMs' and the toy gold's own,
rows come back whole, {seed} members combine, bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from goodhartlab.analysis.correlation import pearson
from goodhartlab.cli import main
from goodhartlab.models.reward import load_reward_model, score_texts
from goodhartlab.recipes.short_forms import score_args
from goodhartlab.toyworld import gold_reward

ROWS = [  # our eval-file layout (instruction, answers, ended), a single response, a chat prompt
    {"instruction": "list two fruits", "answers": ["apple and pear", "apple", ""],
     "ended": [True, False, True], "lengths": [4, 1, 1]},
    {"prompt": "list one metals", "response": "gold great !", "id": 7},
    {"prompt": [{"role": "user", "content": "list three trees"}], "answers": ["oak , elm and ash"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def rms(toy_rm_seeds):
    return toy_rm_seeds


@pytest.fixture
def generations(tmp_path):
    path = tmp_path / "gens.json"
    path.write_text(json.dumps(ROWS))
    return path


def _flat():
    prompts = ["list two fruits"] * 3 + ["list one metals", "list three trees"]
    answers = ["apple and pear", "apple", "", "gold great !", "oak , elm and ash"]
    return prompts, answers


def test_cli_short_form() -> None:
    assert score_args(["f.jsonl", "--rm", "a", "--rm=b", "--gold", "toy", "--out", "o", "x=1"]) == [
        "generations=f.jsonl", "gold=toy", "--out", "o", "x=1", 'reward_models=["a", "b"]',
    ]  # fmt: skip


def test_scores_equal_the_rm_and_gold_and_rows_come_back_whole(rms, generations, tmp_path):
    out = tmp_path / "run"
    rm = rms / "rm_seed1" / "model"
    args = ["score", str(generations), "--rm", str(rm), "--gold", "toy", "--out", str(out),
            "device=cpu"]  # fmt: skip
    assert main(args) == 0
    rows = [json.loads(x) for x in (out / "scored.jsonl").read_text().splitlines()]
    assert [len(r["proxy_scores"]) for r in rows] == [3, 1, 1]
    assert rows[1]["id"] == 7 and rows[0]["lengths"] == [4, 1, 1]  # other columns kept
    assert "member_scores" not in rows[0]
    prompts, answers = _flat()
    model, tok = load_reward_model(str(rm), device="cpu")
    chat = [p if i < 4 else ROWS[2]["prompt"] for i, p in enumerate(prompts)]
    expected = score_texts(model, tok, chat, answers)
    assert np.allclose([s for r in rows for s in r["proxy_scores"]], expected, atol=1e-6)
    ended = [True, False, True, True, True]  # the file's flags; rows without them ended
    gold = gold_reward(prompts, answers, ended)
    assert np.allclose([s for r in rows for s in r["gold_scores"]], gold)
    summary = json.loads((out / "score_summary.json").read_text())
    assert summary["n_answers"] == 5 and summary["gold_mean"] == pytest.approx(np.mean(gold))
    lengths = [len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers]
    assert lengths == [3, 1, 0, 3, 5]  # answer tokens alone: no prompt, no eos
    assert summary["proxy_length_pearson"] == pytest.approx(pearson(expected, np.array(lengths)))


def test_seed_members_combine_by_objective(rms, generations, tmp_path):
    out = tmp_path / "wco"
    args = ["score", str(generations), "--rm", f"{rms}/rm_seed{{seed}}/model", "seeds=[1,2]",
            "objective=wco", "--out", str(out), "device=cpu"]  # fmt: skip
    assert main(args) == 0
    rows = [json.loads(x) for x in (out / "scored.jsonl").read_text().splitlines()]
    members = {
        k: np.array([s for r in rows for s in r["member_scores"][k]])
        for k in rows[0]["member_scores"]
    }
    assert set(members) == {"rm_seed1", "rm_seed2"}
    proxy = np.array([s for r in rows for s in r["proxy_scores"]])
    assert np.allclose(proxy, np.minimum(members["rm_seed1"], members["rm_seed2"]))
    assert "gold_scores" not in rows[0]


def test_bad_input_is_one_line(rms, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "list one fruits", "answers": "apple"}) + "\n")
    out = tmp_path / "run"
    assert (
        main(["score", str(bad), "--rm", str(rms / "rm_seed1" / "model"), "--out", str(out)]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"goodhart score: error: {bad}:1: field 'answers': expected a list, got string"]
    assert not out.exists()
    assert main(["score", str(bad), "--out", str(out)]) == 2
    assert "nothing to score with" in capsys.readouterr().err


def test_validate_takes_the_short_form(tmp_path, capsys) -> None:
    """`goodhart validate score FILE --rm 'R{seed}'` checks what `goodhart score` would run."""
    capsys.readouterr()
    assert main(["validate", "score", "g.jsonl", "--rm", "rm_seed{seed}", "seeds=[1,2]"]) == 0
    shown = capsys.readouterr().out
    assert "generations: g.jsonl" in shown and "rm_seed{seed}" in shown
    assert main(["validate", "score", "g.jsonl", "--rm", "rm_seed{seed}"]) == 2
    assert "has a {seed} placeholder; set seeds=[1,2,...]" in capsys.readouterr().err
