"""Independent goodhart runs as resumable jobs in parallel worker processes (DESIGN.md §8).

A `Job` is one CLI command (`goodhart <command> --config C overrides --out OUT`) run in-process
inside a worker: config loaded exactly as the CLI loads it, the run dir prepared, `recipe.run`.
A finished job leaves `OUT/job_done.json` (status, seconds, summary) and is never run again; a
job whose OUT has a config.yaml but no job_done.json was killed and is resumed from its last
checkpoint. Each job's stdout/stderr go to `OUT/job.log`, so parallel progress bars and tables
do not interleave on the user's terminal.

Backends: "process" (`runs.process_jobs`) and "ray" (`runs.ray_jobs`, imported only when
asked). Both run the same `execute(job)`, so a job gives the same files and summary on either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

from goodhartlab.errors import ConfigError, GoodhartError
from goodhartlab.runs.atomic import atomic_write_json, atomic_write_text, json_safe
from goodhartlab.runs.rundir import CONFIG_FILE, RunDir

DONE_FILE = "job_done.json"
LOG_FILE = "job.log"
RUNNER_FILES = frozenset({LOG_FILE})  # files the runner itself may leave in a job dir
Backend = Literal["process", "ray"]
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Job:
    """One goodhart run: `goodhart <command> --config <config> <overrides> --out <out>`."""

    name: str  # unique label, e.g. "ppo/kl-0.1-seed1"
    command: str  # a command of cli.COMMANDS: "train-rm", "ppo", "bon", ...
    out: Path  # the job's run dir
    overrides: tuple[str, ...] = ()  # "key.sub=value", as on the command line
    config: str = "toy"  # preset name or YAML path


@dataclass
class JobResult:
    job: Job
    status: Status  # skipped = finished by an earlier call
    seconds: float  # wall time of this execution (0 when skipped)
    summary: dict | None  # what the recipe's run() returned, as plain JSON data
    error: str | None  # one line, for failed


OnResult = Callable[[JobResult], None]


class JobsFailed(GoodhartError):
    """Some jobs failed after the others finished; the message says how many and where the
    logs are. Rerunning (`--resume`) retries only those."""


# ---------------------------------------------------------------- the parent side


def run_jobs(
    jobs: Iterable[Job],
    workers: int = 2,
    backend: Backend = "process",
    on_result: OnResult | None = None,
) -> list[JobResult]:
    """Run `jobs` (`workers` at a time), skipping finished ones; results in the order of `jobs`.

    `on_result` is called in this process as each job finishes (skipped ones first, at once).
    A failed job does not stop the others. `workers=1` still runs in one worker process (not
    in this one), so a job's output goes to its job.log and never to this terminal.
    Ctrl-C or SIGTERM terminates the workers and raises KeyboardInterrupt here; the killed jobs
    resume on the next call.
    """
    jobs = list(jobs)
    check_jobs(jobs, workers, backend)
    results: list[JobResult | None] = [None] * len(jobs)

    def record(index: int, result: JobResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(result)

    todo = []
    for index, job in enumerate(jobs):
        prior = finished_result(job)
        if prior is not None:
            record(index, prior)
        else:
            todo.append(index)
    if todo:
        portable = [portable_job(jobs[i]) for i in todo]
        with (
            _terminate_on_sigterm(),
            contextlib.closing(_backend(backend)(portable, workers)) as it,
        ):
            for k, result in it:
                record(todo[k], dataclasses.replace(result, job=jobs[todo[k]]))
    return [r for r in results if r is not None]


def raise_for_failures(results: Sequence[JobResult]) -> None:
    """Raise JobsFailed naming the failed jobs' count, the first error and their logs."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return
    logs = ", ".join(str(Path(r.job.out) / LOG_FILE) for r in failed[:3])
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    raise JobsFailed(
        f"{len(failed)} of {len(results)} jobs failed (first: {failed[0].job.name}: "
        f"{failed[0].error}); logs: {logs}{more}; fix and rerun with --resume to retry them"
    )


def check_job_configs(jobs: Sequence[Job], label: str = "job '{name}'") -> None:
    """Every job's config loads and passes its recipe's own checks, before any job runs.

    Why: a typo in one job of a sweep or a demo would otherwise surface minutes later inside a
    worker; `label` (with `{name}`) says which job in the one-line error.
    """
    from goodhartlab.cli import check_command_config, load_command_config

    for job in jobs:
        try:
            cfg, _ = load_command_config(job.command, job.config, job.overrides)
            check_command_config(job.command, cfg)
        except GoodhartError as exc:
            raise ConfigError(f"{label.format(name=job.name)}: {exc}") from exc


def check_jobs(jobs: Sequence[Job], workers: int, backend: str) -> None:
    """Unknown commands, duplicate names or run dirs are config errors, found before any work."""
    from goodhartlab.cli import COMMANDS

    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if backend not in ("process", "ray"):
        raise ConfigError(f"bad backend '{backend}' (allowed: process, ray)")
    names: set[str] = set()
    outs: dict[Path, str] = {}
    for job in jobs:
        if job.command not in COMMANDS:
            allowed = ", ".join(sorted(COMMANDS))
            raise ConfigError(f"job '{job.name}': unknown command '{job.command}' ({allowed})")
        if job.name in names:
            raise ConfigError(f"two jobs are named '{job.name}'")
        out = Path(job.out).resolve()
        if out in outs:
            raise ConfigError(f"jobs '{outs[out]}' and '{job.name}' share the run dir {job.out}")
        names.add(job.name)
        outs[out] = job.name


def finished_result(job: Job) -> JobResult | None:
    """The `skipped` result of a job whose job_done.json exists, else None.

    A job finished under another config (same run dir, other overrides) is not this job: its
    result is `failed` with a message, rather than someone else's numbers passed off as these.
    """
    done = read_done(Path(job.out))
    if done is None:
        return None
    saved = Path(job.out) / CONFIG_FILE
    text = _config_text(job)
    if text is not None and saved.is_file() and saved.read_text(encoding="utf-8") != text:
        return failed_result(job, f"{job.out}: finished with another config; remove it to rerun")
    return JobResult(job, "skipped", 0.0, done.get("summary"), None)


def _config_text(job: Job) -> str | None:
    """The resolved config.yaml text of a job, or None if its config does not load."""
    from goodhartlab.cli import load_command_config

    try:
        return load_command_config(job.command, job.config, job.overrides)[1]
    except GoodhartError:
        return None


def read_done(out: Path) -> dict | None:
    path = out / DONE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # written atomically, so only a hand-edited file gets here: run it again


def portable_job(job: Job) -> Job:
    """The job with absolute paths, so a worker with another working directory finds them."""
    config = job.config
    if Path(config).is_file():
        config = str(Path(config).resolve())
    return dataclasses.replace(job, out=Path(job.out).resolve(), config=config)


def _backend(name: str) -> Callable[[list[Job], int], Iterator[tuple[int, JobResult]]]:
    if name == "ray":
        from goodhartlab.runs import ray_jobs

        return ray_jobs.run_in_ray
    from goodhartlab.runs import process_jobs

    return process_jobs.run_in_processes


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while jobs run, so the same cleanup stops the workers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def failed_result(job: Job, error: str, seconds: float = 0.0) -> JobResult:
    return JobResult(job, "failed", seconds, None, error)


# ---------------------------------------------------------------- the worker side


def prepare_worker() -> None:
    """What the CLI sets before a command: one torch thread, no hub progress bars."""
    from goodhartlab.cli import quiet_libraries, set_cpu_threads

    quiet_libraries()
    set_cpu_threads()


def execute(job: Job) -> JobResult:
    """Run one job in this process, its output going to OUT/job.log; never raises for a job
    that fails (the traceback goes to the log, a one-line error into the result)."""
    out = Path(job.out)
    prior = finished_result(job)
    if prior is not None:
        return prior
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with output_to(out / LOG_FILE):
        print(f"=== goodhart {job.command} [{job.name}] pid {os.getpid()} "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)  # fmt: skip
        try:
            summary = plain(run_job(job))
        except Exception as exc:
            traceback.print_exc()
            return failed_result(job, one_line(exc), time.perf_counter() - start)
        seconds = time.perf_counter() - start
        record = {"name": job.name, "command": job.command, "status": "done",
                  "seconds": round(seconds, 3), "summary": summary}  # fmt: skip
        atomic_write_json(out / DONE_FILE, record)
        print(f"=== done in {seconds:.1f} s", flush=True)
    return JobResult(job, "done", seconds, summary, None)


def run_job(job: Job) -> Any:
    """What `goodhart <command>` does, minus argument parsing: config, run dir, recipe.run."""
    from goodhartlab import cli

    cfg, text = cli.load_command_config(job.command, job.config, job.overrides)
    cli.set_cpu_threads()
    run_dir, resume = open_run_dir(Path(job.out), text)
    print(f"resume: {resume}", flush=True)
    recipe = importlib.import_module(cli.COMMANDS[job.command].module)
    return recipe.run(cfg, run_dir, resume=resume)


def open_run_dir(out: Path, config_text: str) -> tuple[RunDir, bool]:
    """(run dir, resume) for a job that is not finished.

    - config.yaml and a checkpoint: killed mid-run, resume from the checkpoint.
    - config.yaml (equal to this job's) but no checkpoint anywhere: killed before its first
      checkpoint. Nothing is worth resuming and a resumed recipe would append to the partial
      metrics.jsonl, so the dir is cleared (job.log kept) and the job starts afresh.
    - no config.yaml: a fresh start; only the runner's own files may be there already.
    A config.yaml that differs from this job's is an error (RunDir.prepare says so).
    """
    if (out / CONFIG_FILE).is_file():
        run = RunDir.prepare(out, config_text, resume=True)
        if _has_checkpoint(out):
            return run, True
        _clear(out, keep=RUNNER_FILES | {CONFIG_FILE})
        return run, False
    others = sorted(p.name for p in out.iterdir() if p.name not in RUNNER_FILES)
    if others:
        raise GoodhartError(
            f"{out}: not a job dir of this runner (no {CONFIG_FILE}, holds {', '.join(others[:3])}); "
            "remove it or choose another output dir"
        )
    atomic_write_text(out / CONFIG_FILE, config_text)  # what RunDir.prepare writes on a fresh dir
    return RunDir(out), False


def _has_checkpoint(out: Path) -> bool:
    """A complete checkpoint anywhere in the run (train-rm keeps them per member): a `latest`
    marker naming an existing dir. A half-written one (a temp dir) does not count."""
    for marker in out.glob("**/checkpoints/latest"):
        if (marker.parent / marker.read_text(encoding="utf-8").strip()).is_dir():
            return True
    return False


def _clear(out: Path, keep: frozenset[str]) -> None:
    for path in out.iterdir():
        if path.name in keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 (so print, rich, logging and C code alike) at `log`."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def one_line(exc: BaseException) -> str:
    """A GoodhartError's message, or `Type: message`, on one line (at most 500 characters)."""
    text = str(exc) if isinstance(exc, GoodhartError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


def plain(value: Any) -> Any:
    """Plain JSON data (dataclasses -> dicts, paths -> text, NaN -> null, keys -> text).

    Why a JSON round trip: a fresh result and one read back from job_done.json must be equal.
    """

    def convert(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, PurePath):
            return str(v)
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [convert(x) for x in v]
        return v

    return json.loads(json.dumps(json_safe(convert(value)), allow_nan=False))
