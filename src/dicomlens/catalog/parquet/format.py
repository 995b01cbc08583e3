"""The Parquet catalog on disk: its tables, their columns, and one part as written.

A dataset is a folder::

    DIR/manifest.json                   the committed parts (written last, atomically)
    DIR/parts/NAME/instances.parquet    one row per instance: fingerprint, key columns, JSON
    DIR/parts/NAME/errors.parquet       files that could not be indexed, with the reason
    DIR/parts/NAME/others.parquet       files that are not instances (not DICOM, DICOMDIR)
    DIR/parts/NAME/tombstones.parquet   (path, part): that path's row in that part is gone

Parts are immutable. A file that changed gets a row in a new part and a tombstone
for its old row; a deleted file only the tombstone. Every row has an ``ordinal``
(the order files were listed in) and the ``part`` that holds it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from dicomlens.catalog.schema import LEVEL_COLUMNS, ROWS_VERSION, FileRow, column_type
from dicomlens.editing import fsync_path

__all__ = [
    "FILE_TABLES",
    "TABLES",
    "Part",
    "rows_version_of",
    "schema",
    "write_part",
    "write_tables",
]

TABLES: Final = ("instances", "errors", "others", "tombstones")
FILE_TABLES: Final = {"instance": "instances", "error": "errors", "other": "others"}
"""The table of each kind of file."""
_ROWS_VERSION_KEY: Final = b"dicomlens.rows_version"  # in each table's key-value metadata

_ARROW_TYPES: Final = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
_FILE_FIELDS: Final = [
    ("ordinal", pa.int64()),
    ("part", pa.string()),
    ("path", pa.string()),
    ("size", pa.int64()),
    ("mtime_ns", pa.int64()),
    ("inode", pa.int64()),
    ("reason", pa.string()),
]


@functools.cache
def schema(table: str) -> pa.Schema:
    """The columns of one of the :data:`TABLES`."""
    if table == "tombstones":
        return pa.schema([("path", pa.string()), ("part", pa.string())])
    if table in ("errors", "others"):
        return pa.schema(_FILE_FIELDS)
    typed = [
        (column, _ARROW_TYPES[column_type(keyword)])
        for columns in LEVEL_COLUMNS.values()
        for column, keyword in columns.items()
    ]
    extra = [
        ("transfer_syntax", pa.string()),
        ("pixel_offset", pa.int64()),
        ("pixel_length", pa.int64()),
        ("slices", pa.string()),
        ("elements", pa.string()),
    ]
    return pa.schema(_FILE_FIELDS + typed + extra)


class Part:
    """The rows of one part, gathered before it is written."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
        self.rows_version = ROWS_VERSION  # the oldest of its rows': what the part is marked

    def add(self, row: FileRow, ordinal: int) -> None:
        """Record one file read (an instance, an error or another file)."""
        self.rows_version = min(self.rows_version, row.rows_version)
        record: dict[str, Any] = {
            "ordinal": ordinal,
            "part": self.name,
            "path": row.path,
            "size": row.size,
            "mtime_ns": row.mtime_ns,
            "inode": row.inode,
            "reason": row.reason,
        }
        if row.instance is not None:
            instance = row.instance
            for level in ("patient", "study", "series", "instance"):
                for column, value in getattr(instance, level).items():
                    record[column] = _typed(value, column)
            record.update(
                transfer_syntax=instance.transfer_syntax,
                pixel_offset=instance.pixel_offset,
                pixel_length=instance.pixel_length,
                slices=instance.slices,
                elements=instance.elements,
            )
        self.rows[FILE_TABLES[row.kind]].append(record)

    def bury(self, tombstones: Iterable[tuple[str, str]]) -> None:
        """Mark the rows of these (path, part) pairs as gone."""
        self.rows["tombstones"] += [{"path": path, "part": part} for path, part in tombstones]

    def tables(self) -> dict[str, pa.Table]:
        return {t: pa.Table.from_pylist(rows, schema=schema(t)) for t, rows in self.rows.items()}


def write_part(part: Part, folder: Path) -> dict[str, int]:
    """Write the tables of ``part`` into ``folder``; their row counts."""
    return write_tables(part.tables(), folder, rows_version=part.rows_version)


def write_tables(
    tables: dict[str, pa.Table], folder: Path, *, rows_version: int = ROWS_VERSION
) -> dict[str, int]:
    """Write one part's tables into ``folder`` (created; every table, empty ones too,
    so that a reader's glob always finds them), synced to disk, each marked with the
    version of the rows it holds (see :func:`rows_version_of`). Their row counts."""
    folder.mkdir(parents=True, exist_ok=True)
    marked = {_ROWS_VERSION_KEY: str(rows_version).encode()}
    for table in TABLES:
        path = folder / f"{table}.parquet"
        pq.write_table(tables[table].replace_schema_metadata(marked), path, compression="zstd")
        fsync_path(path)
    fsync_path(folder)
    return {table: tables[table].num_rows for table in TABLES}


def rows_version_of(folder: Path) -> int:
    """The :data:`~dicomlens.catalog.schema.ROWS_VERSION` of the rows of the part in
    ``folder`` (0: written before versions were recorded)."""
    metadata = pq.read_metadata(folder / "instances.parquet").metadata or {}
    found = metadata.get(_ROWS_VERSION_KEY, b"0")
    return int(found) if found.isdigit() else 0


def _typed(value: Any, column: str) -> Any:
    """A key attribute as its column's type (a value of another type, as a hostile
    file may hold, is left out: the element JSON keeps it)."""
    kind = _column_kind(column)
    if value is None or kind == "TEXT":
        return None if value is None else str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == "INTEGER":
        return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None
    return float(value)


@functools.cache
def _column_kind(column: str) -> str:
    (keyword,) = (kw for cols in LEVEL_COLUMNS.values() for c, kw in cols.items() if c == column)
    return column_type(keyword)
