"""Issue 13: bad input never succeeds silently, never ends in a traceback, never blocks the rerun.

Each class of bad input: the exact one-line message, the exit code, and nothing left behind
that blocks the corrected rerun. Runs point at tiny random models (`tiny_ppo_models`), so every
case takes seconds.
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch

from goodhartlab.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def _ppo(models, *extra: str) -> list[str]:
    return [
        "ppo", "--config", "smoke", "device=cpu", f"policy.source={models / 'policy'}",
        f"reward.reward_models=[{models / 'rm'}]", "generation.max_new_tokens=8",
        "eval.n_prompts=16", *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------- item 2: ranges in the config


RANGES = [
    ("sft", "train.batch_size=-4", "field 'train.batch_size': -4 is out of range (allowed: [1, inf))"),
    ("sft", "train.batch_size=0", "field 'train.batch_size': 0 is out of range (allowed: [1, inf))"),
    ("ppo", "ppo.minibatch_size=-8", "field 'ppo.minibatch_size': -8 is out of range (allowed: [1, inf))"),
    ("ppo", "ppo.lr=-1e-3", "field 'ppo.lr': -0.001 is out of range (allowed: (0, inf))"),
    ("ppo", "generation.temperature=-1", "field 'generation.temperature': -1 is out of range (allowed: [0, inf))"),
    ("ppo", "ppo.prompts_per_iteration=-16", "field 'ppo.prompts_per_iteration': -16 is out of range (allowed: [1, inf))"),
    ("train-rm", "data.label_flip_prob=1.5", "field 'data.label_flip_prob': 1.5 is out of range (allowed: [0, 1])"),
    ("train-rm", "data.label_flip_prob=-0.1", "field 'data.label_flip_prob': -0.1 is out of range (allowed: [0, 1])"),
    ("ppo", "generation.top_p=1.5", "field 'generation.top_p': 1.5 is out of range (allowed: [0, 1])"),
    ("bon", "generate.n_samples=0", "field 'generate.n_samples': 0 is out of range (allowed: [1, inf))"),
    ("orpo", "ppo.minibatch_size=0", "field 'ppo.minibatch_size': 0 is out of range (allowed: [1, inf))"),
    ("evaluate", "n_prompts=-1", "field 'n_prompts': -1 is out of range (allowed: [1, inf))"),
    ("toyworld", "world.n_train_demos=-1", "field 'world.n_train_demos': -1 is out of range (allowed: [1, inf))"),
    ("sft", "data.toy.n_eval_pairs=0", "field 'data.toy.n_eval_pairs': 0 is out of range (allowed: [1, inf))"),
    ("ppo", "generation.vllm_memory=0", "field 'generation.vllm_memory': 0 is out of range (allowed: (0, 1])"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "override", "message"), RANGES)
def test_validate_names_the_field_and_range(command, override, message, capsys) -> None:
    assert main(["validate", command, "--config", "smoke", override]) == 2
    assert _err(capsys) == f"goodhart validate: error: override '{override}': {message}"


def test_a_range_error_in_a_run_leaves_no_dir(tmp_path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["sft", "--config", "smoke", "train.batch_size=0", "--out", str(out)]) == 2
    assert _err(capsys).startswith("goodhart sft: error: override 'train.batch_size=0': field")
    assert not out.exists()


def test_a_yaml_file_value_out_of_range_names_file_and_line(tmp_path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ppo:\n  iterations: 2\n  lr: -0.5\n")
    assert main(["validate", "ppo", "--config", str(path)]) == 2
    message = f"{path}:3: field 'ppo.lr': -0.5 is out of range (allowed: (0, inf))"
    assert _err(capsys) == f"goodhart validate: error: {message}"


def test_minibatch_must_divide_the_batch(capsys) -> None:
    assert main(["validate", "ppo", "--config", "smoke", "ppo.minibatch_size=5"]) == 2
    assert _err(capsys) == (
        "goodhart validate: error: field 'ppo.minibatch_size': 5 must divide "
        "ppo.prompts_per_iteration (16) evenly (e.g. 4)"
    )
    assert main(["validate", "ppo", "--config", "smoke", "ppo.minibatch_size=4"]) == 0


# ---------------------------------------------------------------- items 3-4: any failure


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ValueError("Expected parameter probs (Tensor of shape (2,)) to satisfy\nSimplex()"),
         "ValueError: Expected parameter probs (Tensor of shape (2,)) to satisfy Simplex()"),
        (OSError(28, "No space left on device"), "OSError: [Errno 28] No space left on device"),
    ],
)  # fmt: skip
def test_any_exception_is_one_line_and_no_blocking_dir(exc, line, tmp_path, capsys, monkeypatch):
    from goodhartlab.recipes import sft

    def fail(cfg, run_dir, resume=False):
        (run_dir.path / "metrics.jsonl").write_text('{"step": 1}\n')
        raise exc

    monkeypatch.setattr(sft, "run", fail)
    out = tmp_path / "r"
    assert main(["sft", "--config", "smoke", "--out", str(out)]) == 1
    assert _err(capsys) == f"goodhart sft: error: {line}"
    assert not out.exists()  # the corrected rerun is not blocked
    monkeypatch.setenv("GOODHART_DEBUG", "1")
    with pytest.raises(type(exc)):
        main(["sft", "--config", "smoke", "--out", str(out)])


def test_an_empty_out_dir_the_user_made_stays_usable(tmp_path, capsys, monkeypatch) -> None:
    from goodhartlab.recipes import sft

    monkeypatch.setattr(sft, "run", lambda cfg, run_dir, resume=False: 1 / 0)
    out = tmp_path / "mine"
    out.mkdir()
    assert main(["sft", "--config", "smoke", "--out", str(out)]) == 1
    assert _err(capsys) == "goodhart sft: error: ZeroDivisionError: division by zero"
    assert out.is_dir() and not any(out.iterdir())


def test_failed_fresh_ppo_then_corrected_rerun(tiny_ppo_models, tmp_path, capsys) -> None:
    out = tmp_path / "r"
    assert main([*_ppo(tiny_ppo_models, "ppo.lr=-1e-3"), "--out", str(out)]) == 2
    assert "field 'ppo.lr'" in _err(capsys)
    assert (
        main([*_ppo(tiny_ppo_models, "ppo.iterations=1"), "--out", str(out)]) == 0
    )  # was: not empty


def test_a_tokenizer_error_in_bon_is_one_line(tiny_ppo_models, tmp_path, capsys) -> None:
    gens = tmp_path / "gens.jsonl"
    gens.write_text(json.dumps({"prompt": "list two fruits", "answers": ["a", "b"],
                                "gold_scores": [1.0, 0.0]}) + "\n")  # fmt: skip
    out = tmp_path / "bon"
    args = ["bon", "--config", "smoke", "device=cpu", f"generations={gens}", "sample_ns=[1,2]",
            f"reward_models=[{tiny_ppo_models / 'rm'}]", "--out", str(out)]  # fmt: skip
    assert main(args) == 1  # was: a traceback and a RUN that blocked the rerun
    assert _err(capsys) == (
        "goodhart bon: error: Exception: WordLevel error: Missing [UNK] token from the vocabulary"
    )
    assert not out.exists()


# ---------------------------------------------------------------- item 1: user data is read


def _pairs(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_user_preference_file_beside_toy_is_an_error(capsys) -> None:
    for given, toy in (("train", "eval"), ("eval", "train")):
        override = f"data.{given}=no_such_file.jsonl"
        assert main(["validate", "train-rm", "--config", "smoke", override]) == 2
        assert _err(capsys) == (
            f"goodhart validate: error: override '{override}': field 'data.{given}': a preference "
            f"file cannot be mixed with {toy}='toy'; give both files (data.train=TRAIN.jsonl "
            "data.eval=HELD_OUT.jsonl) or leave both 'toy'"
        )


def test_a_missing_user_file_is_an_error(tmp_path, capsys) -> None:
    good = _pairs(
        tmp_path / "p.jsonl", [{"prompt": "list two fruits", "chosen": "a", "rejected": "b"}]
    )
    out = tmp_path / "r"
    args = ["train-rm", "--config", "smoke", "device=cpu", "model.source=toy:rm",
            "data.train=no_such_file.jsonl", f"data.eval={good}", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    assert _err(capsys) == "goodhart train-rm: error: no_such_file.jsonl: file not found"
    assert not out.exists()


@pytest.mark.parametrize("explicit", [True, False])
def test_identical_pairs_are_refused(explicit, tmp_path, capsys) -> None:
    from goodhartlab.data.formats import load_preferences

    rows = [("apple", "pear"), ("apple", "apple")]
    if explicit:
        rows = [{"prompt": "list one fruit", "chosen": c, "rejected": r} for c, r in rows]
    else:
        rows = [
            {"chosen": f"list one fruit {c}", "rejected": f"list one fruit {r}"} for c, r in rows
        ]
    path = _pairs(tmp_path / "p.jsonl", rows)
    out = tmp_path / "r"
    args = ["train-rm", "--config", "smoke", "device=cpu", "model.source=toy:rm",
            f"data.train={path}", f"data.eval={path}", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    message = f"{path}:2: field 'chosen': chosen and rejected are identical"
    assert _err(capsys) == f"goodhart train-rm: error: {message}"
    assert not out.exists()
    pairs, skipped = load_preferences(path, skip_invalid=True)
    assert len(pairs) == 1 and skipped == 1


def test_identical_gold_labelled_toy_pairs_are_kept(tmp_path) -> None:
    """The toy world's own pairs (gold columns) keep their ties: its cached models used them."""
    from goodhartlab.data.formats import load_preferences

    row = {"prompt": "list one fruit", "chosen": "apple", "rejected": "apple",
           "gold_chosen": 1.0, "gold_rejected": 1.0}  # fmt: skip
    assert len(load_preferences(_pairs(tmp_path / "p.jsonl", [row]))) == 1


# ---------------------------------------------------------------- item 5: safetensors only


def test_pickle_weights_are_refused_unless_allowed(tiny_ppo_models, tmp_path, capsys) -> None:
    import shutil

    from safetensors.torch import load_file

    from goodhartlab.models import load_policy

    model = tmp_path / "bin_policy"
    shutil.copytree(tiny_ppo_models / "policy", model)
    torch.save(load_file(str(model / "model.safetensors")), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    out = tmp_path / "r"
    assert main(_ppo(tiny_ppo_models, f"policy.source={model}", "--out", str(out))) == 1
    assert _err(capsys) == (
        f"goodhart ppo: error: {model}: holds only pickle weights (pytorch_model.bin), which can "
        "run code when loaded; convert them to safetensors, or opt in with "
        "allow_pickle_weights=true in the model's section (e.g. model.allow_pickle_weights=true)"
    )
    assert not out.exists()
    ours, _ = load_policy(str(model), device="cpu", allow_pickle_weights=True)
    ref, _ = load_policy(str(tiny_ppo_models / "policy"), device="cpu")
    assert all(
        torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values())
    )


# ---------------------------------------------------------------- item 7: NaN is an error


@pytest.fixture(scope="module")
def nan_rm(tiny_ppo_models, tmp_path_factory):
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    rm, tok = load_reward_model(str(tiny_ppo_models / "rm"), device="cpu")
    with torch.no_grad():
        rm.score.weight.fill_(float("nan"))
    return save_reward_model(rm, tok, tmp_path_factory.mktemp("nan") / "rm", 0.0, 1.0)


def test_evaluate_with_a_nan_rm_fails_naming_it(tiny_ppo_models, nan_rm, tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["evaluate", "--config", "smoke", "device=cpu", f"checkpoint={tiny_ppo_models / 'policy'}",
            f"reward.reward_models=[{nan_rm}]", "n_prompts=8", "generation.max_new_tokens=8",
            f"output={out / 'eval.json'}", "--out", str(out)]  # fmt: skip
    assert main(args) == 1  # was: rc 0 with reward/proxy: null
    assert _err(capsys) == (
        f"goodhart evaluate: error: reward model {nan_rm.resolve()}: its score is not finite for "
        "response 0 (nan)"
    )
    assert not out.exists()


def test_bon_with_a_nan_rm_fails_naming_it(nan_rm, tmp_path, capsys) -> None:
    from goodhartlab.toyworld.teacher import sample_prompts

    prompts = [p.text for p in sample_prompts(2, np.random.default_rng(0))]
    rows = [
        {"prompt": p, "answers": ["thanks", "sure !"], "gold_scores": [1.0, 0.2]} for p in prompts
    ]
    gens = _pairs(tmp_path / "g.jsonl", rows)
    out = tmp_path / "bon"
    args = ["bon", "--config", "smoke", "device=cpu", f"generations={gens}", "sample_ns=[1,2]",
            f"reward_models=[{nan_rm}]", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    assert _err(capsys) == (
        f"goodhart bon: error: reward model {nan_rm.resolve()}: its score is not finite for "
        "answer 0 (nan)"
    )
    assert not out.exists()


# ---------------------------------------------------------------- item 8: small ones


def test_files_get_the_umask_modes(tmp_path) -> None:
    from goodhartlab.runs.atomic import atomic_directory, atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # was 0600
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755  # was 0700


def _empty_prompts_fail_before_loading(monkeypatch, tmp_path, capsys, module, loader: str,
                                       command: str, argv) -> None:  # fmt: skip
    """`argv(prompts, out)` must fail on an empty prompts file before `module.loader` runs."""

    def must_not_load(*args, **kwargs):
        raise AssertionError(f"{loader} ran before the prompts were read")

    monkeypatch.setattr(module, loader, must_not_load)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "r"
    assert main(argv(empty, out)) == 1
    assert _err(capsys) == f"goodhart {command}: error: {empty}: no rows"
    assert not out.exists()


def test_an_empty_prompts_file_fails_before_models_load(tiny_ppo_models, tmp_path, capsys,
                                                        monkeypatch) -> None:  # fmt: skip
    from goodhartlab.recipes import ppo

    def argv(prompts, out):
        return _ppo(tiny_ppo_models, f"prompts={prompts}", "--out", str(out))

    _empty_prompts_fail_before_loading(
        monkeypatch, tmp_path, capsys, ppo, "build_state", "ppo", argv
    )


def test_an_empty_prompts_file_fails_evaluate_before_the_policy_loads(tiny_ppo_models, tmp_path,
                                                                     capsys, monkeypatch) -> None:  # fmt: skip
    from goodhartlab.recipes import evaluate

    def argv(prompts, out):
        return ["evaluate", "--config", "smoke", "device=cpu", f"checkpoint={tiny_ppo_models / 'policy'}",
                f"reward.reward_models=[{tiny_ppo_models / 'rm'}]", f"prompts={prompts}", "--out", str(out)]  # fmt: skip

    _empty_prompts_fail_before_loading(
        monkeypatch, tmp_path, capsys, evaluate, "load_policy", "evaluate", argv
    )


def test_a_failed_fresh_bon_keeps_the_samples_it_drew(
    tiny_ppo_models, nan_rm, tmp_path, capsys
) -> None:
    """Minutes of sampling are not thrown away with the error: the run dir stays for --resume."""
    out = tmp_path / "bon"
    args = ["bon", "--config", "smoke", "device=cpu", f"generate.policy={tiny_ppo_models / 'policy'}",
            "generate.n_prompts=2", "generate.n_samples=4", "generate.sampling.max_new_tokens=6",
            "sample_ns=[1,2]", f"reward_models=[{nan_rm}]", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (  # after the sampling bar
        f"goodhart bon: error: reward model {nan_rm.resolve()}: its score is not finite for "
        "answer 0 (nan)"
    )
    assert f"goodhart: note: kept {out}: it holds finished work that --resume continues" in (
        captured.out
    )
    rows = (out / "scored_generations.jsonl").read_text().splitlines()
    assert len(rows) == 2 and len(json.loads(rows[0])["answers"]) == 4


def test_bon_fails_on_a_missing_rm_before_sampling(tmp_path, capsys, monkeypatch) -> None:
    from goodhartlab.recipes import bon

    def must_not_sample(cfg):
        raise AssertionError("sampled before the reward models were checked")

    monkeypatch.setattr(bon, "sample_generations", must_not_sample)
    out = tmp_path / "bon"
    missing = tmp_path / "no_such_rm"
    assert main(["bon", "--config", "smoke", f"reward_models=[{missing}]", "--out", str(out)]) != 0
    assert str(missing) in _err(capsys)
    assert not out.exists()
