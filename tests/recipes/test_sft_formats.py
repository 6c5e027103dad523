"""`goodhart sft --config smoke` from every demonstrations layout (`data.format=`): the same
demonstrations as TRL, Alpaca, conversational messages or HH transcripts train the same policy."""

from __future__ import annotations

import json

import pytest

from goodhartlab.cli import main
from goodhartlab.data.sft_importers import import_demonstrations
from goodhartlab.errors import InputError

SMALL = ["model.source=toy:policy", "device=cpu", "train.epochs=1", "train.batch_size=32",
         "train.eval_every=100", "train.checkpoint_every=100", "sample.n_prompts=0"]  # fmt: skip


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> dict[str, list[dict]]:
    """Toy-world teacher demonstrations: 96 to train on, 32 held out."""
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    out = tmp_path_factory.mktemp("world")
    make(out, ToyWorldSpec(n_train_demos=96, n_eval_prompts=32, n_train_pairs=10, n_eval_pairs=10))
    return {
        split: [json.loads(x) for x in (out / f"demos_{split}.jsonl").read_text().splitlines()]
        for split in ("train", "eval")
    }


def as_format(fmt: str, row: dict) -> dict:
    p, c = row["prompt"], row["completion"]
    if fmt == "trl":
        return {"prompt": p, "completion": c}
    if fmt == "messages":
        return {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": c}]}
    if fmt == "alpaca":
        return {"instruction": p, "input": "", "output": c}
    return {"chosen": f"\n\nHuman: {p}\n\nAssistant: {c}", "rejected": "\n\nHuman: x"}


def sft(tmp_path, demos, fmt: str, *extra: str) -> dict:
    files = []
    for split in ("train", "eval"):
        path = tmp_path / f"{fmt}_{split}.jsonl"
        path.write_text("".join(json.dumps(as_format(fmt, r)) + "\n" for r in demos[split]))
        files.append(f"data.{split}={path}")
    out = tmp_path / f"run_{fmt}"
    assert main(["sft", "--config", "smoke", "--out", str(out), *files, *SMALL, *extra]) == 0
    return json.loads((out / "sft_summary.json").read_text())


@pytest.fixture(scope="module")
def reference(demos, tmp_path_factory) -> dict:
    return sft(tmp_path_factory.mktemp("trl"), demos, "trl", "data.format=trl")


@pytest.mark.parametrize("fmt", ["messages", "alpaca", "hh"])
def test_each_layout_trains_the_same_policy_as_the_trl_file(demos, reference, tmp_path, fmt):
    summary = sft(tmp_path, demos, fmt)  # data.format=auto finds the layout
    name = "trl" if fmt == "messages" else fmt
    assert summary["data"]["train"] == {"format": name, "n_rows": 96, "skipped_rows": 0}
    for key in ("loss/train", "loss/eval"):
        assert summary[key] == pytest.approx(reference[key], abs=1e-5), key


def test_bad_rows_name_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q"}]}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError) as err:
        import_demonstrations(path)
    assert str(err.value) == (
        f"{path}:2: field 'messages': must be 2+ messages ending with an assistant turn"
    )
    items, fmt, skipped = import_demonstrations(path, skip_invalid=True)
    assert len(items) == 1 and fmt == "trl" and skipped == 1
    assert items[0].prompt == [{"role": "user", "content": "q"}] and items[0].completion == "a"
