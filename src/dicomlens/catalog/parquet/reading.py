"""The Parquet catalog as the query language sees it: DuckDB views over the parts.

The live rows are the parts' rows less their tombstones. Over them, views named and
shaped like the SQLite catalog's tables (``patients``, ``studies``, ``series``,
``instances``, ``files``, ``errors``) let the same queries run unchanged: a patient's,
study's or series' attributes and parent are those of its latest instance, and one
left without any series or study (all moved to another by later instances) is
gone, as in SQLite.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dicomlens.catalog.dialects import DUCKDB, Dialect
from dicomlens.catalog.parquet.dataset import MANIFEST, ParquetDataset, parse_manifest, part_files
from dicomlens.catalog.parquet.format import TABLES, schema
from dicomlens.catalog.schema import LEVEL_COLUMNS
from dicomlens.errors import CatalogError, UsageError

if TYPE_CHECKING:
    from dicomlens.series import SliceInfo

__all__ = ["ParquetCatalog"]

_FINGERPRINT: Final = "path, size, mtime_ns, inode, part"
_PATIENT_KEY: Final = "coalesce(patient_id, '') || chr(0) || coalesce(patient_name, '')"


def _latest(columns: Iterable[str]) -> str:
    return ", ".join(f"arg_max_null({c}, ordinal) AS {c}" for c in columns)


def _views() -> list[str]:
    instance_columns = ", ".join(LEVEL_COLUMNS["instance"])
    series = [c for c in LEVEL_COLUMNS["series"] if c != "series_instance_uid"]
    study = [c for c in LEVEL_COLUMNS["study"] if c != "study_instance_uid"]
    return [
        *(
            f"CREATE VIEW live_{table} AS SELECT r.* FROM source_{table} r "
            "ANTI JOIN source_tombstones t ON t.path = r.path AND t.part = r.part"
            for table in ("instances", "errors", "others")
        ),
        "CREATE VIEW files AS SELECT path AS id, path, size, mtime_ns, inode, kind, reason "
        "FROM (SELECT *, 'instance' AS kind FROM live_instances UNION ALL BY NAME "
        "SELECT *, 'error' AS kind FROM live_errors UNION ALL BY NAME "
        "SELECT *, 'other' AS kind FROM live_others)",
        "CREATE VIEW errors AS SELECT path, reason FROM live_errors",
        "CREATE VIEW others AS SELECT path, reason FROM live_others",
        f"CREATE VIEW instances AS SELECT ordinal AS id, path AS file, "
        f"coalesce(series_instance_uid, '') AS series, {instance_columns}, transfer_syntax, "
        f"pixel_offset, pixel_length, slices, elements FROM live_instances",
        f"CREATE VIEW series AS SELECT coalesce(series_instance_uid, '') AS id, "
        f"min(ordinal) AS first, arg_max_null(coalesce(study_instance_uid, ''), ordinal) AS study, "
        f"coalesce(series_instance_uid, '') AS series_instance_uid, {_latest(series)} "
        f"FROM live_instances GROUP BY coalesce(series_instance_uid, '')",
        f"CREATE VIEW studies AS SELECT coalesce(study_instance_uid, '') AS id, "
        f"min(ordinal) AS first, arg_max_null({_PATIENT_KEY}, ordinal) AS patient, "
        f"coalesce(study_instance_uid, '') AS study_instance_uid, {_latest(study)} "
        f"FROM live_instances GROUP BY coalesce(study_instance_uid, '') "
        f"HAVING id IN (SELECT study FROM series)",
        f"CREATE VIEW patients AS SELECT {_PATIENT_KEY} AS id, {_PATIENT_KEY} AS patient_key, "
        f"min(ordinal) AS first, {_latest(LEVEL_COLUMNS['patient'])} "
        f"FROM live_instances GROUP BY {_PATIENT_KEY} HAVING id IN (SELECT patient FROM studies)",
    ]


class ParquetCatalog:
    """A Parquet catalog opened for queries (DuckDB, in this process); a context manager.

    ``folder`` may also be a URL that fsspec reads (``s3://bucket/catalog`` with s3fs,
    ``gs://`` with gcsfs, ...). Raw SQL may read (``SELECT``), never write.
    """

    dialect: Final[Dialect] = DUCKDB

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        try:
            import duckdb
        except ImportError:
            raise UsageError(
                "Parquet catalogs need DuckDB and pyarrow: pip install 'dicomlens[parquet]'"
            ) from None
        self._error = duckdb.Error
        self.db = duckdb.connect(":memory:")
        self.db.execute("SET default_null_order = 'nulls_first'")  # as SQLite sorts
        self.path, parts = self._locate(folder)
        self.parts = parts  # as the manifest lists them
        for table in TABLES:
            files = part_files(str(self.path), parts, table)
            if files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                self.db.execute(
                    f"CREATE VIEW source_{table} AS SELECT * FROM read_parquet([{listed}])"
                )
            else:
                self.db.register(f"source_{table}", schema(table).empty_table())
        for view in _views():
            self.db.execute(view)

    def _locate(self, folder: str | os.PathLike[str]) -> tuple[Path | str, list[dict[str, Any]]]:
        """The dataset's place (a folder, or a URL read through fsspec) and its parts."""
        location = str(folder)
        if "://" not in location:
            dataset = ParquetDataset(folder)
            if not dataset.exists:
                raise CatalogError(
                    f"{dataset.folder}: no Parquet catalog here "
                    "(create it with dicomlens index --parquet)"
                )
            return dataset.folder, dataset.parts
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError:
            raise UsageError(
                f"{location}: reading a URL needs fsspec: pip install fsspec"
            ) from None
        try:
            filesystem, root = fsspec.core.url_to_fs(location)
            text = filesystem.cat_file(f"{root.rstrip('/')}/{MANIFEST}").decode()
        except FileNotFoundError:
            raise CatalogError(f"{location}: no Parquet catalog here") from None
        except (ImportError, ValueError, OSError) as exc:  # no such protocol, or its package
            raise CatalogError(f"{location}: cannot read ({exc})") from None
        self.db.register_filesystem(filesystem)  # DuckDB reads the parts through it
        return location.rstrip("/"), parse_manifest(text, location)["parts"]

    def __enter__(self) -> ParquetCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        """Run one read-only SQL statement; the result has ``fetchall`` and ``description``."""
        try:
            statements = self.db.extract_statements(sql)
            if len(statements) != 1 or statements[0].type.name != "SELECT":
                raise CatalogError(f"{self.path}: only one SELECT statement at a time (read-only)")
            return self.db.execute(sql, list(parameters))
        except self._error as exc:  # DuckDB's messages go on with a caret under the SQL
            raise CatalogError(f"{self.path}: {str(exc).splitlines()[0]}") from exc

    def fingerprints(self, roots: Sequence[Path]) -> dict[str, tuple[tuple[int, int, int], str]]:
        """Size, mtime and inode of every file recorded under ``roots``, with its part."""
        found: dict[str, tuple[tuple[int, int, int], str]] = {}
        for table in ("instances", "errors", "others"):
            for root in roots:
                prefix = str(root).rstrip("/") + "/"
                rows = self.db.execute(
                    f"SELECT {_FINGERPRINT} FROM live_{table} "
                    "WHERE path = ? OR starts_with(path, ?)",
                    [str(root), prefix],
                ).fetchall()
                found.update(
                    (path, ((size, mtime, inode), part)) for path, size, mtime, inode, part in rows
                )
        return found

    def slices(self, under: Sequence[str | os.PathLike[str]] = ()) -> list[SliceInfo]:
        """The images recorded (under the given files or folders), as
        :meth:`dicomlens.catalog.Catalog.slices` gives them."""
        from dicomlens.catalog.rows import slices_from_json  # pydicom: only when asked

        roots = [str(Path(p).resolve()) for p in under]
        sql = "SELECT path, slices, size, mtime_ns, inode FROM live_instances"
        parameters: list[str] = []
        if roots:
            sql += " WHERE " + " OR ".join("path = ? OR starts_with(path, ?)" for _ in roots)
            parameters = [v for r in roots for v in (r, r.rstrip("/") + "/")]
        infos: list[SliceInfo] = []
        for path, slices, *recorded in self.db.execute(
            sql + " ORDER BY path", parameters
        ).fetchall():
            infos.extend(slices_from_json(slices, path, tuple(recorded)))
        return infos

    def counts(self) -> dict[str, int]:
        """How many patients, studies, series, instances and errors the catalog holds."""
        tables = ("patients", "studies", "series", "instances", "errors")
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}
