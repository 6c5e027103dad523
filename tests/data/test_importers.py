"""Preference importers by `data.format`: TRL, HH, AlpacaFarm, the seeds' gold-labelled pairs,
scored generations; format detection; row errors naming file, line and field."""

from __future__ import annotations

import numpy as np
import pytest

from goodhartlab.data.formats import Preference
from goodhartlab.data.hh import split_transcripts, transcript_messages
from goodhartlab.data.importers import PairKeys, import_preferences
from goodhartlab.data.records import write_jsonl_atomic
from goodhartlab.errors import InputError


def jsonl(path, rows):
    return write_jsonl_atomic(path, rows)


def error_of(call) -> str:
    """The one-line message of the InputError `call` raises."""
    try:
        call()
    except InputError as exc:
        return str(exc)
    raise AssertionError("no InputError raised")


HH_CHOSEN = (
    "\n\nHuman: list two fruits\n\nAssistant: sure\n\nHuman: and more\n\nAssistant: apple and pear"
)
HH_REJECTED = "\n\nHuman: list two fruits\n\nAssistant: sure\n\nHuman: and more\n\nAssistant: apple"
HH_PROMPT = [
    {"role": "user", "content": "list two fruits"},
    {"role": "assistant", "content": "sure"},
    {"role": "user", "content": "and more"},
]


def test_hh_transcript_becomes_chat_prompt_and_two_replies() -> None:
    assert transcript_messages("\n\nHuman: hi\n\nAssistant: hello") == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert split_transcripts(HH_CHOSEN, HH_REJECTED) == (HH_PROMPT, "apple and pear", "apple")
    # replies that share their first word keep it (cut at the marker, not the common prefix)
    prompt, a, b = split_transcripts(HH_CHOSEN + " x", HH_CHOSEN + " y")
    assert (prompt, a, b) == (HH_PROMPT, "apple and pear x", "apple and pear y")
    assert "share no" in split_transcripts("\n\nHuman: a", "\n\nHuman: b")
    assert split_transcripts(HH_CHOSEN, HH_CHOSEN) == "chosen and rejected are identical"


@pytest.mark.parametrize(
    ("fmt", "row"),
    [
        ("trl", {"prompt": "q", "chosen": "good", "rejected": "bad"}),
        ("trl", {"prompt": [{"role": "user", "content": "q"}],
                 "chosen": [{"role": "assistant", "content": "good"}],
                 "rejected": [{"role": "assistant", "content": "bad"}]}),
        ("hh", {"chosen": "\n\nHuman: q\n\nAssistant: good",
                "rejected": "\n\nHuman: q\n\nAssistant: bad"}),
        ("alpacafarm", {"instruction": "q", "input": "", "output_1": "bad", "output_2": "good",
                        "preference": 2}),
        ("gold_labelled", {"instruction": "q", "input": "", "answers": ["bad", "good"],
                           "preference": 1}),
        ("scored_generations", {"prompt": "q", "answers": ["bad", "good"],
                                "gold_scores": [0.5, 1.5]}),
    ],
)  # fmt: skip
def test_every_format_reads_the_same_pair_explicitly_and_by_detection(tmp_path, fmt, row):
    path = jsonl(tmp_path / "p.jsonl", [row, row])
    for asked in (fmt, "auto"):
        got = import_preferences(path, asked)
        assert got.format == fmt
        assert [(p.chosen, p.rejected) for p in got.pairs] == [("good", "bad")] * 2
        prompt = got.pairs[0].prompt
        assert prompt == "q" or prompt == [{"role": "user", "content": "q"}]


def test_implicit_trl_and_input_column_of_the_seeds(tmp_path) -> None:
    implicit = jsonl(tmp_path / "i.jsonl", [{"chosen": "Q: cats", "rejected": "Q: cars"}])
    assert import_preferences(implicit, "trl").pairs == [Preference("Q: ", "cats", "cars")]
    seeds = jsonl(
        tmp_path / "s.jsonl",
        [{"instruction": "sum", "input": "1 2", "answers": ["3", "4"], "preference": 0}],
    )
    assert import_preferences(seeds).pairs == [Preference("sum\n1 2", "3", "4")]
    remapped = jsonl(tmp_path / "r.jsonl", [{"q": "x", "a": "good", "b": "bad"}])
    keys = PairKeys(prompt="q", chosen="a", rejected="b")
    assert import_preferences(remapped, "auto", keys).pairs == [Preference("x", "good", "bad")]


def test_scored_generations_pair_by_gold_drop_ties_and_keep_gold(tmp_path) -> None:
    rows = [
        {"prompt": "q", "answers": ["a", "b", "c", "d", "e"], "gold_scores": [1, 2, 3, 3, 9]},
        {"instruction": "r", "input": "", "answers": ["x", "y"], "gold_scores": [5, -1]},
    ]
    got = import_preferences(jsonl(tmp_path / "g.jsonl", rows[:1]))
    # pairs (a, b) and (c, d); the fifth answer has no partner; c-d tie
    assert [(p.chosen, p.rejected) for p in got.pairs] == [("b", "a")]
    assert (
        got.ties == 1 and got.gold_chosen.tolist() == [2.0] and got.gold_rejected.tolist() == [1.0]
    )
    seeds = import_preferences(jsonl(tmp_path / "s.jsonl", rows[1:]), "scored_generations")
    assert seeds.pairs == [Preference("r", "x", "y")]
    tied = jsonl(
        tmp_path / "t.jsonl", [{"prompt": "q", "answers": ["a", "b"], "gold_scores": [1, 1]}]
    )
    assert "no pair of answers with different gold scores (1 ties)" in error_of(
        lambda: import_preferences(tied)
    )


def test_toy_gold_columns_are_kept_for_trl(tmp_path) -> None:
    row = {"prompt": "q", "chosen": "a", "rejected": "b", "gold_chosen": 2.0, "gold_rejected": 1}
    got = import_preferences(jsonl(tmp_path / "p.jsonl", [row]))
    assert np.array_equal(got.gold_chosen, [2.0]) and np.array_equal(got.gold_rejected, [1.0])
    partial = jsonl(tmp_path / "n.jsonl", [row, {"prompt": "q", "chosen": "a", "rejected": "b"}])
    assert import_preferences(partial).gold_chosen is None  # only when every row has them


@pytest.mark.parametrize(
    ("fmt", "bad", "message"),
    [
        ("alpacafarm", {"instruction": "q", "output_1": "a", "output_2": "b", "preference": 3},
         "field 'preference': must be 1 or 2, got 3"),
        ("gold_labelled", {"instruction": "q", "answers": ["a", "b", "c"], "preference": 0},
         "field 'answers': must hold 2 answers, got 3"),
        ("gold_labelled", {"instruction": "q", "answers": ["a", "b"], "preference": 2},
         "field 'preference': must be 0 or 1 (the preferred answer's index), got 2"),
        ("gold_labelled", {"instruction": "q", "answers": ["a", 7], "preference": 0},
         "field 'answers[1]': expected text, got number"),
        ("hh", {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: p\n\nAssistant: b"},
         "field 'chosen': chosen and rejected share no '\\n\\nAssistant:' turn to split the prompt at"),
        ("scored_generations", {"prompt": "q", "answers": ["a", "b"], "gold_scores": [1.0]},
         "field 'gold_scores': has 1 scores for 2 answers"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_field(tmp_path, fmt, bad, message) -> None:
    good = {
        "alpacafarm": {"instruction": "q", "output_1": "a", "output_2": "b", "preference": 1},
        "gold_labelled": {"instruction": "q", "answers": ["a", "b"], "preference": 0},
        "hh": {
            "chosen": "\n\nHuman: q\n\nAssistant: a",
            "rejected": "\n\nHuman: q\n\nAssistant: b",
        },
        "scored_generations": {"prompt": "q", "answers": ["a", "b"], "gold_scores": [1.0, 2.0]},
    }[fmt]
    path = jsonl(tmp_path / "bad.jsonl", [good, bad, good])
    assert error_of(lambda: import_preferences(path, fmt)) == f"{path}:2: {message}"
    got = import_preferences(path, fmt, skip_invalid=True)
    assert len(got.pairs) == 2 and got.skipped == 1


def test_unknown_layout_names_the_columns_and_the_choices(tmp_path) -> None:
    path = jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}])
    message = error_of(lambda: import_preferences(path))
    assert message.startswith(f"{path}:1: cannot tell the preference format from the columns")
    assert "['answer', 'question']" in message and "set data.format to one of" in message
    # an AlpacaFarm file read as TRL names the missing column, as before
    alpaca = jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "output_1": "a", "output_2": "b",
                                           "preference": 1}])  # fmt: skip
    assert error_of(lambda: import_preferences(alpaca, "trl")).endswith(
        "field 'chosen': missing column"
    )
    assert import_preferences(alpaca).format == "alpacafarm"


def test_chat_prompts_use_the_tokenizer_chat_template_or_plain_text() -> None:
    from goodhartlab.data.encoding import encode_reward_inputs, format_prompt
    from goodhartlab.toyworld.vocab import build_tokenizer

    tok = build_tokenizer()
    chat = [{"role": "user", "content": "list two fruits"}]
    assert (
        format_prompt(tok, chat)
        == format_prompt(tok, "list two fruits")
        == ("[BOS] list two fruits [SEP]")
    )
    assert format_prompt(tok, HH_PROMPT).startswith("[BOS] list two fruits sure and more")
    assert format_prompt(tok, chat, template="Q: {prompt} A:") == "Q: User: list two fruits A:"
    tok.chat_template = None
    assert format_prompt(tok, chat) == "User: list two fruits\n\nAssistant:"
    tok = build_tokenizer()  # chat and text prompts in one batch: the same rows as text alone
    mixed = encode_reward_inputs(tok, [chat, "list two fruits", chat], ["apple"] * 3).rows()
    assert mixed[0] == mixed[1] == mixed[2]


def test_hh_turns_keep_their_roles_in_a_real_chat_template() -> None:
    """A ChatML-style template (as Qwen2's) sees every HH turn with its role."""
    from goodhartlab.data.encoding import format_prompt
    from goodhartlab.toyworld.vocab import build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert format_prompt(tok, HH_PROMPT) == (
        "<|im_start|>user\nlist two fruits<|im_end|>\n<|im_start|>assistant\nsure<|im_end|>\n"
        "<|im_start|>user\nand more<|im_end|>\n<|im_start|>assistant\n"
    )


def test_prompt_files_in_the_seeds_layouts(tmp_path) -> None:
    from goodhartlab.data.formats import load_prompts

    alpaca = jsonl(
        tmp_path / "a.jsonl", [{"instruction": "sum", "input": "1 2"}, {"instruction": "hi"}]
    )
    assert load_prompts(alpaca) == ["sum\n1 2", "hi"]  # AlpacaFarm val prompts (Coste's eval set)
    chat = [{"role": "user", "content": "hi"}]
    length_paper = jsonl(tmp_path / "c.jsonl", [{"context_messages": chat, "class": "helpful"}])
    assert load_prompts(length_paper) == [chat]
    both = jsonl(tmp_path / "b.jsonl", [{"prompt": "p", "instruction": "i"}])
    assert load_prompts(both) == ["p"]  # the prompt column wins
    neither = jsonl(tmp_path / "n.jsonl", [{"question": "q"}])
    assert error_of(lambda: load_prompts(neither)) == f"{neither}:1: field 'prompt': missing column"


def test_eval_files_of_chat_prompts_read_back(tmp_path) -> None:
    """Our eval files (ppo eval/eval-{step}.json, `goodhart evaluate` output) write a chat
    prompt as the messages in `instruction`; score, bon and the importers must read them back."""
    from goodhartlab.data.formats import load_prompts, load_scored_generations
    from goodhartlab.data.generations import load_generations

    chat = [{"role": "user", "content": "list two fruits"}]
    row = {"instruction": chat, "answers": ["apple", "pear"], "gold_scores": [0.2, 0.5]}
    path = tmp_path / "eval-2.json"
    path.write_text(__import__("json").dumps([row, row]))
    assert [r.prompt for r in load_generations(path)] == [chat, chat]
    assert load_scored_generations(path).prompts == [chat, chat]
    assert import_preferences(path).pairs == [Preference(chat, "pear", "apple")] * 2
    assert load_prompts(path) == [chat, chat]
    text = jsonl(tmp_path / "t.jsonl", [{"instruction": "sum", "input": "1 2", "answers": ["3"]}])
    assert [r.prompt for r in load_generations(text)] == ["sum\n1 2"]  # the seeds' text layout


def test_hh_transcripts_stripped_of_their_leading_newlines() -> None:
    """A transcript that was stripped ("Human: ..." at the very start, as CSV exports and
    `.strip()`ed copies of HH have it) keeps its roles: the first marker is not user text."""
    from goodhartlab.data.hh import looks_like_hh

    stripped = HH_CHOSEN.lstrip()
    assert transcript_messages(stripped) == transcript_messages(HH_CHOSEN)
    assert split_transcripts(stripped, HH_REJECTED.lstrip()) == (
        HH_PROMPT,
        "apple and pear",
        "apple",
    )
    assert looks_like_hh("Human: hi\n\nAssistant: yo") and not looks_like_hh("Humans: hi")
    assert transcript_messages("Note: hi\n\nAssistant: yo")[0] == {
        "role": "user",
        "content": "Note: hi",
    }
