"""`goodhart demo --config smoke`: the whole chain at seconds-size, its files, resume, bad config."""

import json
import os

import pytest

from goodhartlab.cli import main

METHODS = (
    "none",
    "kl_reward",
    "sqrt_chi2_loss",
    "ensemble_uwo",
    "length_penalty",
    "inform",
    "gold",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    assert main(["demo", "--config", "smoke", "--out", str(out)]) == 0
    return out


def test_every_stage_leaves_its_results(demo) -> None:
    assert (demo / "sft" / "model" / "config.json").exists()
    assert (demo / "pairs" / "prefs_train.jsonl").stat().st_size > 0
    for member in ("seed1", "seed2", "inform"):
        summary = json.loads((demo / "rm" / member / "rm_summary.json").read_text())
        (result,) = summary["members"].values()
        assert 0.0 <= result["accuracy_vs_gold"] <= 1.0
    manifest = json.loads((demo / "rm" / "ensemble.json").read_text())
    assert [m["seed"] for m in manifest["members"]] == [1, 2]
    bon = json.loads((demo / "bon" / "bon_summary.json").read_text())
    assert {"single/rm_seed1", "single/rm_seed2", "ensemble/mean", "ensemble/wco"} <= set(
        bon["curves"]
    )
    for method in METHODS:
        summary = json.loads((demo / "ppo" / method / "ppo_summary.json").read_text())
        assert summary["final_length"] > 0, method
    stages = json.loads((demo / "stages.json").read_text())["stages"]
    assert list(stages) == ["sft", "pairs", "reward_models", "optimize", "report"]
    assert all(s["seconds"] >= 0 for s in stages.values())
    assert (demo / "report.html").stat().st_size > 1000


def test_children_use_the_demo_products_not_the_cache(demo) -> None:
    """Every child config points at the demo's own SFT policy and reward models."""
    sft = str(demo / "sft" / "model")
    assert f"policy: {sft}" in (demo / "rm" / "seed1" / "config.yaml").read_text()
    ppo = (demo / "ppo" / "ensemble_uwo" / "config.yaml").read_text()
    assert f"source: {sft}" in ppo and str(demo / "rm" / "ensemble.json") in ppo
    assert (
        str(demo / "rm" / "inform" / "rm_seed1" / "model")
        in (demo / "ppo" / "inform" / "config.yaml").read_text()
    )
    gold = (demo / "ppo" / "gold" / "config.yaml").read_text()
    assert "kind: gold" in gold


def test_summary_has_every_method_and_the_stage_times(demo) -> None:
    summary = json.loads((demo / "demo_summary.json").read_text())
    assert set(summary["ppo"]) == set(METHODS)
    assert (
        summary["ppo"]["none"]["final_gold"]
        == json.loads((demo / "ppo" / "none" / "ppo_summary.json").read_text())["final_gold"]
    )
    assert set(summary["reward_models"]) == {"seed1", "seed2", "inform"}
    assert set(summary["stages"]) == {"sft", "pairs", "reward_models", "optimize", "report"}


def test_resume_reruns_only_what_did_not_finish(demo, capsys) -> None:
    """A demo killed during the optimize stage: --resume skips the finished stages and jobs."""
    ledger = demo / "stages.json"
    stages = json.loads(ledger.read_text())
    del stages["stages"]["optimize"], stages["stages"]["report"]
    ledger.write_text(json.dumps(stages))
    (demo / "ppo" / "gold" / "job_done.json").unlink()
    kept = demo / "ppo" / "none" / "job_done.json"
    before = kept.stat().st_mtime_ns
    sft_before = os.stat(demo / "sft" / "job_done.json").st_mtime_ns
    capsys.readouterr()
    assert main(["demo", "--config", "smoke", "--out", str(demo), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "sft: finished earlier, skipped" in err
    assert "reward_models: finished earlier, skipped" in err
    assert "ppo/gold done" in err and "ppo/none skipped" in err
    assert kept.stat().st_mtime_ns == before
    assert os.stat(demo / "sft" / "job_done.json").st_mtime_ns == sft_before
    assert (demo / "ppo" / "gold" / "job_done.json").exists()
    assert "optimize" in json.loads(ledger.read_text())["stages"]


def refused_demo_errors(tmp_path, capsys, override: str) -> list[str]:
    """`goodhart demo --config smoke OVERRIDE`: exit 2 with nothing written; its stderr lines."""
    out = tmp_path / "bad"
    assert main(["demo", "--config", "smoke", override, "--out", str(out)]) == 2
    assert not out.exists()
    return capsys.readouterr().err.strip().splitlines()


def test_bad_demo_config_is_one_line(tmp_path, capsys) -> None:
    err = refused_demo_errors(tmp_path, capsys, "ppo.single_rm_seed=7")
    assert err == ["goodhart demo: error: ppo.single_rm_seed=7 is not in rm.seeds"]


def test_a_bad_method_override_fails_before_any_work(tmp_path, capsys) -> None:
    err = refused_demo_errors(tmp_path, capsys, "ppo.methods={kl: [regularizer.coef=0.1]}")
    assert err == [
        "goodhart demo: error: demo run ppo/kl: regularizer.coef is set but regularizer.kind=none"
    ]


def test_extra_overrides_reach_every_ppo_run_after_the_methods_own(tmp_path) -> None:
    """`ppo.extra_overrides` varies the whole demo's PPO (e.g. the value model) in one word."""
    from goodhartlab.cli import load_command_config
    from goodhartlab.recipes.demo import DemoPaths, optimize_jobs

    extra = "ppo.extra_overrides=[ppo.value_model=separate, regularizer.coef=0.3]"
    cfg, _ = load_command_config("demo", "toy", [extra])
    jobs = {j.name: j for j in optimize_jobs(cfg, DemoPaths(tmp_path))}
    assert set(jobs) == {"bon", *(f"ppo/{m}" for m in METHODS)}
    assert jobs["bon"].overrides[-1] == "sample_ns=[1,2,4,8,16,32,64,128]"
    for method in METHODS:
        tail = jobs[f"ppo/{method}"].overrides[-2:]
        assert tail == ("ppo.value_model=separate", "regularizer.coef=0.3"), method
    assert jobs["ppo/kl_reward"].overrides[-4:-2] == ("regularizer.kind=kl", "regularizer.coef=0.2")


def test_a_bad_extra_override_fails_before_any_work(tmp_path, capsys) -> None:
    err = refused_demo_errors(tmp_path, capsys, "ppo.extra_overrides=[ppo.value_model=shared]")
    assert len(err) == 1 and err[0].startswith("goodhart demo: error: demo run ppo/none: ")
    assert "ppo.value_model" in err[0] and "shared" in err[0]
