"""Index folders into a catalog: incrementally, in parallel, in committed batches."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dicomlens.catalog.executors import (
    DASK_VARIABLE,
    PARTITION_SIZE,
    Executor,
    chunked,
    executor,
    run_isolating,
    stopped_reason,
)
from dicomlens.catalog.schema import FileRow
from dicomlens.catalog.store import Catalog, catalog_files
from dicomlens.errors import NOT_REGULAR, UsageError

__all__ = ["Fingerprint", "IndexReport", "index", "listed_files", "rows_of"]

BATCH: Final = 500  # files per transaction: a kill loses at most this much work


@dataclass
class IndexReport:
    """What one run of :func:`index` did."""

    read: int = 0
    unchanged: int = 0
    refreshed: int = 0
    """Files read again because an earlier version made their rows
    (:data:`~dicomlens.catalog.schema.ROWS_VERSION`): those lack what this one extracts."""
    removed: int = 0
    instances: int = 0
    others: int = 0  # not DICOM, or a DICOMDIR
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """Instances indexed with elements kept as raw bytes (they did not decode), and why."""


def index(
    paths: Iterable[str | os.PathLike[str]],
    catalog: str | os.PathLike[str],
    *,
    workers: int | None = None,
    dask: str | None = None,
    partition_size: int = PARTITION_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Bring ``catalog`` up to date with the files under ``paths``.

    Files whose size, modification time and inode are as recorded are not read;
    new and changed ones are (headers only, in ``workers`` processes, default one
    per core); files gone from disk are forgotten. Results are committed every
    500 files, so a killed run keeps its work and the next run goes on from there.
    Files that cannot be read are recorded with the reason (``errors`` view).
    With ``dask`` (a scheduler's address), the headers are read on that Dask cluster
    in tasks of ``partition_size`` files, and this process writes the catalog.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "catalog.db"
    >>> index([get_testdata_file("CT_small.dcm")], db).instances
    1
    >>> index([get_testdata_file("CT_small.dcm")], db).unchanged
    1
    """
    roots = [Path(p).resolve() for p in paths]
    if not roots:
        raise UsageError("nothing to index: give at least one folder or file")
    report = IndexReport()
    # connect first: a wrong scheduler address is said before any work, even with nothing to read
    cluster = executor(dask) if dask or os.environ.get(DASK_VARIABLE) else contextlib.nullcontext()
    with cluster as pool, Catalog(catalog) as db, db.writer():
        own = {str(file.resolve()) for file in catalog_files(db.path)}  # never index itself
        known = db.fingerprints(roots)
        todo: list[str] = []
        listed: list[FileRow] = []
        seen: set[str] = set()
        for name, current, problem in listed_files(roots):
            if name in own:
                continue
            if current is None:
                if problem:
                    listed.append(FileRow(name, 0, 0, 0, "error", problem))
                    seen.add(name)
                continue  # a link to a file indexed under its own path
            seen.add(name)
            recorded = known.get(name, ())  # (): new; None: recorded by an earlier version
            if recorded == current:
                report.unchanged += 1
            else:
                report.refreshed += recorded is None
                todo.append(name)
        gone = [path for path in known if path not in seen]
        if gone:
            db.remove(gone)
            report.removed = len(gone)
        if listed:
            db.write(listed)
            report.errors += [(row.path, row.reason) for row in listed]
        batch: list[FileRow] = []
        for row in _read(todo, workers=workers, pool=pool, partition_size=partition_size):
            batch.append(row)
            report.read += 1
            if row.kind == "instance":
                report.instances += 1
                if row.reason:
                    report.warnings.append((row.path, row.reason))
            elif row.kind == "other":
                report.others += 1
            else:
                report.errors.append((row.path, row.reason))
            if len(batch) >= BATCH:
                db.write(batch)
                batch = []
            if progress is not None:
                progress(report.read, len(todo))
        if batch:
            db.write(batch)
        db.prune()
    return report


Fingerprint = tuple[int, int, int]


def _read(
    paths: list[str], *, workers: int | None, pool: Executor | None, partition_size: int
) -> Iterator[FileRow]:
    if not paths:
        return iter(())
    if pool is not None:
        return _read_on_cluster(paths, pool, partition_size)
    from dicomlens.catalog.rows import file_rows  # pydicom: only when files changed

    return file_rows(paths, workers=workers or os.cpu_count() or 1)


def _read_on_cluster(paths: list[str], pool: Executor, partition_size: int) -> Iterator[FileRow]:
    tasks = [tuple(run) for run in chunked(paths, partition_size, pool.workers)]
    for task, result in run_isolating(pool, rows_of, tasks, lambda run: [(p,) for p in run]):
        if isinstance(result, Exception):
            yield from (FileRow(p, 0, 0, 0, "error", stopped_reason(result)) for p in task)
        else:
            yield from result


def rows_of(paths: tuple[str, ...]) -> list[FileRow]:
    """The rows of a run of files, read in this process (a task of a cluster's worker)."""
    from dicomlens.catalog.rows import file_rows

    return list(file_rows(paths))


def listed_files(roots: list[Path]) -> Iterator[tuple[str, Fingerprint | None, str]]:
    """Every file under ``roots`` with its fingerprint, as fast as the disk allows
    (one ``lstat`` per file, plain strings). Hidden entries are left out and links
    to folders not followed, as everywhere in dicomlens; a link to a file inside
    the roots is skipped (the file is indexed under its own path); a folder that
    cannot be listed, a file that cannot be examined or whose name is not UTF-8
    comes with the reason."""
    inside = tuple(str(root) for root in roots)
    for root in roots:
        if not root.is_dir():
            yield _listed(str(root), inside)
            continue
        problems: list[OSError] = []
        for folder, folders, names in os.walk(root, onerror=problems.append):
            folders[:] = sorted(d for d in folders if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    yield _listed(os.path.join(folder, name), inside)
        for problem in problems:
            where = _as_text(str(problem.filename or root))
            yield where, None, f"cannot list folder ({problem.strerror or problem})"


_NOT_UTF8: Final = "its name is not valid UTF-8: not indexed (rename it)"


def _listed(path: str, roots: tuple[str, ...]) -> tuple[str, Fingerprint | None, str]:
    shown = _as_text(path)
    return (shown, None, _NOT_UTF8) if shown != path else _examined(path, roots)


def _as_text(path: str) -> str:
    """``path`` as text a catalog can store: bytes of a name that are not UTF-8 (lone
    surrogates in Python's view) written as ``\\xNN`` escapes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def _examined(path: str, roots: tuple[str, ...]) -> tuple[str, Fingerprint | None, str]:
    try:
        found = os.lstat(path)
        if stat.S_ISLNK(found.st_mode):
            target = os.path.realpath(path)
            if any(target == r or target.startswith(r.rstrip("/") + "/") for r in roots):
                return path, None, ""
            found = os.stat(path)
    except OSError as exc:
        return path, None, exc.strerror or str(exc)
    if not stat.S_ISREG(found.st_mode):
        return path, None, NOT_REGULAR
    return path, (found.st_size, found.st_mtime_ns, found.st_ino), ""
