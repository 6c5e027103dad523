"""The Ray backend of `runs.jobs.run_jobs`: each job is one Ray task running `jobs.execute`.

Imported only for `backend="ray"`, so Ray stays an optional extra (`goodhartlab[ray]`).
Connects to `$RAY_ADDRESS` when set (a cluster started with `ray start --head`; job dirs must be
on a filesystem every node sees), else starts a local cluster of `workers` CPUs. Each task asks
for one CPU: the toy models are single-threaded by design (see `cli.set_cpu_threads`).
Why the same `execute` as the process backend: a job must give the same files and summary
wherever it runs, which is what the sweep tests compare.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from goodhartlab.errors import GoodhartError
from goodhartlab.runs.jobs import Job, JobResult, execute, failed_result, one_line, prepare_worker

INSTALL_HINT = "pip install 'goodhartlab[ray]'"


def import_ray() -> Any:
    """`ray`, or one GoodhartError line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise GoodhartError(
            f"backend 'ray' needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def run_in_ray(jobs: list[Job], workers: int) -> Iterator[tuple[int, JobResult]]:
    """Yield (index, result) as the jobs' Ray tasks finish; cancel the rest if interrupted."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=workers, include_dashboard=False)
    task = ray.remote(num_cpus=1, max_retries=0)(execute_task)
    refs = {task.remote(job): k for k, job in enumerate(jobs)}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died, or Ray itself failed
                    result = failed_result(jobs[refs[ref]], f"ray: {one_line(exc)}")
                yield refs[ref], result
    finally:
        for ref in pending:  # empty unless interrupted
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def execute_task(job: Job) -> JobResult:
    """Body of the Ray task: the process backend's worker setup, then the job."""
    prepare_worker()
    return execute(job)
