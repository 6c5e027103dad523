"""SFT end to end on the toy world at smoke size: it learns, saves, samples, and resumes exactly."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from goodhartlab.cli import main


def _metrics(run) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "run"
    assert main(["sft", "--config", "smoke", "--out", str(out)]) == 0
    return out


def test_sft_learns_and_saves(smoke_run) -> None:
    rows = _metrics(smoke_run)
    train = [r["loss/train"] for r in rows]
    evals = [r["loss/eval"] for r in rows if "loss/eval" in r]
    assert len(rows) == 189  # ceil(4000 demos / 64 per step) = 63 steps, 3 epochs
    assert sum(train[-5:]) / 5 < 0.5 * sum(train[:5]) / 5
    assert evals[-1] < evals[0]
    summary = json.loads((smoke_run / "sft_summary.json").read_text())
    assert summary["eos_rate"] > 0.8
    assert summary["gold_mean"] > 0.5 * summary["teacher_gold_mean"]
    model = AutoModelForCausalLM.from_pretrained(smoke_run / "model")
    assert model.config.model_type == "gpt_neox"
    samples = [json.loads(x) for x in (smoke_run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 128 and {"prompt", "response", "ended", "gold"} <= set(samples[0])


def test_killed_run_resumes_to_same_numbers(smoke_run, tmp_path, kill_at_checkpoint) -> None:
    out = tmp_path / "killed"
    kill_at_checkpoint(
        ["sft", "--config", "smoke", "--out", str(out)], out / "checkpoints" / "latest"
    )
    assert not (out / "sft_summary.json").exists()
    assert main(["sft", "--config", "smoke", "--out", str(out), "--resume"]) == 0
    assert _metrics(out) == _metrics(smoke_run)
    ours = AutoModelForCausalLM.from_pretrained(out / "model").state_dict()
    ref = AutoModelForCausalLM.from_pretrained(smoke_run / "model").state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    a = json.loads((out / "sft_summary.json").read_text())
    b = json.loads((smoke_run / "sft_summary.json").read_text())
    assert a["gold_mean"] == b["gold_mean"] and a["loss/eval"] == b["loss/eval"]
