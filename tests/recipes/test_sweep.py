"""`goodhart sweep`: 2 regularizers x 2 coefficients x 2 seeds of `ppo --config smoke`.

The process-backend sweep is SIGKILLed after its first job finishes and resumed; the Ray sweep
runs uninterrupted on a local 2-CPU cluster. Their tables must be equal: the same jobs give the
same numbers on either backend, and killed jobs resume to the numbers of uninterrupted ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goodhartlab.cli import main
from goodhartlab.config import load_config, resolve_config_path
from goodhartlab.config.sweep_schema import SweepConfig
from goodhartlab.errors import ConfigError
from goodhartlab.recipes import sweep
from goodhartlab.runs import RunDir
from goodhartlab.runs.jobs import DONE_FILE, JobsFailed

SMOKE = resolve_config_path("sweep", "smoke")
NAMES = [f"{m}-{c}/seed{s}" for m in ("kl_reward", "sqrt_chi2_loss") for c in (0.05, 0.2)
         for s in (0, 1)]  # fmt: skip


def _args(out: Path, models: Path, *extra: str) -> list[str]:
    job_overrides = [
        "device=cpu", f"policy.source={models / 'policy'}",
        f"reward.reward_models=[{models / 'rm'}]", "generation.max_new_tokens=8",
        "eval.n_prompts=16", "ppo.prompts_per_iteration=8", "ppo.lr=1e-3",
    ]  # fmt: skip
    return ["sweep", "--config", "smoke", "--out", str(out),
            f"overrides={json.dumps(job_overrides)}", *extra]  # fmt: skip


def _done_files(out: Path) -> dict[str, int]:
    return {
        str(p.parent.relative_to(out / "jobs")): p.stat().st_mtime_ns
        for p in (out / "jobs").glob(f"*/*/{DONE_FILE}")
    }


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return not stat.read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, tiny_ppo_models):
    """A process-backend sweep SIGKILLed once its first job is done, then resumed."""
    out = tmp_path_factory.mktemp("sweep") / "process"
    cmd = [sys.executable, "-m", "goodhartlab", *_args(out, tiny_ppo_models)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not _done_files(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert workers and not any(_alive(w) for w in workers), "orphaned workers kept running"
    before = _done_files(out)
    start = time.perf_counter()
    code = main([*_args(out, tiny_ppo_models), "--resume"])
    wall = time.perf_counter() - start
    summary = json.loads((out / sweep.SUMMARY_FILE).read_text())
    assert code == 0, [(j["name"], j["error"]) for j in summary["jobs"] if j["error"]]
    return out, before, summary, wall


def test_a_killed_sweep_resumes_only_unfinished_jobs(killed_and_resumed) -> None:
    out, before, summary, _ = killed_and_resumed
    assert 1 <= len(before) < len(NAMES)
    status = {j["name"]: j["status"] for j in summary["jobs"]}
    assert [j["name"] for j in summary["jobs"]] == NAMES
    assert {n for n, s in status.items() if s == "skipped"} == set(before)
    assert {n for n, s in status.items() if s == "done"} == set(NAMES) - set(before)
    after = _done_files(out)
    assert {n: after[n] for n in before} == before  # finished jobs were not touched
    assert set(after) == set(NAMES)
    resumed = [n for n in NAMES if n not in before and "resume: True" in
               (out / "jobs" / n / "job.log").read_text()]  # fmt: skip
    print(f"jobs resumed from a checkpoint: {resumed}")


def test_summary_table_and_plot(killed_and_resumed) -> None:
    out, _, summary, _ = killed_and_resumed
    assert summary["command"] == "ppo"
    job = summary["jobs"][0]
    assert job["out"] == "jobs/kl_reward-0.05/seed0" and job["seed"] == 0
    assert job["params"] == {"regularizer.kind": "kl", "regularizer.placement": "reward",
                             "regularizer.coef": 0.05}  # fmt: skip
    assert job["seconds"] > 0 and "final_gold" in job["summary"]
    assert len(summary["table"]) == 4
    row = summary["table"][0]
    assert row["n"] == 2 and row["params"] == job["params"]
    gold = row["metrics"]["final_gold"]
    values = [j["summary"]["final_gold"] for j in summary["jobs"][:2]]
    assert gold["mean"] == pytest.approx(sum(values) / 2)
    assert gold["lo"] <= gold["mean"] <= gold["hi"]
    assert "peak_step" in row["metrics"] and "fit.alpha" in row["metrics"]  # nested: dotted
    assert (out / "sweep_final_gold.png").stat().st_size > 1000


def test_rerunning_without_resume_says_what_to_do(killed_and_resumed, tiny_ppo_models, capsys):
    out, _, _, _ = killed_and_resumed
    assert main(_args(out, tiny_ppo_models)) != 0
    assert "pass --resume" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def test_the_ray_backend_gives_the_same_table(
    killed_and_resumed, ray_cluster, tiny_ppo_models, tmp_path
) -> None:
    out = tmp_path / "ray"
    start = time.perf_counter()
    assert main(_args(out, tiny_ppo_models, "backend=ray")) == 0
    wall = time.perf_counter() - start
    summary = json.loads((out / sweep.SUMMARY_FILE).read_text())
    assert [j["status"] for j in summary["jobs"]] == ["done"] * len(NAMES)
    assert summary["table"] == killed_and_resumed[2]["table"]
    print(f"ray sweep {wall:.1f} s; resumed process sweep {killed_and_resumed[3]:.1f} s")


def test_failed_jobs_are_listed_and_raise_after_the_rest(tmp_path) -> None:
    """toyworld jobs (no regularizers): a size too big for memory is valid config and fails at
    run time (a negative one is caught by the config ranges, before any job starts)."""
    huge = 10**13
    overrides = ["regularizers=[]", "command=toyworld", "seed_key=world.seed", "seeds=[0, 1]",
                 f"grid={{world.n_train_demos: [300, {huge}]}}"]  # fmt: skip
    cfg = load_config(SweepConfig, SMOKE, overrides)
    run_dir = RunDir.prepare(tmp_path / "s", "sweep\n")
    with pytest.raises(JobsFailed, match=rf"^2 of 4 jobs failed \(first: n_train_demos-{huge}/seed0: "
                       r"MemoryError: Unable to allocate .*\); logs: "):  # fmt: skip
        sweep.run(cfg, run_dir)
    summary = json.loads((run_dir.path / sweep.SUMMARY_FILE).read_text())
    status = {j["name"]: (j["status"], j["error"]) for j in summary["jobs"]}
    assert status["n_train_demos-300/seed1"] == ("done", None)
    assert status[f"n_train_demos-{huge}/seed1"][0] == "failed"
    ok, bad = summary["table"]
    assert ok["n"] == 2 and "teacher.gold_mean" in ok["metrics"]
    assert bad["n"] == 0 and bad["metrics"] == {}


def test_bad_job_configs_fail_before_any_work(tmp_path) -> None:
    cfg = load_config(SweepConfig, SMOKE, ['overrides=["ppo.nope=1"]'])
    run_dir = RunDir.prepare(tmp_path / "s", "sweep\n")
    with pytest.raises(
        ConfigError, match=re.escape("sweep job 'kl_reward-0.05/seed0': override 'ppo.nope=1'")
    ):
        sweep.run(cfg, run_dir)
    assert not (run_dir.path / "jobs").exists()
    cfg = load_config(
        SweepConfig, None, ["regularizers=[{kind: chi2, placement: reward, coefs: [1]}]"]
    )
    with pytest.raises(
        ConfigError, match=re.escape("set regularizer.placement=loss")
    ):  # ppo's own check
        sweep.check_config(cfg, sweep.plan(cfg, run_dir))


def test_cells_cross_regularizers_with_the_grid() -> None:
    overrides = ["regularizers=[{kind: none}, {kind: chi2, coefs: [0.5]}]",
                 "grid={ppo.lr: [1e-4, 0.001], reward.kind: [gold]}", "seeds=[3]"]  # fmt: skip
    cfg = load_config(SweepConfig, None, overrides)
    cells = sweep.cells(cfg)
    assert [c.label for c in cells] == [
        "none_lr-0.0001_kind-gold", "none_lr-0.001_kind-gold",
        "chi2_loss-0.5_lr-0.0001_kind-gold", "chi2_loss-0.5_lr-0.001_kind-gold",
    ]  # fmt: skip
    assert cells[2].params == {
        "regularizer.kind": "chi2",
        "regularizer.placement": "loss",
        "regularizer.coef": 0.5,
        "ppo.lr": 1e-4,
        "reward.kind": "gold",
    }
    from goodhartlab.cli import load_command_config

    job_cfg, _ = load_command_config(
        "ppo", "toy", sweep.plan(cfg, RunDir(Path("R")))[2].job.overrides
    )
    assert (job_cfg.regularizer.kind, job_cfg.regularizer.placement) == ("chi2", "loss")
    assert (job_cfg.regularizer.coef, job_cfg.ppo.lr, job_cfg.seed) == (0.5, 1e-4, 3)


def test_the_t_interval_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    values = [1.0, 2.5, 2.0, 4.0, 3.5, 0.5, 2.0, 1.0]
    for n in range(2, len(values) + 1):
        x = values[:n]
        mean = sum(x) / n
        lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=stats.sem(x))
        got = sweep.mean_interval(x)
        assert got["mean"] == pytest.approx(mean)
        assert got["hi"] - got["mean"] == pytest.approx(hi - mean, rel=2e-3)  # exact for n <= 3
        assert got["mean"] - got["lo"] == pytest.approx(mean - lo, rel=2e-3)
    assert sweep.mean_interval([1.5]) == {"mean": 1.5, "lo": None, "hi": None}
