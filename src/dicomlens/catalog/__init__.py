"""The catalog: index huge folders into SQLite once, then ask anything in milliseconds.

:func:`index` fills a :class:`Catalog` from folders (incrementally), :func:`query`
asks it with ``TAG OP VALUE`` filters, :func:`run_sql` with SQL; the per-file work
is :func:`file_rows`, a pure function from paths to rows.
"""

from dicomlens.catalog.indexing import IndexReport, index
from dicomlens.catalog.query import Condition, Level, QueryResult, query, run_sql
from dicomlens.catalog.rows import FileRow, InstanceRow, file_rows
from dicomlens.catalog.store import SCHEMA_VERSION, Catalog

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
    "query",
    "run_sql",
]
