"""Index folders into a catalog: incrementally, in parallel, in committed batches."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dicomlens.catalog.rows import FileRow, file_rows, fingerprint
from dicomlens.catalog.store import Catalog
from dicomlens.errors import UsageError
from dicomlens.reading import iter_files

__all__ = ["IndexReport", "index"]

BATCH: Final = 500  # files per transaction: a kill loses at most this much work


@dataclass
class IndexReport:
    """What one run of :func:`index` did."""

    read: int = 0
    unchanged: int = 0
    removed: int = 0
    instances: int = 0
    others: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def index(
    paths: Iterable[str | os.PathLike[str]],
    catalog: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Bring ``catalog`` up to date with the files under ``paths``.

    Files whose size, modification time and inode are as recorded are not read;
    new and changed ones are (headers only, in ``workers`` processes, default one
    per core); files gone from disk are forgotten. Results are committed every
    500 files, so a killed run keeps its work and the next run goes on from there.
    Files that cannot be read are recorded with the reason (``errors`` view).

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
    with Catalog(catalog) as db, db.writer():
        known = db.fingerprints(roots)
        todo: list[str] = []
        listed: list[FileRow] = []
        seen: set[str] = set()
        for path, error, _ in iter_files(roots):
            name = str(path)
            if error is not None:
                listed.append(FileRow(name, 0, 0, 0, "error", _reason(str(error), name)))
                seen.add(name)
                continue
            if path.is_symlink() and _inside_any(path.resolve(), roots):
                continue  # indexed under its own path
            seen.add(name)
            try:
                current = fingerprint(path)
            except OSError as exc:
                listed.append(FileRow(name, 0, 0, 0, "error", exc.strerror or str(exc)))
                continue
            if known.get(name) == current:
                report.unchanged += 1
            else:
                todo.append(name)
        gone = [path for path in known if path not in seen]
        if gone:
            db.remove(gone)
            report.removed = len(gone)
        if listed:
            db.write(listed)
            report.errors += [(row.path, row.reason) for row in listed]
        batch: list[FileRow] = []
        for row in file_rows(todo, workers=workers or os.cpu_count() or 1):
            batch.append(row)
            report.read += 1
            if row.kind == "instance":
                report.instances += 1
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


def _reason(text: str, path: str) -> str:
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def _inside_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
