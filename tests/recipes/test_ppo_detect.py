"""`goodhart ppo` with hacking detectors and early stopping, at tiny size."""

import json

import torch

from goodhartlab.cli import main


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_every_evaluation_logs_detector_metrics(tiny_ppo_models, tmp_path, ppo_smoke_args) -> None:
    out = tmp_path / "plain"
    assert main(ppo_smoke_args(out, tiny_ppo_models)) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/reward/gold" in r]
    for row in evals:  # a single BT RM allows the length and eos detectors
        assert {"detect/length/score", "detect/length/flag", "detect/eos/flag"} <= set(row)
        assert "detect/disagreement/score" not in row
    assert evals[0]["detect/length/score"] == 0.0  # the reference is the step-0 sample itself
    summary = json.loads((out / "ppo_summary.json").read_text())
    assert set(summary["detect_first_flag"]) == {"length", "eos"}
    assert summary["early_stopped_at"] is None


def test_early_stop_saves_the_last_unflagged_policy(
    tiny_ppo_models, tmp_path, ppo_smoke_args
) -> None:
    out = tmp_path / "stop"
    # every evaluation from iteration 2 on flags (threshold below any score): stop at 2, keep 1
    extra = ["eval.every=1", "checkpoint_every=1", "detect.warmup=2",
             "detect.thresholds.length=-1e9", "early_stop.on=length"]  # fmt: skip
    assert main(ppo_smoke_args(out, tiny_ppo_models, *extra)) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]  # training ended at the flag
    assert [r["detect/length/flag"] for r in rows] == [0.0, 0.0, 1.0]
    summary = json.loads((out / "ppo_summary.json").read_text())
    assert summary["early_stopped_at"] == 2
    assert summary["saved_policy_step"] == 1
    assert summary["detect_first_flag"]["length"] == 2
    saved, kept = _weights(out / "model"), _weights(out / "checkpoints" / "step_1")
    start = _weights(tiny_ppo_models / "policy")
    for name, tensor in saved.items():  # RUN/model is the iteration-1 policy, not the last one
        assert torch.equal(tensor, kept[name]), name
    assert any(not torch.equal(saved[n], start[n]) for n in saved)  # and it did train


def test_a_detector_the_models_do_not_allow_is_a_config_error(
    tiny_ppo_models, tmp_path, capsys, ppo_smoke_args
):
    assert main(ppo_smoke_args(tmp_path / "bad", tiny_ppo_models, "early_stop.on=latent")) != 0
    assert "InfoRM" in capsys.readouterr().err


def _ensemble_and_inform(root):
    """A second tiny BT RM and a tiny InfoRM beside the fixture's models."""
    from goodhartlab.models.inform import InfoRMConfig
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    rm, tok = load_reward_model("toy:rm", device="cpu", seed=2)
    save_reward_model(rm, tok, root / "rm2", 0.0, 1.0)
    inform, tok = load_reward_model("toy:rm", device="cpu", seed=3, inform=InfoRMConfig(4))
    save_reward_model(inform, tok, root / "inform", 0.0, 1.0)
    return root / "rm2", root / "inform"


def test_ensemble_and_inform_detectors_survive_a_kill(
    tiny_ppo_models, tmp_path, monkeypatch, ppo_smoke_args
):
    from goodhartlab.recipes import ppo

    rm2, inform = _ensemble_and_inform(tmp_path)
    extra = [f"reward.reward_models=[{tiny_ppo_models / 'rm'},{rm2}]", f"detect.inform={inform}",
             "eval.every=1", "checkpoint_every=2", "detect.warmup=3",
             "detect.thresholds.length=-1e9", "early_stop.on=length"]  # fmt: skip
    plain = tmp_path / "plain"
    assert main(ppo_smoke_args(plain, tiny_ppo_models, *extra)) == 0
    rows = [json.loads(x) for x in (plain / "metrics.jsonl").read_text().splitlines()]
    for name in ("disagreement", "disagreement_std", "latent", "csi", "length", "eos", "wco"):
        assert f"detect/{name}/score" in rows[-1], name
    assert [r["step"] for r in rows] == [0, 1, 2, 3]

    real = ppo.ppo_iteration

    def dies_at_3(cfg, state, rewards, iteration, pool):
        if iteration == 3:
            raise KeyboardInterrupt  # killed after checkpoint 2
        return real(cfg, state, rewards, iteration, pool)

    out = tmp_path / "killed"
    monkeypatch.setattr(ppo, "ppo_iteration", dies_at_3)
    assert main(ppo_smoke_args(out, tiny_ppo_models, *extra)) == 130
    monkeypatch.setattr(ppo, "ppo_iteration", real)
    assert main([*ppo_smoke_args(out, tiny_ppo_models, *extra), "--resume"]) == 0
    assert (out / "metrics.jsonl").read_text() == (plain / "metrics.jsonl").read_text()
    keys = ("detect_first_flag", "early_stopped_at", "saved_policy_step")
    summaries = [json.loads((r / "ppo_summary.json").read_text()) for r in (plain, out)]
    assert [{k: s[k] for k in keys} for s in summaries] == [
        {"detect_first_flag": summaries[0]["detect_first_flag"], "early_stopped_at": 3,
         "saved_policy_step": 2}] * 2  # fmt: skip
    a, b = _weights(plain / "model"), _weights(out / "model")
    assert all(torch.equal(a[n], b[n]) for n in a)
