"""``index`` and ``query``: the catalog of huge folders."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from dicomlens.cli._common import PROG, Progress, command, counted, end_startup, print_table
from dicomlens.errors import EXIT_FAILED, EXIT_OK, UsageError, WriteError

CATALOG_VARIABLE = "DICOMLENS_CATALOG"
DEFAULT_CATALOG = "dicomlens-catalog.db"
_ERRORS_SHOWN = 20


def add_catalog_option(sub: argparse.ArgumentParser, *, what: str, creates: bool = False) -> None:
    sub.add_argument(
        "--catalog",
        metavar="FILE",
        default=None,
        help=f"{what} (default: ${CATALOG_VARIABLE}, else {DEFAULT_CATALOG} in the current "
        "folder; it holds PHI"
        + ("; that one is never created inside a folder being indexed unless "
           "--catalog-inside)" if creates else ")"),
    )  # fmt: skip
    if creates:
        sub.add_argument(
            "--catalog-inside",
            action="store_true",
            help="allow creating the catalog inside a folder being indexed (it would be copied "
            "with the archive)",
        )


def catalog_path(args: argparse.Namespace) -> str:
    """The catalog file (absolute): --catalog, else $DICOMLENS_CATALOG, else the default
    name in the current folder."""
    chosen = args.catalog or os.environ.get(CATALOG_VARIABLE) or DEFAULT_CATALOG
    return str(Path(chosen).absolute())


def check_catalog_place(args: argparse.Namespace, path: str) -> None:
    """Refuse to create the default catalog inside a folder being indexed, unless
    asked (--catalog-inside, or a catalog named with --catalog or the environment):
    it holds PHI, and a catalog inside an archive is copied with it."""
    named = args.catalog or os.environ.get(CATALOG_VARIABLE)
    if named or args.catalog_inside or Path(path).exists():
        return
    from dicomlens.editing import is_within  # pydicom: only for a new default catalog

    roots: list[str] = args.paths
    for root in roots:
        if Path(root).is_dir() and is_within(Path(path), Path(root)):
            raise UsageError(
                f"{path}: the catalog would be created inside {root}, which is being indexed "
                "(it holds PHI and would travel with the files); name another place with "
                "--catalog, or pass --catalog-inside"
            )


def add_parquet_option(sub: argparse.ArgumentParser, *, what: str, writes: bool = False) -> None:
    place = "a folder" if writes else "a folder, or a URL such as s3://bucket/catalog"
    sub.add_argument(
        "--parquet",
        metavar="DIR",
        help=f"{what}, as a Parquet dataset ({place}) instead of SQLite",
    )


def open_catalog(args: argparse.Namespace) -> Any:
    """The catalog to read: the Parquet one when --parquet is given, else SQLite."""
    if getattr(args, "parquet", None):
        if args.catalog:
            raise UsageError("--catalog and --parquet name two catalogs: give one")
        from dicomlens.catalog.parquet import ParquetCatalog

        return ParquetCatalog(args.parquet)
    from dicomlens.catalog import Catalog

    return Catalog(catalog_path(args), readonly=True)


def add_index(commands: Any) -> None:
    sub = command(
        commands,
        "index",
        _run_index,
        "Index folders into a catalog (SQLite, or a Parquet dataset with --parquet): every "
        "element of every file, read once; later runs read only new and changed files (and, "
        "once, those an earlier dicomlens recorded). "
        "With --dask, the files are read on a Dask cluster. The catalog holds PHI: it is "
        "created readable by you only.",
        "  dicomlens index archive/ --catalog archive.db\n"
        "  dicomlens index archive/ --catalog archive.db   # again: only what changed\n"
        "  DICOMLENS_CATALOG=archive.db dicomlens index more/\n"
        "  dicomlens index /mnt/archive --parquet /mnt/catalog    # Parquet, local processes\n"
        "  dicomlens index /mnt/archive --parquet /mnt/catalog --dask tcp://scheduler:8786\n"
        "  dicomlens index /mnt/archive --parquet /mnt/catalog --compact\n"
        "\nwith --dask, every worker must see the files and the --parquet folder at the same "
        "paths\n(a shared file system); dicomlens must be installed on the workers.",
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to index")
    add_catalog_option(sub, what="the catalog to create or update", creates=True)
    add_parquet_option(sub, what="the catalog to create or update", writes=True)
    sub.add_argument(
        "--workers", type=int, metavar="N", help="local processes reading headers (default: cores)"
    )
    sub.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="read on the Dask cluster whose scheduler is at ADDRESS "
        "(default: $DICOMLENS_DASK_SCHEDULER; without either, local processes)",
    )
    sub.add_argument(
        "--partition-size",
        type=int,
        default=2000,
        metavar="N",
        help="files per task (and per Parquet part file; default 2000)",
    )
    sub.add_argument(
        "--compact",
        action="store_true",
        help="with --parquet: then rewrite the parts holding replaced or deleted files' rows",
    )


def _run_index(args: argparse.Namespace) -> int:
    end_startup()
    if args.compact and not args.parquet:
        raise UsageError("--compact is for Parquet catalogs (--parquet DIR)")
    if args.parquet and args.catalog:
        raise UsageError("--catalog and --parquet name two catalogs: give one")
    if args.parquet:
        path = args.parquet if "://" in args.parquet else str(Path(args.parquet).absolute())
    else:
        path = catalog_path(args)
        check_catalog_place(args, path)
    progress = Progress("indexing") if sys.stderr.isatty() else None
    options = {"workers": args.workers, "dask": args.dask, "progress": progress,
               "partition_size": args.partition_size}  # fmt: skip
    try:
        if args.parquet:
            from dicomlens.catalog.parquet import index_parquet

            report = index_parquet(args.paths, path, **options)
        else:
            from dicomlens.catalog import index

            report = index(args.paths, path, **options)
    finally:
        if progress is not None:
            progress.done()
    if args.compact:
        from dicomlens.catalog.parquet import ParquetDataset, compact

        dataset = ParquetDataset(path)
        with dataset.writing():
            dropped = compact(dataset)
        print(f"{PROG}: {path}: compacted ({counted(dropped, 'replaced row')} dropped)",
              file=sys.stderr)  # fmt: skip
    for file, reason in report.warnings[:_ERRORS_SHOWN]:
        print(f"{PROG}: warning: {file}: {reason}", file=sys.stderr)
    if len(report.warnings) > _ERRORS_SHOWN:
        more = len(report.warnings) - _ERRORS_SHOWN
        print(f"{PROG}: ... and {more} more with elements kept as bytes (SELECT path, reason "
              "FROM files WHERE kind = 'instance' AND reason != '')", file=sys.stderr)  # fmt: skip
    for file, reason in report.errors[:_ERRORS_SHOWN]:
        print(f"{PROG}: error: {file}: {reason}", file=sys.stderr)
    if len(report.errors) > _ERRORS_SHOWN:
        more = len(report.errors) - _ERRORS_SHOWN
        print(f"{PROG}: ... and {more} more (SELECT * FROM errors)", file=sys.stderr)
    with open_catalog(args) as catalog:
        counts = catalog.counts()
        conflicts = (
            0 if args.parquet else catalog.execute("SELECT count(*) FROM conflicts").fetchone()[0]
        )
    if conflicts:
        print(
            f"{PROG}: {counted(conflicts, 'instance')} recorded at more than one path "
            "(SELECT * FROM conflicts)",
            file=sys.stderr,
        )
    if report.refreshed:
        print(
            f"{PROG}: {counted(report.refreshed, 'file')} read again: recorded by an earlier "
            "dicomlens, whose rows lack what this one reads",
            file=sys.stderr,
        )
    print(
        f"{PROG}: {path}: read {counted(report.read, 'file')} "
        f"({counted(report.instances, 'instance')}, {len(report.errors)} failed, "
        f"{report.others} other{_kept_note(report)}), {report.unchanged} unchanged, "
        f"{report.removed} removed; "
        f"catalog holds {counted(counts['patients'], 'patient')}, "
        f"{counted(counts['studies'], 'study')}, {counted(counts['series'], 'series')}, "
        f"{counted(counts['instances'], 'instance')}, {counted(counts['errors'], 'error')}",
        file=sys.stderr,
    )
    return EXIT_FAILED if report.errors else EXIT_OK


def _kept_note(report: Any) -> str:
    kept = len(report.warnings)
    return f", {counted(kept, 'instance')} with elements kept as bytes" if kept else ""


def add_query(commands: Any) -> None:
    sub = command(
        commands,
        "query",
        _run_query,
        "Ask the catalog: patients, studies, series or instances whose elements match "
        "TAG OP VALUE filters (OP: = != < <= > >= ~), or raw SQL.",
        "  dicomlens query Modality=CT 'SliceThickness<=1.5'\n"
        "  dicomlens query 'StudyDate>=2020-01-01' 'SeriesDescription~lung' --level study\n"
        "  dicomlens query Modality=MR --columns EchoTime,'(0019,xx0C)[SIEMENS MR HEADER]'\n"
        "  dicomlens query --level instance Modality=CT --format csv > ct_files.csv\n"
        "  dicomlens query --parquet /mnt/catalog Modality=MR 'EchoTime<=30'   # DuckDB\n"
        "  dicomlens query Modality=CT --format parquet -o ct_series.parquet\n"
        '  dicomlens query --sql "SELECT modality, count(*) FROM series GROUP BY modality"\n'
        "\nany element can be filtered on, nested ones by path "
        "(PerFrameFunctionalGroupsSequence[*].PlanePositionSequence[0].ImagePositionPatient[2]>10);"
        "\nprivate elements by creator; numbers and dates compare as such; ~ is a "
        "case-insensitive regular expression.",
    )
    sub.add_argument("conditions", nargs="*", metavar="EXPR", help="TAG OP VALUE (all must hold)")
    add_catalog_option(sub, what="the catalog to ask")
    add_parquet_option(sub, what="the catalog to ask")
    sub.add_argument(
        "--level",
        choices=["patient", "study", "series", "instance"],
        default="series",
        help="what one row stands for (default: series)",
    )
    sub.add_argument(
        "--columns", metavar="TAG,...", default="", help="more columns, in any tag notation"
    )
    sub.add_argument(
        "--format", choices=["table", "csv", "json", "parquet"], default="table", help="output"
    )
    sub.add_argument("-o", "--output", metavar="FILE", help="write here (needed for parquet)")
    sub.add_argument("--sql", metavar="SQL", help="run this SQL (read-only) instead of filters")


def _run_query(args: argparse.Namespace) -> int:
    from dicomlens.catalog import query, run_sql

    end_startup()
    if args.sql and args.conditions:
        raise UsageError("--sql replaces the filters: give one or the other")
    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet needs -o FILE")
    columns = [c.strip() for c in _split_columns(args.columns) if c.strip()]
    with open_catalog(args) as catalog:
        if args.sql:
            result = run_sql(catalog, args.sql)
        else:
            result = query(catalog, args.conditions, level=args.level, columns=columns)
    if args.format == "parquet":
        _write_parquet(result.records(), args.output)
    else:
        out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
        try:
            _print(result.columns, result.rows, args.format, out)
        finally:
            if args.output:
                out.close()
    noun = "row" if len(result.rows) == 1 else "rows"
    print(f"{PROG}: {len(result.rows)} {noun}", file=sys.stderr)
    return EXIT_OK


def _split_columns(text: str) -> list[str]:
    """Split on commas outside parentheses and brackets: (0028,1050) stays whole."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _print(columns: list[str], rows: list[tuple[Any, ...]], form: str, out: Any) -> None:
    if form == "json":
        json.dump([dict(zip(columns, row, strict=True)) for row in rows], out, indent=2)
        out.write("\n")
    elif form == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        text = [["" if value is None else str(value) for value in row] for row in rows]
        print_table(list(columns), text, out)


def _write_parquet(records: list[dict[str, Any]], path: str) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "--format parquet needs pyarrow: pip install 'dicomlens[parquet]'"
        ) from None
    try:
        pq.write_table(pa.Table.from_pylist(records), path)
    except (OSError, pa.ArrowException) as exc:
        raise WriteError(f"{path}: cannot write parquet ({exc})") from exc


def add_purge(commands: Any) -> None:
    sub = command(
        commands,
        "purge",
        _run_purge,
        "Delete a catalog with its companion files (-wal, -shm, .lock): catalogs hold "
        "PHI (names, IDs, dates of every file indexed). Only dicomlens catalogs are deleted; "
        "the files indexed are not touched. The space is freed, not overwritten.",
        "  dicomlens purge --catalog archive.db --yes\n",
    )
    add_catalog_option(sub, what="the catalog to delete")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _run_purge(args: argparse.Namespace) -> int:
    from dicomlens.catalog import Catalog, purge

    end_startup()
    path = catalog_path(args)
    with Catalog(path, readonly=True) as catalog:  # refuses what is not a catalog
        counts = catalog.counts()
    what = (
        f"{path} ({counted(counts['instances'], 'instance')} of "
        f"{counted(counts['patients'], 'patient')})"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"purge deletes {what}: add --yes to confirm")
        try:
            answer = input(f"{PROG}: delete {what}? [y/N] ")
        except EOFError:  # Ctrl-D: no
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(f"{PROG}: nothing deleted", file=sys.stderr)
            return EXIT_OK
    deleted = purge(path)
    print(f"{PROG}: deleted {', '.join(str(file) for file in deleted)}", file=sys.stderr)
    return EXIT_OK


def add_catalog(commands: Any) -> None:
    sub = command(
        commands,
        "catalog",
        _run_catalog,
        "Convert between the SQLite catalog and the Parquet one: export writes a new Parquet "
        "catalog from a SQLite one, import a new SQLite catalog from a Parquet one. Both "
        "answer the same queries.",
        "  dicomlens catalog export --catalog archive.db --parquet archive-parquet/\n"
        "  dicomlens catalog import --parquet archive-parquet/ --catalog copy.db\n",
    )
    sub.add_argument("action", choices=["export", "import"], help="which way")
    sub.add_argument("--catalog", metavar="FILE", required=True, help="the SQLite catalog")
    sub.add_argument("--parquet", metavar="DIR", required=True, help="the Parquet catalog")


def _run_catalog(args: argparse.Namespace) -> int:
    from dicomlens.catalog.parquet import export_catalog, import_catalog

    end_startup()
    if args.action == "export":
        count = export_catalog(args.catalog, args.parquet)
        print(f"{PROG}: {args.parquet}: {counted(count, 'file')} from {args.catalog}",
              file=sys.stderr)  # fmt: skip
    else:
        count = import_catalog(args.parquet, args.catalog)
        print(f"{PROG}: {args.catalog}: {counted(count, 'file')} from {args.parquet}",
              file=sys.stderr)  # fmt: skip
    return EXIT_OK
