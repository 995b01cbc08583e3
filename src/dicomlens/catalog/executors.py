"""Where the per-file work of an index runs: a local process pool, or a Dask cluster.

Both run the same picklable function on the same tasks (runs of consecutive files)
and hand back each task's result as it completes, so that the local and the
distributed paths cannot drift. A task that fails on its worker (the worker
process died, say) comes back as the exception, for the caller to deal with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

from dicomlens.errors import UsageError

__all__ = [
    "DASK_VARIABLE",
    "PARTITION_SIZE",
    "Executor",
    "chunked",
    "executor",
    "run_isolating",
    "stopped_reason",
]

DASK_VARIABLE: Final = "DICOMLENS_DASK_SCHEDULER"
PARTITION_SIZE: Final = 2000
"""Files per task (and per Parquet part) unless asked otherwise: a few seconds of work."""

_Task = TypeVar("_Task")


def chunked(paths: Sequence[str], size: int, workers: int) -> list[list[str]]:
    """Runs of consecutive ``paths`` (the files of one series stay together): at most
    ``size`` each, and enough of them that every worker gets some work.

    >>> [len(run) for run in chunked([str(n) for n in range(10)], 4, 1)]
    [4, 4, 2]
    >>> [len(run) for run in chunked([str(n) for n in range(10)], 100, 2)]
    [5, 5]
    """
    if not paths:
        return []
    step = max(1, min(size, math.ceil(len(paths) / max(1, workers))))
    return [list(paths[start : start + step]) for start in range(0, len(paths), step)]


class Executor:
    """Runs ``function(task)`` for many tasks; results in completion order."""

    workers: int

    def run(
        self, function: Callable[[_Task], Any], tasks: Sequence[_Task]
    ) -> Iterator[tuple[_Task, Any]]:
        """Each task with its result, or with the exception that stopped it."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the pool or the cluster connection."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LocalExecutor(Executor):
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(
        self, function: Callable[[_Task], Any], tasks: Sequence[_Task]
    ) -> Iterator[tuple[_Task, Any]]:
        if not tasks:
            return
        if self.workers < 2:
            for task in tasks:
                try:
                    yield task, function(task)
                except Exception as exc:  # as a worker would report it
                    yield task, exc
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks))) as pool:
            futures = {pool.submit(function, task): task for task in tasks}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # BrokenProcessPool: a process died, the rest fail
                    yield futures[future], exc


class _DaskExecutor(Executor):
    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(
                "--dask needs Dask's distributed scheduler: pip install 'dicomlens[dask]'"
            ) from None
        try:
            self.client = Client(address, timeout="30s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"{address}: cannot reach the Dask scheduler ({exc})") from None
        self.workers = max(1, sum(self.client.nthreads().values()))

    def run(
        self, function: Callable[[_Task], Any], tasks: Sequence[_Task]
    ) -> Iterator[tuple[_Task, Any]]:
        from distributed import as_completed

        # pure=False: the same files read twice (a re-run) are read again, not looked up
        futures = {self.client.submit(function, task, pure=False): task for task in tasks}
        for future in as_completed(list(futures), loop=self.client.loop):
            task = futures.pop(future)
            try:
                yield task, future.result()
            except Exception as exc:  # KilledWorker, or the task's own failure
                yield task, exc
            finally:
                future.release()

    def close(self) -> None:
        self.client.close()


def executor(dask: str | None = None, *, workers: int | None = None) -> Executor:
    """The local pool (``workers`` processes, default one per core), or the Dask cluster
    whose scheduler is at ``dask`` (or ``$DICOMLENS_DASK_SCHEDULER``).

    >>> with executor(workers=1) as pool:
    ...     sorted(result for _, result in pool.run(abs, [-2, 1]))
    [1, 2]
    """
    address = dask or os.environ.get(DASK_VARIABLE)
    if address:
        return _DaskExecutor(address)
    return _LocalExecutor(workers or os.cpu_count() or 1)


def run_isolating(
    pool: Executor,
    function: Callable[[_Task], Any],
    tasks: Sequence[_Task],
    split: Callable[[_Task], list[_Task]],
) -> Iterator[tuple[_Task, Any]]:
    """Like :meth:`Executor.run`, but a task that fails is run again as one task per file
    (``split``), so that one file that stops its worker costs only itself. A one-file
    task that fails again (perhaps only for sharing a worker with the culprit) gets a
    last run alone; failing then, it comes back with its exception, to be recorded."""
    failed = []
    for task, result in pool.run(function, tasks):
        if isinstance(result, Exception):
            failed.append(task)
        else:
            yield task, result
    suspects = []
    singles = [one for task in failed for one in split(task)]
    for single, result in pool.run(function, singles):
        if isinstance(result, Exception):
            suspects.append(single)
        else:
            yield single, result
    for task in suspects:
        yield from pool.run(function, [task])


def stopped_reason(error: Exception) -> str:
    """The reason recorded for a file whose worker stopped while reading it, twice."""
    return f"the worker reading it stopped ({type(error).__name__}: {error})"
