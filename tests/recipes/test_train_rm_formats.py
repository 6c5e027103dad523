"""`goodhart train-rm --config smoke` from every importer's layout, from a save_to_disk dir and
from a Hugging Face id in an offline cache: the same pairs in any layout train the same RM."""

from __future__ import annotations

import json

import pytest

from goodhartlab.cli import main

SMALL = ["train.epochs=1", "train.batch_size=32", "train.checkpoint_every=100",
         "model.source=toy:rm", "device=cpu"]  # fmt: skip


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, list[dict]]:
    """Toy-vocabulary teacher pairs: 96 train, 48 held out, each chosen side the higher gold
    (so pairs made from scored generations by gold agree), no twins (a TRL file without gold
    columns refuses identical sides, as it should)."""
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    out = tmp_path_factory.mktemp("world")
    make(out, ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=300,
                           n_eval_pairs=150, label_flip_prob=0.0))  # fmt: skip
    split = {}
    for name, n in (("train", 96), ("eval", 48)):
        rows = [json.loads(x) for x in (out / f"prefs_{name}.jsonl").read_text().splitlines()]
        rows = [r for r in rows if r["chosen"] != r["rejected"]]
        rows = [r for r in rows if r["gold_chosen"] > r["gold_rejected"]]  # label = gold order
        split[name] = rows[:n]
    return split


def as_format(fmt: str, r: dict, i: int) -> dict:
    """One pair (prompt, chosen, rejected, gold) in the layout of `fmt`."""
    p, c, x = r["prompt"], r["chosen"], r["rejected"]
    flip = i % 2  # which slot holds the preferred answer, so indices are really read
    if fmt == "trl":
        return {"prompt": p, "chosen": c, "rejected": x}
    if fmt == "trl_conversational":
        return {"prompt": [{"role": "user", "content": p}],
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": x}]}  # fmt: skip
    if fmt == "hh":
        return {"chosen": f"\n\nHuman: {p}\n\nAssistant: {c}",
                "rejected": f"\n\nHuman: {p}\n\nAssistant: {x}"}  # fmt: skip
    answers = [x, c] if flip else [c, x]
    if fmt == "alpacafarm":
        return {"instruction": p, "input": "", "output_1": answers[0], "output_2": answers[1],
                "preference": 1 + flip}  # fmt: skip
    if fmt == "gold_labelled":
        return {"instruction": p, "input": "", "answers": answers, "preference": flip}
    gold = (
        [r["gold_rejected"], r["gold_chosen"]] if flip else [r["gold_chosen"], r["gold_rejected"]]
    )
    return {"prompt": p, "answers": answers, "gold_scores": gold}


def write(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def train(tmp_path, name: str, train_src: str, eval_src: str, *extra: str) -> dict:
    out = tmp_path / name
    args = ["train-rm", "--config", "smoke", "--out", str(out), f"data.train={train_src}",
            f"data.eval={eval_src}", *SMALL, *extra]  # fmt: skip
    assert main(args) == 0
    return json.loads((out / "rm_summary.json").read_text())


FORMATS = ["trl_conversational", "hh", "alpacafarm", "gold_labelled", "scored_generations"]


@pytest.fixture(scope="module")
def reference(pairs, tmp_path_factory) -> dict:
    """The RM trained from the plain TRL file of the same pairs."""
    tmp = tmp_path_factory.mktemp("trl")
    files = [write(tmp / f"{s}.jsonl", [as_format("trl", r, i) for i, r in enumerate(pairs[s])])
             for s in ("train", "eval")]  # fmt: skip
    return train(tmp, "run", *files, "data.format=trl") | {"run_dir": tmp / "run"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_importer_trains_the_same_rm_as_the_trl_file(pairs, reference, tmp_path, fmt):
    files = [
        write(tmp_path / f"{s}.jsonl", [as_format(fmt, r, i) for i, r in enumerate(pairs[s])])
        for s in ("train", "eval")
    ]
    name = fmt.removesuffix("_conversational")
    summary = train(tmp_path, fmt, *files, f"data.format={name}")
    assert summary["data"]["files"]["train"] == {"format": name, "n_pairs": 96, "skipped_rows": 0}
    got, ref = summary["members"]["1"], reference["members"]["1"]
    # the same pairs, prompts formatted alike (a chat prompt through the toy chat template):
    # the same token rows, so the same trained RM to float precision
    for key in ("accuracy_vs_labels", "score_mean", "score_std"):
        assert got[key] == pytest.approx(ref[key], abs=1e-5), key
    if fmt == "scored_generations":  # gold travels with the pairs: accuracy against gold
        assert got["accuracy_vs_gold"] == pytest.approx(got["accuracy_vs_labels"])
    auto = train(tmp_path, f"{fmt}_auto", *files)  # data.format=auto finds the same layout
    assert auto["data"]["files"]["eval"]["format"] == name


def test_hub_id_offline_and_save_to_disk_dir_train(pairs, reference, tmp_path, hf_offline_cache):
    datasets = pytest.importorskip("datasets")
    rows = {s: [as_format("alpacafarm", r, i) for i, r in enumerate(pairs[s])] for s in pairs}
    hf_offline_cache("testorg/alpaca-pairs", rows)
    hub = train(tmp_path, "hub", "testorg/alpaca-pairs?split=train",
                "testorg/alpaca-pairs?split=eval")  # fmt: skip
    assert hub["data"]["files"]["train"]["format"] == "alpacafarm"
    datasets.DatasetDict({s: datasets.Dataset.from_list(v) for s, v in rows.items()}).save_to_disk(
        str(tmp_path / "saved")
    )
    disk = train(tmp_path, "disk", f"{tmp_path / 'saved'}?split=train",
                 f"{tmp_path / 'saved'}?split=eval")  # fmt: skip
    for summary in (hub, disk):
        got, ref = summary["members"]["1"], reference["members"]["1"]
        assert got["score_mean"] == pytest.approx(ref["score_mean"], abs=1e-5)


def test_uncached_hub_id_fails_in_one_line_and_leaves_nothing(tmp_path, capsys, hf_offline_cache):
    out = tmp_path / "run"
    args = ["train-rm", "--config", "smoke", "--out", str(out), *SMALL,
            "data.train=Anthropic/hh-rlhf", "data.eval=Anthropic/hh-rlhf?split=test"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Anthropic/hh-rlhf: " in err[0] and "hub is offline" in err[0]
    assert not out.exists()


def test_evaluate_rm_reads_the_same_formats(pairs, reference, tmp_path) -> None:
    """`goodhart evaluate rm` reads held-out pairs through the same importers."""
    held_out = write(
        tmp_path / "hh.jsonl", [as_format("hh", r, i) for i, r in enumerate(pairs["eval"])]
    )
    out = tmp_path / "ev"
    rm = reference["run_dir"] / "rm_seed1" / "model"
    args = ["evaluate", "rm", f"rm={rm}", f"data.eval={held_out}", "device=cpu",
            "write_score_stats=false", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads((out / "rm_eval.json").read_text())
    assert report["data"] == {"format": "hh", "n_pairs": 48, "skipped_rows": 0}
    got, ref = report["members"]["rm_seed1"], reference["members"]["1"]
    assert got["accuracy_vs_labels"] == pytest.approx(ref["accuracy_vs_labels"])
