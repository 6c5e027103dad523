"""The process backend of `runs.jobs.run_jobs`: a reused pool of spawned worker processes.

Why a reused pool instead of one subprocess per job (benchmarks/ppo_table.py did that):
importing torch + transformers costs seconds per process; a worker pays it once and then runs
job after job. Why `spawn`: a forked copy of a parent that already holds torch threads (or a
rich live display) is fragile, and spawn behaves the same on Linux and macOS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from goodhartlab.runs.jobs import Job, JobResult, execute, failed_result, one_line, prepare_worker


def run_in_processes(jobs: list[Job], workers: int) -> Iterator[tuple[int, JobResult]]:
    """Yield (index, result) as jobs finish in a spawn-context process pool of `workers`."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(os.getpid(),),
    )
    futures = {pool.submit(execute, job): k for k, job in enumerate(jobs)}
    clean = False
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                k = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    result = failed_result(jobs[k], "worker process died (killed or out of memory); "
                                     "run again to resume the job")  # fmt: skip
                except BaseException as exc:  # an exception the worker could not catch
                    result = failed_result(jobs[k], one_line(exc))
                yield k, result
        clean = True
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _terminate(pool)


def _terminate(pool: Any) -> None:
    """Stop the workers now (Ctrl-C, SIGTERM, or an error in the caller's on_result)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # taken before shutdown
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def init_worker(parent_pid: int | None = None) -> None:
    """Once per worker: one torch thread, quiet hub bars, Ctrl-C left to the parent, and exit if
    the parent dies (a SIGKILLed sweep must not leave workers writing into job dirs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_worker()
    if parent_pid is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.2)
    os._exit(1)
