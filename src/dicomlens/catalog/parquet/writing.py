"""Index folders into a Parquet catalog: incrementally, on local processes or a Dask cluster.

The client lists the tree and compares each file's (size, mtime_ns, inode) with the
dataset; runs of new and changed files become tasks. Each task runs
:func:`~dicomlens.catalog.file_rows` on its worker and writes its own part; the
client only moves the parts into place and keeps the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dicomlens.catalog.executors import (
    PARTITION_SIZE,
    Executor,
    chunked,
    executor,
    run_isolating,
    stopped_reason,
)
from dicomlens.catalog.indexing import IndexReport, listed_files
from dicomlens.catalog.parquet.dataset import ParquetDataset
from dicomlens.catalog.parquet.format import Part, write_part
from dicomlens.catalog.schema import ROWS_VERSION, FileRow
from dicomlens.errors import UsageError

__all__ = ["PartTask", "index_parquet", "read_part"]


@dataclass(frozen=True)
class PartTask:
    """One run of files for one worker: read them, write part ``name`` under ``incoming``."""

    incoming: str
    name: str
    first: int  # the ordinal of the first file
    paths: tuple[str, ...]


@dataclass
class PartResult:
    """What a worker wrote: the part's name, and what the report needs."""

    name: str
    counts: dict[str, int]
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def read_part(task: PartTask) -> PartResult:
    """Read the task's files (headers only, in this process) and write their part."""
    from dicomlens.catalog.rows import file_rows

    part = Part(task.name)
    result = PartResult(task.name, {})
    for ordinal, row in enumerate(file_rows(task.paths), start=task.first):
        part.add(row, ordinal)
        if row.kind == "error":
            result.errors.append((row.path, row.reason))
        elif row.kind == "instance" and row.reason:
            result.warnings.append((row.path, row.reason))
    result.counts = write_part(part, Path(task.incoming))
    return result


def index_parquet(
    paths: Iterable[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    *,
    dask: str | None = None,
    workers: int | None = None,
    partition_size: int = PARTITION_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Bring the Parquet catalog in ``folder`` up to date with the files under ``paths``.

    As :func:`dicomlens.catalog.index` does for SQLite: unchanged files are not read,
    changed ones are read again (their old rows get tombstones), deleted ones get
    tombstones. The reading runs on the Dask cluster whose scheduler is at ``dask``
    (the files and ``folder`` must be at the same paths on its workers), else on
    ``workers`` local processes.
    """
    from dicomlens.catalog.parquet.reading import ParquetCatalog

    roots = [Path(p).resolve() for p in paths]
    if not roots:
        raise UsageError("nothing to index: give at least one folder or file")
    if partition_size < 1:
        raise UsageError(f"--partition-size must be at least 1, not {partition_size}")
    report = IndexReport()
    dataset = ParquetDataset(folder)
    # connect first: a wrong scheduler address is said before any work, even with nothing to read
    with executor(dask, workers=workers) as pool, dataset.writing():
        known = {}
        if dataset.parts:
            with ParquetCatalog(dataset.folder) as current:
                known = current.fingerprints(roots)
        earlier = {p["name"] for p in dataset.parts if p.get("rows_version") != ROWS_VERSION}
        todo: list[str] = []
        listed: list[FileRow] = []
        seen: set[str] = set()
        own = str(dataset.folder.resolve()) + "/"
        for name, current_print, problem in listed_files(roots):
            if name.startswith(own):
                continue  # never index the catalog itself
            if current_print is None and not problem:
                continue  # a link to a file indexed under its own path
            seen.add(name)
            recorded = known.get(name)
            if current_print is None:  # reported every run, recorded once
                report.errors.append((name, problem))
                if recorded is None or recorded[0] != (0, 0, 0):
                    listed.append(FileRow(name, 0, 0, 0, "error", problem))
            elif recorded is None:
                todo.append(name)
            elif recorded[1] in earlier:  # a row made by an earlier version: read again
                report.refreshed += 1
                todo.append(name)
            elif recorded[0] == current_print:
                report.unchanged += 1
            else:
                todo.append(name)
        changed = set(todo)
        buried = [(p, part) for p, (_, part) in known.items() if p not in seen or p in changed]
        buried += [(row.path, known[row.path][1]) for row in listed if row.path in known]
        report.removed = sum(1 for p in known if p not in seen)
        _commit_client_part(dataset, listed, buried)
        _read_into(dataset, pool, todo, report, partition_size, progress)
    return report


def _commit_client_part(
    dataset: ParquetDataset, rows: list[FileRow], buried: list[tuple[str, str]]
) -> None:
    """The rows the client makes itself (tombstones first, so that a file changed or
    gone is never listed twice; files it could not examine)."""
    if not rows and not buried:
        return
    name, incoming = dataset.new_part()
    part = Part(name)
    part.bury(buried)
    first = dataset.reserve(len(rows))
    for ordinal, row in enumerate(rows, start=first):
        part.add(row, ordinal)
    write_part(part, incoming)
    dataset.commit(name)
    dataset.save()


def _read_into(
    dataset: ParquetDataset,
    pool: Executor,
    todo: list[str],
    report: IndexReport,
    partition_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    if not todo:
        return
    first = dataset.reserve(len(todo))
    tasks = []
    for run in chunked(todo, partition_size, pool.workers):
        name, incoming = dataset.new_part()
        tasks.append(PartTask(str(incoming), name, first, tuple(run)))
        first += len(run)

    def one_per_file(task: PartTask) -> list[PartTask]:
        singles = []
        for number, path in enumerate(task.paths):
            name, incoming = dataset.new_part()
            singles.append(PartTask(str(incoming), name, task.first + number, (path,)))
        return singles

    stopped: list[FileRow] = []
    for task, result in run_isolating(pool, read_part, tasks, one_per_file):
        if isinstance(result, Exception):
            reason = stopped_reason(result)
            stopped += [FileRow(path, 0, 0, 0, "error", reason) for path in task.paths]
            report.errors += [(path, reason) for path in task.paths]
        else:
            dataset.commit(result.name)
            report.instances += result.counts["instances"]
            report.others += result.counts["others"]
            report.errors += result.errors
            report.warnings += result.warnings
        report.read += len(task.paths)
        if progress is not None:
            progress(report.read, len(todo))
    if stopped:
        _commit_client_part(dataset, stopped, [])
