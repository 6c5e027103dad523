"""`--resume` repairs metrics.jsonl (issue 13 item 6): a run killed before its first checkpoint
restarts from an empty file, a torn last line is dropped with a note; both end equal, byte for
byte, to an uninterrupted run's metrics."""

import pytest

from goodhartlab.cli import main

SFT = [
    "sft", "--config", "smoke", "device=cpu", "data.toy.n_train_demos=640", "train.epochs=2",
    "train.checkpoint_every=10", "train.eval_every=5", "sample.n_prompts=16",
]  # fmt: skip


def _ppo(models):
    return [
        "ppo", "--config", "smoke", "device=cpu", f"policy.source={models / 'policy'}",
        f"reward.reward_models=[{models / 'rm'}]", "generation.max_new_tokens=8",
        "eval.n_prompts=16",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def ppo_plain(tmp_path_factory, tiny_ppo_models):
    out = tmp_path_factory.mktemp("resume") / "ppo_plain"
    assert main([*_ppo(tiny_ppo_models), "--out", str(out)]) == 0
    return out


def _kill_and_resume(kill_at_checkpoint, args, out, marker, torn: str = "") -> None:
    kill_at_checkpoint([*args, "--out", str(out)], marker)
    if torn:  # a disk that filled up mid-line
        with (out / "metrics.jsonl").open("a") as fh:
            fh.write(torn)
    assert main([*args, "--out", str(out), "--resume"]) == 0


def test_ppo_killed_before_first_checkpoint(ppo_plain, tiny_ppo_models, tmp_path,
                                            kill_at_checkpoint) -> None:  # fmt: skip
    out = tmp_path / "killed"
    args = _ppo(tiny_ppo_models)
    kill_at_checkpoint([*args, "--out", str(out)], out / "metrics.jsonl")  # step 0 logged
    assert not (out / "checkpoints" / "latest").exists()
    assert main([*args, "--out", str(out), "--resume"]) == 0  # was: step 0 twice
    assert (out / "metrics.jsonl").read_bytes() == (ppo_plain / "metrics.jsonl").read_bytes()


def test_ppo_torn_last_line_after_checkpoint(ppo_plain, tiny_ppo_models, tmp_path,
                                             kill_at_checkpoint, capsys) -> None:  # fmt: skip
    out = tmp_path / "torn"
    marker = out / "checkpoints" / "latest"
    _kill_and_resume(kill_at_checkpoint, _ppo(tiny_ppo_models), out, marker, '{"step": 3, "rew')
    assert "dropped a torn last line" in capsys.readouterr().out  # was: JSONDecodeError
    assert (out / "metrics.jsonl").read_bytes() == (ppo_plain / "metrics.jsonl").read_bytes()


def test_sft_killed_before_first_checkpoint(tmp_path, kill_at_checkpoint) -> None:
    plain, out = tmp_path / "plain", tmp_path / "killed"
    assert main([*SFT, "--out", str(plain)]) == 0
    kill_at_checkpoint([*SFT, "--out", str(out)], out / "metrics.jsonl")
    assert not (out / "checkpoints" / "latest").exists()
    assert main([*SFT, "--out", str(out), "--resume"]) == 0  # was: the first steps twice
    assert (out / "metrics.jsonl").read_bytes() == (plain / "metrics.jsonl").read_bytes()
