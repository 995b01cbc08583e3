"""The catalog database: an SQLite file, the only place dicomlens uses SQL storage.

Tables ``patients``, ``studies``, ``series`` and ``instances`` hold the key
attributes as typed columns; ``instances.elements`` holds every non-bulk
element as JSON (query it with SQLite's JSON functions); ``files`` holds the
fingerprint (size, mtime, inode) of every file seen, so that unchanged files are
not read again, and the reason for those that could not be indexed (the
``errors`` view). The file is created readable by its owner only: it holds PHI.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dicomlens.catalog.dialects import SQLITE, SQLITE_SERIES_VALUES, Dialect
from dicomlens.catalog.filesystem import is_network_filesystem
from dicomlens.catalog.locking import writer_lock
from dicomlens.catalog.schema import (
    LEVEL_COLUMNS,
    ROWS_VERSION,
    FileRow,
    InstanceRow,
    column_type,
    top_level_scalars,
)
from dicomlens.errors import CatalogError, DicomlensWarning

if TYPE_CHECKING:
    from dicomlens.series import SliceInfo

__all__ = ["SCHEMA_VERSION", "Catalog", "Overrun", "purge"]

SCHEMA_VERSION: Final = 6
_PARENT: Final = {"study": "patient", "series": "study", "instance": "series"}
_TABLE: Final = {"patient": "patients", "study": "studies", "series": "series"}
_KEY: Final = {
    "patient": "patient_key",
    "study": "study_instance_uid",
    "series": "series_instance_uid",
}


@functools.lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


def _regexp(pattern: str, value: object) -> bool:
    """SQLite's ``X REGEXP Y``: a case-insensitive search of pattern Y in value X."""
    return value is not None and _pattern(pattern).search(str(value)) is not None


def _columns(level: str) -> str:
    """The typed columns of a level; its key (a UID) must be there and unique."""
    unique = {"study": "study_instance_uid", "series": "series_instance_uid"}.get(level)
    return ", ".join(
        f"{name} {column_type(kw)}{' NOT NULL UNIQUE' if name == unique else ''}"
        for name, kw in LEVEL_COLUMNS[level].items()
    )


def _schema() -> str:
    return f"""
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('instance', 'error', 'other')),
    reason TEXT NOT NULL DEFAULT '',
    rows_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    patient_key TEXT NOT NULL UNIQUE,
    {_columns("patient")}
);
CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    patient INTEGER NOT NULL REFERENCES patients(id),
    {_columns("study")}
);
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    study INTEGER NOT NULL REFERENCES studies(id),
    {_columns("series")}
);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    file INTEGER NOT NULL UNIQUE REFERENCES files(id) ON DELETE CASCADE,
    series INTEGER NOT NULL REFERENCES series(id),
    {_columns("instance")},
    transfer_syntax TEXT,
    pixel_offset INTEGER,
    pixel_length INTEGER,
    slices TEXT NOT NULL,
    elements TEXT NOT NULL
);
CREATE INDEX studies_patient ON studies(patient);
CREATE INDEX series_study ON series(study);
CREATE INDEX series_modality ON series(modality);
CREATE INDEX instances_series ON instances(series);
CREATE INDEX instances_sop ON instances(sop_instance_uid);
CREATE VIEW errors AS SELECT path, reason FROM files WHERE kind = 'error';
{_CONFLICTS}
{_INSTANCE_INDEXES}
{_SERIES_VALUES}
PRAGMA user_version = {SCHEMA_VERSION};
"""


# The same SOP Instance UID at several paths (copies, or a re-import from a new place):
# all are kept, and listed here (RELIABILITY I10).
_CONFLICTS: Final = """
CREATE VIEW conflicts AS
SELECT sop_instance_uid, count(*) AS copies, json_group_array(path) AS paths
FROM instances JOIN files ON files.id = instances.file
WHERE sop_instance_uid IN (
    SELECT sop_instance_uid FROM instances WHERE sop_instance_uid IS NOT NULL
    GROUP BY sop_instance_uid HAVING count(*) > 1
)
GROUP BY sop_instance_uid;
"""
# The typed instance columns a search at the series or study level asks for (DICOMweb
# clients by SliceThickness, say) are found by index, not by reading every instance row;
# with the series (and the row id) in the index, the matching instances are grouped into
# series from the index alone.
_INDEXED_INSTANCE_COLUMNS: Final = (
    "slice_thickness",
    "instance_number",
    "sop_class_uid",
    "acquisition_date",
    "rows",
    "columns",
    "number_of_frames",
)
_INSTANCE_INDEXES: Final = "".join(
    f"CREATE INDEX instances_{column} ON instances({column}, series);\n"
    for column in _INDEXED_INSTANCE_COLUMNS
)
_INSTANCE_INDEXES_RENEWED: Final = (
    "".join(f"DROP INDEX IF EXISTS instances_{column};\n" for column in _INDEXED_INSTANCE_COLUMNS)
    + _INSTANCE_INDEXES
)
# Every value each series' instances hold in their top-level elements (VARYING_AFTER
# at most per element; past that, the element is listed in series_varying instead):
# a search on any element looks only at the series that may hold the value. A
# superset: values of instances removed since stay (the exact test follows).
VARYING_AFTER: Final = 16
_SERIES_VALUES: Final = """
CREATE TABLE series_values (
    series INTEGER NOT NULL,
    key TEXT NOT NULL,
    value NOT NULL,
    PRIMARY KEY (key, value, series)
) WITHOUT ROWID;
CREATE INDEX series_values_series ON series_values(series, key);
CREATE TABLE series_varying (
    series INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (key, series)
) WITHOUT ROWID;
"""
# Fills series_values for a catalog written before it existed (in SQL: slower than
# the writer's own bookkeeping, but once).
_SERIES_VALUES_FILLED: Final = f"""
INSERT OR IGNORE INTO series_values (series, key, value)
SELECT i.series, j.key, CASE WHEN j.type = 'array' THEN a.value ELSE j.value END
FROM instances i JOIN json_each(i.elements) j
LEFT JOIN json_each(i.elements, j.fullkey) a ON j.type = 'array'
WHERE j.type NOT IN ('null', 'object')
  AND (j.type != 'array' OR a.type NOT IN ('object', 'array', 'null'));
INSERT INTO series_varying (series, key) SELECT series, key FROM series_values
GROUP BY series, key HAVING count(*) > {VARYING_AFTER};
DELETE FROM series_values WHERE EXISTS (SELECT 1 FROM series_varying v
    WHERE v.key = series_values.key AND v.series = series_values.series);
"""
# Rows written before their version was recorded count as version 0: read again.
_ROWS_VERSION_COLUMN: Final = (
    "ALTER TABLE files ADD COLUMN rows_version INTEGER NOT NULL DEFAULT 0;\n"
)
# Schema changes from each earlier version to the next.
_MIGRATIONS: Final = {
    1: _CONFLICTS,
    2: _INSTANCE_INDEXES,
    3: _SERIES_VALUES + _SERIES_VALUES_FILLED,
    4: _INSTANCE_INDEXES_RENEWED,
    5: _ROWS_VERSION_COLUMN,
}


class Overrun(Exception):
    """A statement run under :meth:`Catalog.bounded` outlasted its time (not a user
    error: the caller runs it again where it may take longer)."""


@functools.cache
def _insert_sql(table: str, names: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


class Catalog:
    """An open catalog; use as a context manager.

    Parameters
    ----------
    path
        The SQLite file; created (mode 0600) unless ``readonly``.
    readonly
        Open for queries only (raw SQL cannot change anything).
    """

    dialect: Dialect = SQLITE
    """How the query language speaks to this catalog (one with per-series values
    looks there first)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise CatalogError(f"{self.path}: no catalog here (create it with dicomlens index)")
        if not readonly and not self.path.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise CatalogError(f"{self.path}: cannot create ({exc.strerror})") from exc
        uri = f"{self.path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
        network = None if readonly else is_network_filesystem(self.path)
        try:
            self.db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.create_function("regexp", 2, _regexp, deterministic=True)
            self._check_schema()
            if network:  # RELIABILITY I7: WAL needs shared memory on one host
                self.db.execute("PRAGMA journal_mode = DELETE")
            elif not readonly:
                # In WAL mode a commit survives the process being killed without an
                # fsync of its own; the log is synced when it is checkpointed.
                self.db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a dicomlens catalog ({exc})") from exc
        if network:
            warnings.warn(
                f"{self.path}: on a network file system ({network}): using a rollback "
                "journal instead of WAL (slower; one computer at a time)",
                DicomlensWarning,
                stacklevel=2,
            )

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _check_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == SCHEMA_VERSION or (version == 0 and tables == 0):
            self.dialect = SQLITE_SERIES_VALUES
        if version == SCHEMA_VERSION:
            return
        if version == 0 and tables == 0 and not self.readonly:
            # pages of 8 KiB hold an instance's elements (a few KiB of JSON) with fewer
            # overflow pages: inserts cost a fifth less than with the default 4 KiB
            self.db.execute("PRAGMA page_size = 8192")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.executescript(f"BEGIN; {_schema()} COMMIT;")
            return
        if version in _MIGRATIONS and self.readonly:
            return  # an older catalog answers queries as it is (without series values)
        if version in _MIGRATIONS:
            steps = "".join(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
            self.db.executescript(f"BEGIN; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            self.dialect = SQLITE_SERIES_VALUES
            warnings.warn(
                f"{self.path}: catalog schema v{version} migrated to v{SCHEMA_VERSION}",
                DicomlensWarning,
                stacklevel=3,
            )
            return
        raise CatalogError(
            f"{self.path}: catalog schema v{version}, this dicomlens uses v{SCHEMA_VERSION}: "
            "delete the file and index again"
        )

    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Hold the catalog's writer lock: a second indexer is refused, naming the first."""
        return writer_lock(self.path.with_name(self.path.name + ".lock"), self.path)

    # -- writing ------------------------------------------------------------

    def fingerprints(self, roots: Sequence[Path]) -> dict[str, tuple[int, int, int] | None]:
        """Size, mtime and inode of every file recorded under ``roots``; None for a file
        whose row an earlier version made (:data:`ROWS_VERSION`): it is to be read again."""
        found: dict[str, tuple[int, int, int] | None] = {}
        for root in roots:
            prefix = str(root).rstrip("/") + "/"
            rows = self.db.execute(
                "SELECT path, size, mtime_ns, inode, rows_version FROM files WHERE path = ? OR "
                "substr(path, 1, ?) = ?",
                (str(root), len(prefix), prefix),
            )
            found.update(
                (path, (size, mtime, inode) if version == ROWS_VERSION else None)
                for path, size, mtime, inode, version in rows
            )
        return found

    def write(self, rows: Iterable[FileRow]) -> None:
        """Record a batch of files in one transaction (all or nothing)."""
        rows = list(rows)
        levels = _Levels()
        values = _SeriesValues(self.db)
        with self._transaction():
            self.db.executemany(
                "INSERT INTO files (path, size, mtime_ns, inode, kind, reason, rows_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET size = "
                "excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, "
                "kind = excluded.kind, reason = excluded.reason, "
                "rows_version = excluded.rows_version",
                [
                    (r.path, r.size, r.mtime_ns, r.inode, r.kind, r.reason, r.rows_version)
                    for r in rows
                ],
            )
            ids = dict(
                self.db.execute(
                    "SELECT path, id FROM files WHERE path IN (SELECT value FROM json_each(?))",
                    (json.dumps([row.path for row in rows]),),
                ).fetchall()
            )
            self.db.execute(  # a file read again replaces what it held
                "DELETE FROM instances WHERE file IN (SELECT value FROM json_each(?))",
                (json.dumps(list(ids.values())),),
            )
            inserts: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in rows:
                if row.instance is not None:
                    series, columns = self._instance_columns(ids[row.path], row, levels)
                    inserts.setdefault(tuple(columns), []).append(list(columns.values()))
                    values.add(series, row.instance)
            for names, parameters in inserts.items():
                self.db.executemany(_insert_sql("instances", names), parameters)
            for level, columns in levels.changed():  # as the batch's latest instance says
                self._upsert(level, columns)
            values.write()

    def _instance_columns(
        self, file_id: int, row: FileRow, levels: _Levels
    ) -> tuple[int, dict[str, Any]]:
        """The instance's series id (its patient, study and series written when new)
        and the columns of its row in ``instances``."""
        instance = row.instance
        assert instance is not None
        values = {"patient": instance.patient, "study": instance.study, "series": instance.series}
        patient = instance.patient
        values["patient"] = {
            "patient_key": f"{patient['patient_id'] or ''}\x00{patient['patient_name'] or ''}",
            **patient,
        }
        for level in ("study", "series"):
            values[level][_KEY[level]] = values[level][_KEY[level]] or ""
        parent: int | None = None
        for level in ("patient", "study", "series"):
            columns = dict(values[level])
            if level in _PARENT:
                columns[_PARENT[level]] = parent
            parent = levels.seen(level, columns)
            if parent is None:
                parent = levels.written(level, columns, self._upsert(level, columns))
        assert parent is not None
        return parent, {
            "file": file_id,
            "series": parent,
            **instance.instance,
            "transfer_syntax": instance.transfer_syntax,
            "pixel_offset": instance.pixel_offset,
            "pixel_length": instance.pixel_length,
            "slices": instance.slices,
            "elements": instance.elements,
        }

    def _upsert(self, level: str, columns: dict[str, Any]) -> int:
        """Insert the row of a patient, study or series, or bring it up to date (an
        edited file may move a study to another patient); its id."""
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns)
        row = self.db.execute(
            f"INSERT INTO {_TABLE[level]} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({_KEY[level]}) DO UPDATE SET {updates} RETURNING id",
            list(columns.values()),
        ).fetchone()
        return int(row[0])

    def remove(self, paths: Iterable[str]) -> None:
        """Forget files (deleted from disk) and what they held."""
        with self._transaction():
            self.db.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))

    def prune(self) -> None:
        """Drop series, studies and patients that no longer hold any instance."""
        with self._transaction():
            self.db.execute("DELETE FROM series WHERE id NOT IN (SELECT series FROM instances)")
            for table in ("series_values", "series_varying"):
                self.db.execute(f"DELETE FROM {table} WHERE series NOT IN (SELECT id FROM series)")
            self.db.execute("DELETE FROM studies WHERE id NOT IN (SELECT study FROM series)")
            self.db.execute("DELETE FROM patients WHERE id NOT IN (SELECT patient FROM studies)")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise CatalogError(
                f"{self.path}: cannot write ({exc}); nothing of this batch kept"
            ) from exc

    # -- reading ------------------------------------------------------------

    @contextlib.contextmanager
    def bounded(self, seconds: float) -> Iterator[None]:
        """Interrupt the statements run inside that last longer than ``seconds`` in all,
        raising :class:`Overrun` (so that a server can try a search on its event loop
        and hand only the long ones to a thread)."""
        deadline = time.perf_counter() + seconds
        overran = False

        def check() -> int:
            nonlocal overran
            overran = overran or time.perf_counter() > deadline
            return overran

        self.db.set_progress_handler(check, 1000)  # every 1000 virtual-machine steps
        try:
            yield
        except (sqlite3.Error, CatalogError):
            if overran:
                raise Overrun(f"{self.path}: longer than {seconds} s") from None
            raise
        finally:
            self.db.set_progress_handler(None, 0)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one SQL statement (read-only catalogs refuse changes)."""
        try:
            return self.db.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise CatalogError(f"{self.path}: {exc}") from exc

    def slices(self, under: Sequence[str | os.PathLike[str]] = ()) -> list[SliceInfo]:
        """The images recorded (under the given files or folders), as the series
        grouping needs them: volumes load from the catalog without re-reading headers."""
        from dicomlens.catalog.rows import slices_from_json  # pydicom: only when asked

        sql = (
            "SELECT files.path, instances.slices, size, mtime_ns, inode "
            "FROM instances JOIN files ON files.id = file"
        )
        infos: list[SliceInfo] = []
        roots = [str(Path(p).resolve()) for p in under]
        for path, slices, *recorded in self.db.execute(sql + " ORDER BY files.path"):
            if roots and not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
                continue
            infos.extend(slices_from_json(slices, path, tuple(recorded)))
        return infos

    def counts(self) -> dict[str, int]:
        """How many patients, studies, series, instances and errors the catalog holds."""
        tables = ("patients", "studies", "series", "instances", "errors")
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


class _Levels:
    """The patients, studies and series written in one batch: each is written once
    when first met, and again at the end if a later instance of the batch says
    otherwise, so that a row holds what its latest instance read says."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._first: dict[tuple[str, str], dict[str, Any]] = {}
        self._latest: dict[tuple[str, str], dict[str, Any]] = {}

    def seen(self, level: str, columns: dict[str, Any]) -> int | None:
        """The id of a row already written in this batch (noting its latest columns)."""
        key = (level, columns[_KEY[level]])
        if key in self._ids:
            self._latest[key] = columns
        return self._ids.get(key)

    def written(self, level: str, columns: dict[str, Any], row_id: int) -> int:
        key = (level, columns[_KEY[level]])
        self._ids[key], self._first[key] = row_id, columns
        return row_id

    def changed(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for (level, key), columns in self._latest.items():
            if columns != self._first[(level, key)]:
                yield level, columns


class _SeriesValues:
    """The values one batch adds to series_values (and the elements it finds varying)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._known: dict[int, dict[str, set[Any] | None]] = {}  # None: varying
        self._pairs: dict[int, set[tuple[str, Any]]] = {}  # the (key, value) pairs known
        self._new: list[tuple[int, str, Any]] = []
        self._varying: list[tuple[int, str]] = []

    def add(self, series: int, instance: InstanceRow) -> None:
        known = self._known.get(series)
        if known is None:
            known = self._known[series] = self._recorded(series)
            self._pairs[series] = {
                (key, value) for key, values in known.items() if values for value in values
            }
        pairs = instance.scalars or top_level_scalars(json.loads(instance.elements))
        seen = self._pairs[series]
        for key, value in set(pairs).difference(seen):  # most are the series' known values
            found = known.setdefault(key, set())
            if found is None:
                continue  # varying: its values are not kept
            if len(found) >= VARYING_AFTER or (
                type(value) is int and not _INT64 >= value >= -_INT64
            ):
                known[key] = None
                self._varying.append((series, key))
            else:
                found.add(value)
                seen.add((key, value))
                self._new.append((series, key, value))

    def _recorded(self, series: int) -> dict[str, set[Any] | None]:
        known: dict[str, set[Any] | None] = {}
        for key, value in self.db.execute(
            "SELECT key, value FROM series_values WHERE series = ?", (series,)
        ):
            found = known.setdefault(key, set())
            assert found is not None
            found.add(value)
        for (key,) in self.db.execute("SELECT key FROM series_varying WHERE series = ?", (series,)):
            known[key] = None
        return known

    def write(self) -> None:
        varying = set(self._varying)
        self.db.executemany(
            "INSERT OR IGNORE INTO series_values (series, key, value) VALUES (?, ?, ?)",
            [entry for entry in self._new if entry[:2] not in varying],
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO series_varying (series, key) VALUES (?, ?)", self._varying
        )
        self.db.executemany(
            "DELETE FROM series_values WHERE key = ? AND series = ?",
            [(key, series) for series, key in self._varying],
        )


_INT64: Final = 2**63 - 1


def catalog_files(path: Path) -> list[Path]:
    """A catalog's file and its companions (write-ahead log, shared memory, lock)."""
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", ".lock"))]


def purge(path: str | os.PathLike[str]) -> list[Path]:
    """Delete a catalog and its companion files (write-ahead log, shared memory, lock):
    it holds PHI. Returns the files deleted.

    Refuses a file that is not a dicomlens catalog, and a catalog being indexed.
    The space is freed, not overwritten: on a disk that must be wiped, wipe the disk.
    """
    with Catalog(path, readonly=True) as catalog, catalog.writer():
        deleted = []
        for file in catalog_files(catalog.path):
            try:
                file.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CatalogError(f"{file}: cannot delete ({exc.strerror})") from exc
            deleted.append(file)
    return deleted
