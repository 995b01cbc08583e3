"""Between the two catalogs: SQLite to Parquet (export) and back (import).

Both go through the rows :func:`~dicomlens.catalog.file_rows` makes, so that an
exported catalog answers queries as the one indexed into Parquet directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from dicomlens.catalog.executors import PARTITION_SIZE
from dicomlens.catalog.indexing import BATCH
from dicomlens.catalog.parquet.dataset import ParquetDataset
from dicomlens.catalog.parquet.format import Part, write_part
from dicomlens.catalog.parquet.reading import ParquetCatalog
from dicomlens.catalog.schema import LEVEL_COLUMNS, FileRow, InstanceRow
from dicomlens.catalog.store import Catalog
from dicomlens.errors import CatalogError

__all__ = ["export_catalog", "import_catalog"]

_LEVELS: Final = ("patient", "study", "series", "instance")
_INSTANCE_EXTRA: Final = ("transfer_syntax", "pixel_offset", "pixel_length", "slices", "elements")
_FILE: Final = ("path", "size", "mtime_ns", "inode", "kind", "reason", "rows_version")
_ALIASES: Final = {"patient": "p", "study": "st", "series": "se", "instance": "i"}


def _typed_columns(alias: bool) -> list[str]:
    return [
        f"{_ALIASES[level]}.{column}" if alias else column
        for level in _LEVELS
        for column in LEVEL_COLUMNS[level]
    ]


def _file_row(values: tuple[Any, ...]) -> FileRow:
    """A row of :data:`_FILE` columns, then (for an instance) the typed and extra ones."""
    path, size, mtime_ns, inode, kind, reason, rows_version, *rest = values
    instance = None
    if kind == "instance":
        levels, at = {}, 0
        for level in _LEVELS:
            names = list(LEVEL_COLUMNS[level])
            levels[level] = dict(zip(names, rest[at : at + len(names)], strict=True))
            at += len(names)
        instance = InstanceRow(
            levels["patient"], levels["study"], levels["series"], levels["instance"], *rest[at:]
        )
    return FileRow(path, size, mtime_ns, inode, kind, reason, instance, rows_version)


def _sqlite_rows(catalog: Catalog) -> Iterator[FileRow]:
    columns = ", ".join(
        [*(f"f.{c}" for c in _FILE), *_typed_columns(alias=True)]
        + [f"i.{c}" for c in _INSTANCE_EXTRA]
    )
    cursor = catalog.execute(
        f"SELECT {columns} FROM files f LEFT JOIN instances i ON i.file = f.id "
        "LEFT JOIN series se ON se.id = i.series LEFT JOIN studies st ON st.id = se.study "
        "LEFT JOIN patients p ON p.id = st.patient ORDER BY f.id"
    )
    while batch := cursor.fetchmany(BATCH):
        yield from map(_file_row, batch)


def export_catalog(
    catalog: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    partition_size: int = PARTITION_SIZE,
) -> int:
    """Write the SQLite catalog's files into a new Parquet catalog; how many."""
    dataset = ParquetDataset(folder)
    if dataset.exists:
        raise CatalogError(
            f"{dataset.folder}: a Parquet catalog is already here; name a new folder"
        )
    count = 0
    with Catalog(catalog, readonly=True) as source, dataset.writing():
        part: Part | None = None
        for row in _sqlite_rows(source):
            if part is None:
                name, incoming = dataset.new_part()
                part = Part(name)
            part.add(row, dataset.reserve(1))
            count += 1
            if count % partition_size == 0:
                write_part(part, incoming)
                dataset.commit(part.name)
                part = None
        if part is not None:
            write_part(part, incoming)
            dataset.commit(part.name)
    return count


def import_catalog(folder: str | os.PathLike[str], catalog: str | os.PathLike[str]) -> int:
    """Write the Parquet catalog's live files into a new SQLite catalog; how many."""
    if Path(catalog).exists():
        raise CatalogError(f"{catalog}: already exists; name a new catalog file")
    typed = ", ".join(_typed_columns(alias=False))
    extra = ", ".join(_INSTANCE_EXTRA)
    nulls = ", ".join("NULL" for _ in _typed_columns(alias=False) + list(_INSTANCE_EXTRA))
    count = 0
    with ParquetCatalog(folder) as source, Catalog(catalog) as target, target.writer():
        versions = {  # (0: none recorded, or not a number: read those files again)
            part["name"]: version if type(version := part.get("rows_version")) is int else 0
            for part in source.parts
        }
        cursor = source.execute(
            f"SELECT * FROM (SELECT ordinal, part, path, size, mtime_ns, inode, 'instance', "
            f"reason, {typed}, {extra} FROM live_instances UNION ALL "
            f"SELECT ordinal, part, path, size, mtime_ns, inode, 'error', reason, {nulls} "
            f"FROM live_errors UNION ALL "
            f"SELECT ordinal, part, path, size, mtime_ns, inode, 'other', reason, {nulls} "
            f"FROM live_others) ORDER BY 1"
        )
        while batch := cursor.fetchmany(BATCH):
            target.write(
                _file_row((*values[2:8], versions[values[1]], *values[8:])) for values in batch
            )
            count += len(batch)
    return count
