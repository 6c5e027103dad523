"""runs.jobs: parallel, resumable goodhart jobs on tiny `toyworld --config smoke` runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from goodhartlab.cli import load_command_config
from goodhartlab.errors import ConfigError, GoodhartError
from goodhartlab.runs.jobs import (
    DONE_FILE,
    LOG_FILE,
    Job,
    JobResult,
    one_line,
    open_run_dir,
    plain,
    run_jobs,
)


def _job(root: Path, name: str, *overrides: str) -> Job:
    return Job(name, "toyworld", root / name, ("world.n_train_demos=500", *overrides), "smoke")


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory):
    """Two good jobs and one with a bad override, in two workers (one pool start for the file)."""
    root = tmp_path_factory.mktemp("jobs")
    jobs = [_job(root, "a", "world.seed=1"), _job(root, "b", "world.seed=2"),
            _job(root, "bad", "world.nope=1")]  # fmt: skip
    seen: list[JobResult] = []
    start = time.perf_counter()
    results = run_jobs(jobs, workers=2, on_result=seen.append)
    return SimpleNamespace(jobs=jobs, results=results, seen=seen, wall=time.perf_counter() - start)


def test_jobs_run_in_parallel_and_leave_done_files(first_batch) -> None:
    jobs, results, seen = first_batch.jobs, first_batch.results, first_batch.seen
    assert [r.job for r in results] == jobs  # in the order given
    assert [r.status for r in results] == ["done", "done", "failed"]
    assert sorted(r.job.name for r in seen) == ["a", "b", "bad"]  # on_result once per job
    for result in results[:2]:
        done = json.loads((result.job.out / DONE_FILE).read_text())
        assert done["status"] == "done" and done["summary"] == result.summary
        assert result.summary["teacher"]["corr_length_gold"] > 0  # a dataclass, made plain
        assert result.seconds > 0 and result.error is None
        assert "teacher: mean gold" in (result.job.out / LOG_FILE).read_text()
    assert results[0].summary != results[1].summary  # the overrides reached the jobs


def test_a_bad_job_fails_alone_with_one_line(first_batch) -> None:
    bad = first_batch.results[2]
    assert bad.summary is None and "\n" not in bad.error
    assert bad.error.startswith("override 'world.nope=1': field 'world.nope': unknown key")
    log = (bad.job.out / LOG_FILE).read_text()
    assert "Traceback" in log and "ConfigError" in log
    assert not (bad.job.out / DONE_FILE).exists()


def test_rerun_skips_finished_jobs(first_batch) -> None:
    jobs, results = first_batch.jobs, first_batch.results
    stamps = [(j.out / DONE_FILE).stat().st_mtime_ns for j in jobs[:2]]
    start = time.perf_counter()
    again = run_jobs(jobs[:2], workers=2)
    assert time.perf_counter() - start < 2.0  # no worker was started
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert [r.summary for r in again] == [r.summary for r in results[:2]]
    assert all(r.seconds == 0 for r in again)
    assert [(j.out / DONE_FILE).stat().st_mtime_ns for j in jobs[:2]] == stamps


def test_a_finished_dir_under_another_config_is_not_skipped(first_batch) -> None:
    other = Job("a", "toyworld", first_batch.jobs[0].out, ("world.seed=9",), "smoke")
    [result] = run_jobs([other])
    assert result.status == "failed" and "finished with another config" in result.error


def test_a_killed_job_is_rerun(first_batch, tmp_path, capfd) -> None:
    """Killed before its first checkpoint: config.yaml and a partial file, no job_done.json."""
    ref = first_batch.results[0]
    job = _job(tmp_path, "killed", "world.seed=1")  # the same config as job "a"
    _, text = load_command_config(job.command, job.config, job.overrides)
    job.out.mkdir()
    (job.out / "config.yaml").write_text(text)
    (job.out / "demos_train.jsonl").write_text('{"prompt": "half a')
    [killed] = run_jobs([job], workers=1)
    assert killed.status == "done" and killed.summary == ref.summary
    assert "teacher:" not in capfd.readouterr().out  # the job's output went to its log
    for name in ("demos_train.jsonl", "prefs_train.jsonl"):
        assert (job.out / name).read_text() == (ref.job.out / name).read_text()


def test_a_foreign_dir_is_refused(tmp_path) -> None:
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(GoodhartError, match="not a job dir"):
        open_run_dir(tmp_path, "seed: 0\n")
    assert (tmp_path / "results.json").exists()  # never deleted
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(GoodhartError, match="saved config differs"):
        open_run_dir(tmp_path, "seed: 0\n")


def test_bad_job_lists_are_config_errors(tmp_path) -> None:
    a = _job(tmp_path, "a")
    with pytest.raises(ConfigError, match="two jobs are named 'a'"):
        run_jobs([a, Job("a", "toyworld", tmp_path / "other")])
    with pytest.raises(ConfigError, match="share the run dir"):
        run_jobs([a, Job("b", "toyworld", a.out)])
    with pytest.raises(ConfigError, match="unknown command 'nope'"):
        run_jobs([Job("x", "nope", tmp_path / "x")])
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        run_jobs([a], workers=0)


def test_the_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(GoodhartError, match=r"pip install 'goodhartlab\[ray\]'"):
        run_jobs([_job(tmp_path, "a")], backend="ray")


def test_one_line_and_plain() -> None:
    assert one_line(ConfigError("a\n  b")) == "a b"
    assert one_line(KeyError("k")) == "KeyError: 'k'"
    assert plain({"p": Path("/x"), 1: (1.0, float("nan"))}) == {"p": "/x", "1": [1.0, None]}


_PARENT = """
import sys
from pathlib import Path
from goodhartlab.runs.jobs import Job, run_jobs
out = Path(sys.argv[1])
run_jobs([Job("slow", "toyworld", out, ("world.n_train_demos=400000",), "smoke")], workers=1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie is dead too
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_parent_stops_its_workers(tmp_path, sig) -> None:
    """SIGTERM: the parent terminates the workers. SIGKILL: the workers notice and exit."""
    out = tmp_path / "slow"
    proc = subprocess.Popen([sys.executable, "-c", _PARENT, str(out)], stderr=subprocess.PIPE)
    log, deadline = out / LOG_FILE, time.time() + 60
    while "resume:" not in (log.read_text() if log.exists() else "") and time.time() < deadline:
        time.sleep(0.05)
    worker = int(log.read_text().split(" pid ")[1].split()[0])
    proc.send_signal(sig)
    proc.wait(timeout=30)
    if sig == signal.SIGTERM:
        assert b"KeyboardInterrupt" in proc.stderr.read()
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
    assert not (out / DONE_FILE).exists()
