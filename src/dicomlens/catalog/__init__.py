"""The catalog: index huge folders into SQLite once, then ask anything in milliseconds.

:func:`index` fills a :class:`Catalog` from folders (incrementally), :func:`query`
asks it with ``TAG OP VALUE`` filters, :func:`run_sql` with SQL; the per-file work
is :func:`file_rows`, a pure function from paths to rows. Names are imported on
first use, so that re-indexing an unchanged tree does not load pydicom.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dicomlens.catalog.indexing import IndexReport, index
    from dicomlens.catalog.querying import Condition, Level, QueryResult, query, run_sql
    from dicomlens.catalog.rows import file_rows
    from dicomlens.catalog.schema import FileRow, InstanceRow
    from dicomlens.catalog.store import SCHEMA_VERSION, Catalog, purge

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "Condition",
    "FileRow",
    "IndexReport",
    "InstanceRow",
    "Level",
    "QueryResult",
    "file_rows",
    "index",
    "purge",
    "query",
    "run_sql",
]

_HOMES = {
    "SCHEMA_VERSION": "store",
    "Catalog": "store",
    "purge": "store",
    "Condition": "querying",
    "Level": "querying",
    "QueryResult": "querying",
    "query": "querying",
    "run_sql": "querying",
    "FileRow": "schema",
    "InstanceRow": "schema",
    "IndexReport": "indexing",
    "index": "indexing",
    "file_rows": "rows",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f"dicomlens.catalog.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dicomlens.catalog' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
