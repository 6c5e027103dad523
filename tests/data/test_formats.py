"""Loaders for prompts, demonstrations, preferences, AlpacaFarm and scored generations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from goodhartlab.data.formats import (
    Demonstration,
    Preference,
    import_alpacafarm,
    load_demonstrations,
    load_preferences,
    load_prompts,
    load_scored_generations,
    messages_to_text,
    split_common_prefix,
)
from goodhartlab.errors import InputError

USER = [{"role": "user", "content": "hi"}]


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def error_of(call: Any) -> str:
    with pytest.raises(InputError) as err:
        call()
    return str(err.value)


def test_prompts_text_and_chat(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": USER}, {"q": "c", "prompt": "b"}]
    )
    assert load_prompts(path) == ["a", USER, "b"]
    assert load_prompts(path.with_name("p.jsonl"), prompt_key="prompt")[1] == USER
    remapped = jsonl(tmp_path / "q.jsonl", [{"question": "x"}])
    assert load_prompts(remapped, prompt_key="question") == ["x"]


def test_prompt_errors_name_line_and_field(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": 5}])
    assert (
        error_of(lambda: load_prompts(path))
        == f"{path}:2: field 'prompt': expected text, got number"
    )
    path = jsonl(tmp_path / "m.jsonl", [{"prompt": [{"role": "user"}]}])
    assert error_of(lambda: load_prompts(path)) == (
        f"{path}:1: field 'prompt[0].content': missing or not text"
    )
    path = jsonl(tmp_path / "k.jsonl", [{"text": "a"}])
    assert error_of(lambda: load_prompts(path)) == f"{path}:1: field 'prompt': missing column"


def test_messages_to_text() -> None:
    msgs = [{"role": "system", "content": "s"}, *USER, {"role": "assistant", "content": "yo"}]
    assert messages_to_text(msgs) == "System: s\n\nUser: hi\n\nAssistant: yo"
    assert messages_to_text(USER, add_generation_prompt=True) == "User: hi\n\nAssistant:"


def test_demonstrations_and_validation(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p", "completion": "c"},
        {"prompt": USER, "completion": [{"role": "assistant", "content": "ok"}]},
    ]
    assert load_demonstrations(jsonl(tmp_path / "d.jsonl", rows)) == [
        Demonstration("p", "c"),
        Demonstration(USER, "ok"),
    ]
    bad = jsonl(
        tmp_path / "b.jsonl",
        [{"prompt": "p", "completion": "c"}, {"prompt": "p", "completion": ""}],
    )
    assert error_of(lambda: load_demonstrations(bad)) == (
        f"{bad}:2: field 'completion': is an empty string"
    )
    items, skipped = load_demonstrations(bad, skip_invalid=True)
    assert items == [Demonstration("p", "c")] and skipped == 1
    remap = jsonl(tmp_path / "r.jsonl", [{"q": "p", "a": "c"}])
    assert load_demonstrations(remap, prompt_key="q", completion_key="a") == [
        Demonstration("p", "c")
    ]


def test_skip_invalid_counts_malformed_and_invalid_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"prompt": "p", "completion": "c"}\nnot json\n'
        '{"prompt": "p"}\n{"prompt": 1, "completion": "c"}\n'
    )
    items, skipped = load_demonstrations(path, skip_invalid=True)
    assert len(items) == 1 and skipped == 3
    only_bad = jsonl(tmp_path / "o.jsonl", [{"prompt": "p"}])
    assert "no valid rows (1 invalid rows skipped)" in error_of(
        lambda: load_demonstrations(only_bad, skip_invalid=True)
    )


def test_preferences_explicit_with_margin(tmp_path: Path) -> None:
    rows = [
        {"prompt": "q", "chosen": "a", "rejected": "b", "margin": 2},
        {"prompt": "q", "chosen": "a", "rejected": "b"},
        {
            "prompt": USER,
            "chosen": [{"role": "assistant", "content": "x"}],
            "rejected": [{"role": "assistant", "content": "y"}],
            "margin": None,
        },
    ]
    assert load_preferences(jsonl(tmp_path / "p.jsonl", rows)) == [
        Preference("q", "a", "b", 2.0),
        Preference("q", "a", "b", None),
        Preference(USER, "x", "y", None),
    ]
    bad = jsonl(
        tmp_path / "b.jsonl",
        [{"prompt": "q", "chosen": "a", "rejected": "b", "margin": float("nan")}],
    )
    assert error_of(lambda: load_preferences(bad)) == (
        f"{bad}:1: field 'margin': is nan (must be a finite number)"
    )
    missing = jsonl(
        tmp_path / "m.jsonl",
        [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"chosen": "a", "rejected": "b"}],
    )
    assert (
        error_of(lambda: load_preferences(missing))
        == f"{missing}:2: field 'prompt': missing column"
    )


def test_split_common_prefix() -> None:
    assert split_common_prefix("Q: cats", "Q: cars") == ("Q: ", "cats", "cars")
    assert split_common_prefix("Q: A", "Q: A more") == ("Q: ", "A", "A more")
    assert split_common_prefix("H: hi\nA: yes", "H: hi\nA: no") == ("H: hi\nA: ", "yes", "no")
    assert split_common_prefix("abc", "abd") == ("", "abc", "abd")


def test_preferences_implicit_prompt(tmp_path: Path) -> None:
    a1 = [*USER, {"role": "assistant", "content": "good"}]
    a2 = [*USER, {"role": "assistant", "content": "bad"}]
    rows = [{"chosen": "Human: 2+2?\n\nAssistant: 4", "rejected": "Human: 2+2?\n\nAssistant: five"}]
    prefs = load_preferences(jsonl(tmp_path / "p.jsonl", rows))
    assert prefs == [Preference("Human: 2+2?\n\nAssistant: ", "4", "five")]
    conv = load_preferences(jsonl(tmp_path / "c.jsonl", [{"chosen": a1, "rejected": a2}]))
    assert conv == [Preference(USER, "good", "bad")]
    forced = jsonl(
        tmp_path / "f.jsonl", [{"prompt": "ignored", "chosen": "x y", "rejected": "x z"}]
    )
    assert load_preferences(forced, prompt_key=None) == [Preference("x ", "y", "z")]
    same = jsonl(tmp_path / "s.jsonl", [{"chosen": "x", "rejected": "x"}])
    assert error_of(lambda: load_preferences(same)) == (
        f"{same}:1: field 'chosen': chosen and rejected are identical"
    )
    prefix = jsonl(tmp_path / "e.jsonl", [{"chosen": "Q: ", "rejected": "Q: more"}])
    assert error_of(lambda: load_preferences(prefix)) == (
        f"{prefix}:1: field 'chosen': is an empty response (after removing any shared prompt)"
    )
    turns = jsonl(tmp_path / "t.jsonl", [{"chosen": USER, "rejected": a2}])
    assert error_of(lambda: load_preferences(turns)) == (
        f"{turns}:1: field 'chosen': has no messages after the shared prompt"
    )
    mixed = jsonl(tmp_path / "x.jsonl", [{"chosen": a1, "rejected": "text"}])
    assert "both be text or both be messages" in error_of(lambda: load_preferences(mixed))


def test_preferences_remapped_keys(tmp_path: Path) -> None:
    rows = [{"question": "q", "response_j": "good", "response_k": "bad", "w": 0.5}]
    prefs = load_preferences(
        jsonl(tmp_path / "p.jsonl", rows), "question", "response_j", "response_k", "w"
    )
    assert prefs == [Preference("q", "good", "bad", 0.5)]


def test_preferences_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("prompt,chosen,rejected,margin\nq,a,b,1.5\nq,a,b,\nq,a,b,x\n")
    assert "p.csv:4: field 'margin': expected a number, got 'x'" in error_of(
        lambda: load_preferences(path)
    )
    prefs, skipped = load_preferences(path, skip_invalid=True)
    assert prefs == [Preference("q", "a", "b", 1.5), Preference("q", "a", "b", None)]
    assert skipped == 1
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(
        pa.Table.from_pylist([{"prompt": "q", "chosen": 3, "rejected": 4}]), tmp_path / "p.pq"
    )
    assert error_of(lambda: load_preferences(tmp_path / "p.pq")) == (
        f"{tmp_path / 'p.pq'} row 0: field 'chosen': expected text, got number"
    )


def test_import_alpacafarm(tmp_path: Path) -> None:
    rows = [
        {
            "instruction": "Add",
            "input": "2 and 2",
            "output_1": "4",
            "output_2": "5",
            "preference": 1,
        },
        {
            "instruction": "Greet",
            "input": "",
            "output_1": "yo",
            "output_2": "hello",
            "preference": 2,
        },
        {"instruction": "Greet", "output_1": "a", "output_2": "b", "preference": 1.0},
    ]
    assert import_alpacafarm(jsonl(tmp_path / "a.jsonl", rows)) == [
        Preference("Add\n2 and 2", "4", "5"),
        Preference("Greet", "hello", "yo"),
        Preference("Greet", "a", "b"),
    ]
    bad = jsonl(tmp_path / "b.jsonl", [{**rows[0], "preference": 3}])
    assert (
        error_of(lambda: import_alpacafarm(bad))
        == f"{bad}:1: field 'preference': must be 1 or 2, got 3"
    )
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("instruction,input,output_1,output_2,preference\nI,,x,,2\nI,,x,y,2\n")
    assert error_of(lambda: import_alpacafarm(csv_path)) == (
        f"{csv_path}:2: field 'output_2': is an empty string"
    )
    assert import_alpacafarm(csv_path, skip_invalid=True) == ([Preference("I", "y", "x")], 1)


def test_scored_generations(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p1", "answers": ["a", "b", ""], "gold_scores": [1, 2.5, -1]},
        {"prompt": "p2", "answers": ["c", "d", "e"], "gold_scores": [0, 0, 3]},
    ]
    sg = load_scored_generations(jsonl(tmp_path / "s.jsonl", rows))
    assert sg.prompts == ["p1", "p2"] and sg.answers[0] == ["a", "b", ""]
    assert sg.gold_scores.dtype == np.float64
    np.testing.assert_array_equal(sg.gold_scores, [[1, 2.5, -1], [0, 0, 3]])
    seeds = [{"instruction": "I", "input": "x", "answers": ["a"], "gold_scores": [1.0]}]
    assert load_scored_generations(jsonl(tmp_path / "i.jsonl", seeds)).prompts == ["I\nx"]


def test_scored_generations_errors(tmp_path: Path) -> None:
    ok = {"prompt": "p", "answers": ["a", "b"], "gold_scores": [1.0, 2.0]}
    nan = jsonl(tmp_path / "n.jsonl", [ok, {**ok, "gold_scores": [1.0, float("nan")]}])
    assert error_of(lambda: load_scored_generations(nan)) == (
        f"{nan}:2: field 'gold_scores[1]': is nan (must be a finite number)"
    )
    short = jsonl(tmp_path / "l.jsonl", [ok, {**ok, "gold_scores": [1.0]}])
    assert error_of(lambda: load_scored_generations(short)) == (
        f"{short}:2: field 'gold_scores': has 1 scores for 2 answers"
    )
    ragged_rows = [ok, {"prompt": "q", "answers": ["a", "b", "c"], "gold_scores": [5, 6, 7]}]
    ragged = jsonl(tmp_path / "r.jsonl", ragged_rows)
    msg = error_of(lambda: load_scored_generations(ragged))
    assert msg.startswith(f"{ragged}:2: field 'answers': has 3 answers but {ragged}:1 has 2;")
    sg = load_scored_generations(ragged, truncate_to_min=True)
    np.testing.assert_array_equal(sg.gold_scores, [[1, 2], [5, 6]])
    assert sg.answers[1] == ["a", "b"]
    text_score = jsonl(tmp_path / "t.jsonl", [{**ok, "answers": ["a", 7]}])
    assert error_of(lambda: load_scored_generations(text_score)) == (
        f"{text_score}:1: field 'answers[1]': expected text, got number"
    )
    sg, skipped = load_scored_generations(nan, skip_invalid=True)
    assert sg.gold_scores.shape == (1, 2) and skipped == 1


def test_datasets_dir_preferences(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert load_preferences(tmp_path / "ds") == [Preference("q", "a", "b")]
