"""``tag``, ``show``, ``get``, ``find`` and ``diff``: looking inside files."""

from __future__ import annotations

import argparse
import functools
import glob
import sys
from pathlib import Path
from typing import Any

from dicomlens.cli._common import (
    Batch,
    add_reading_options,
    command,
    end_startup,
    print_json,
    print_table,
    report_error,
    use_color,
)
from dicomlens.errors import (
    EXIT_OK,
    DicomlensError,
    FileError,
    UnknownTagError,
    UsageError,
)

_EXIT_DIFFERENT = 1
_EXIT_DIFF_TROUBLE = 2


# ---------------------------------------------------------------------------
# tag
# ---------------------------------------------------------------------------


def add_tag(commands: Any) -> None:
    sub = command(
        commands,
        "tag",
        _run_tag,
        "Search the data dictionary (public and private) by keyword, name or number.",
        '  dicomlens tag "window center"\n'
        "  dicomlens tag 0x00200032\n"
        "  dicomlens tag ImagePosition\n"
        "  dicomlens tag PatientID --in dicom_data/1-001.dcm\n",
    )
    sub.add_argument("query", help="keyword, name, number or part of a name")
    sub.add_argument(
        "--in", dest="file", metavar="FILE", help="also say whether and where FILE has it"
    )
    sub.add_argument("--limit", type=int, default=20, help="most entries to list (default 20)")
    sub.add_argument("--no-private", action="store_true", help="leave out private dictionaries")
    sub.add_argument("--json", action="store_true", help="print JSON")
    add_reading_options(sub)


def _run_tag(args: argparse.Namespace) -> int:
    from dicomlens.access import find
    from dicomlens.reading import read
    from dicomlens.tags import ElementRef, PathStep, TagPath, search_tags

    hits = search_tags(args.query, limit=args.limit, private=not args.no_private)
    if not hits:
        raise DicomlensError(f"nothing in the dictionary matches {args.query!r}")
    ds = (
        read(args.file, stop_before_pixels=True, force=args.force, max_depth=args.max_depth)
        if args.file
        else None
    )
    rows = []
    for info in hits:
        row: dict[str, Any] = {
            "tag": f"({info.tag.group:04X},{info.tag.element:04X})",
            "keyword": info.keyword,
            "name": info.name,
            "VR": info.VR,
            "VM": info.VM,
            "retired": info.retired,
            "creator": info.creator,
        }
        if ds is not None:
            ref = ElementRef(info.tag.group, info.tag.element & 0xFF, info.creator)
            spec = TagPath((PathStep(ref),)) if info.creator else info.tag
            row["found"] = [match.path for match in find(ds, spec)]
        rows.append(row)
    if args.json:
        print_json(rows)
        return EXIT_OK
    table = [
        [
            row["tag"],
            row["keyword"] or (f"[{row['creator']}]" if row["creator"] else ""),
            row["name"],
            row["VR"],
            row["VM"],
            "retired" if row["retired"] else "",
        ]
        for row in rows
    ]
    print_table(["TAG", "KEYWORD", "NAME", "VR", "VM", ""], table)
    if ds is not None:
        print()
        for row in rows:
            where = ", ".join(row["found"]) if row["found"] else "not present"
            print(f"{row['tag']} {row['keyword'] or row['name']} in {args.file}: {where}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------


def add_show(commands: Any) -> None:
    sub = command(
        commands,
        "show",
        _run_show,
        "Print the full header of DICOM files, file meta first.",
        "  dicomlens show dicom_data/1-001.dcm\n"
        '  dicomlens show -t "(0028,1050)" -t PatientName dicom_data/\n'
        "  dicomlens show --grep window --no-private ct.dcm\n"
        '  dicomlens show --names --grep "window center" ct.dcm   # names as print(ds)\n'
        "  dicomlens show --mask ct.dcm          # safe to paste in a bug report\n"
        "  dicomlens show --salvage cut.dcm      # a truncated file: what is there\n"
        "  dicomlens show --json ct.dcm | jq .dataset\n",
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    sub.add_argument(
        "-t",
        "--tag",
        "--tags",
        dest="tag",
        action="append",
        default=[],
        metavar="TAG",
        help="show only this tag or path (repeat)",
    )
    sub.add_argument(
        "--grep", metavar="TEXT", help="only elements whose tag, name or value contains TEXT"
    )
    sub.add_argument("--no-private", action="store_true", help="hide private elements")
    sub.add_argument(
        "--salvage",
        action="store_true",
        help="show what a truncated file holds before its cut (and where the cut is)",
    )
    sub.add_argument(
        "--names",
        action="store_true",
        help="label elements by their dictionary name (Window Center), as print(ds) does",
    )
    sub.add_argument(
        "--depth", type=int, metavar="N", help="expand sequences N levels deep (0: none)"
    )
    sub.add_argument(
        "--mask", action="store_true", help="replace names, dates and identifiers by ***"
    )
    sub.add_argument(
        "--json", action="store_true", help="DICOM JSON model (PS3.18 Annex F), file meta included"
    )
    sub.add_argument(
        "--bulk-data",
        action="store_true",
        help="with --json: include binary values over 1 KiB as InlineBinary",
    )
    sub.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour output (default: auto)",
    )
    sub.add_argument(
        "--width", type=int, default=80, metavar="N", help="longest value shown (default 80)"
    )
    add_reading_options(sub)


def _run_show(args: argparse.Namespace) -> int:
    from dicomlens.dump import DumpOptions, dump, to_json_model
    from dicomlens.tags import parse_tag

    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    options = DumpOptions(
        tags=tuple(parse_tag(tag) for tag in args.tag),
        grep=args.grep,
        private=not args.no_private,
        depth=args.depth,
        mask=args.mask,
        color=use_color(args.color),
        value_width=args.width,
        names=args.names,
    )
    batch = Batch(
        args.paths,
        stop_before_pixels=args.json and not args.bulk_data,
        force=args.force,
        max_depth=args.max_depth,
        salvage=args.salvage,
    )
    models = []
    for count, (path, ds) in enumerate(batch):
        if args.json:
            models.append(
                {"path": str(path), **to_json_model(ds, bulk_data=args.bulk_data, mask=args.mask)}
            )
            continue
        if batch.many:
            print(f"{'' if count == 0 else chr(10)}== {path} ==")
        print(dump(ds, options))
    if args.json and models:
        print_json(models[0] if len(models) == 1 and not batch.many else models)
    return batch.finish()


# ---------------------------------------------------------------------------
# get
# ---------------------------------------------------------------------------


def add_get(commands: Any) -> None:
    sub = command(
        commands,
        "get",
        _run_get,
        "Print tag values, one row per file, for scripts.",
        '  dicomlens get "(0028, 1050)" dicom_data/1-001.dcm\n'
        "  dicomlens get PatientName -t StudyDate -t SeriesDescription dicom_data/\n"
        "  dicomlens get ImagePositionPatient SliceLocation dicom_data/   # several tags\n"
        '  dicomlens get "OtherPatientIDsSequence[*].PatientID" ct.dcm\n'
        "  dicomlens get SliceThickness --format csv dicom_data/ > thickness.csv\n",
    )
    sub.add_argument("tag", metavar="TAG", help="tag or path to print")
    sub.add_argument(
        "paths",
        nargs="+",
        metavar="[TAG...] PATH",
        help="more tags (those that are not files), then files, folders or glob patterns",
    )
    sub.add_argument(
        "-t",
        "--tag",
        dest="more",
        action="append",
        default=[],
        metavar="TAG",
        help="another column",
    )
    sub.add_argument(
        "--format",
        choices=["table", "tsv", "csv", "json"],
        default="table",
        help="output format (default: table; one file and one tag print the value alone)",
    )
    add_reading_options(sub)


def _leading_tags(arguments: list[str]) -> tuple[list[str], list[str]]:
    """Split ``get A B FILE...``: leading arguments that name no file, folder or glob
    match and do not look like a path are tags (a misspelt keyword is reported as one);
    the rest are paths, the last argument always."""
    from dicomlens.errors import UnknownTagError
    from dicomlens.tags import parse_tag

    tags: list[str] = []
    for number, argument in enumerate(arguments[:-1]):
        path_like = "/" in argument or ("." in argument and "[" not in argument)
        if path_like or Path(argument).exists():
            return tags, arguments[number:]
        pattern = glob.has_magic(argument)  # "[CREATOR]" of a private tag looks like one
        if pattern and glob.glob(argument):
            return tags, arguments[number:]
        try:
            parse_tag(argument)
        except UnknownTagError:
            if pattern:
                return tags, arguments[number:]
            raise  # names the closest keywords
        tags.append(argument)
    return tags, arguments[-1:]


def _run_get(args: argparse.Namespace) -> int:
    from dicomlens.tags import parse_tag
    from dicomlens.values import value_json, value_text

    more_tags, args.paths = _leading_tags(args.paths)
    paths = [parse_tag(tag) for tag in [args.tag, *more_tags, *args.more]]
    private = any(step.ref.creator for path in paths for step in path.steps)
    wanted = None if private else {path.steps[0].ref.tag for path in paths}
    extract = functools.partial(_values_at, paths=tuple(paths))
    batch = Batch(
        args.paths,
        extract=extract,
        stop_before_pixels=True,
        force=args.force,
        max_depth=args.max_depth,
        decode=wanted,
    )
    columns = [str(path) for path in paths]
    rows = [(str(file), values) for file, values in batch]
    if args.format == "json":
        print_json(
            [
                {"file": file, **dict(zip(columns, map(value_json, values), strict=True))}
                for file, values in rows
            ]
        )
    elif args.format in ("csv", "tsv"):
        import csv

        writer = csv.writer(
            sys.stdout, delimiter="," if args.format == "csv" else "\t", lineterminator="\n"
        )
        writer.writerow(["file", *columns])
        writer.writerows([file, *map(value_text, values)] for file, values in rows)
    elif not batch.many and len(columns) == 1:
        for _, values in rows:
            print(value_text(values[0]))
    else:
        header = (["FILE"] if batch.many else []) + columns
        table = [
            ([file] if batch.many else []) + [value_text(v) for v in values]
            for file, values in rows
        ]
        print_table(header, table)
    return batch.finish()


# ---------------------------------------------------------------------------
# find
# ---------------------------------------------------------------------------


def add_find(commands: Any) -> None:
    sub = command(
        commands,
        "find",
        _run_find,
        "Find every occurrence of a tag at any depth (sequences, functional groups).",
        "  dicomlens find ImagePositionPatient enhanced_mr.dcm\n"
        '  dicomlens find "PlanePositionSequence.ImagePositionPatient" dicom_data/\n'
        "  dicomlens find ReferencedSOPInstanceUID --json rtstruct.dcm\n",
    )
    sub.add_argument("tag", metavar="TAG", help="tag, or the tail of a path, to look for")
    sub.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    sub.add_argument("--json", action="store_true", help="print JSON")
    add_reading_options(sub)


def _run_find(args: argparse.Namespace) -> int:
    from dicomlens.tags import parse_tag
    from dicomlens.values import value_json, value_text

    try:
        tag = parse_tag(args.tag)
    except UnknownTagError:
        if Path(args.tag).exists():
            raise UsageError(f"{args.tag!r} is a file or folder, not a tag: the tag comes "
                             "first, as in dicomlens find TAG PATH") from None  # fmt: skip
        raise
    extract = functools.partial(_occurrences, path=tag)
    batch = Batch(
        args.paths,
        extract=extract,
        stop_before_pixels=True,
        force=args.force,
        max_depth=args.max_depth,
    )
    found = [(str(file), *match) for file, matches in batch for match in matches]
    if args.json:
        print_json(
            [{"file": f, "path": p, "vr": vr, "value": value_json(v)} for f, p, vr, v in found]
        )
    else:
        print_table(
            ["FILE", "PATH", "VR", "VALUE"],
            [[f, p, vr, value_text(v, limit=80)] for f, p, vr, v in found],
        )
    return batch.finish()


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------


def add_diff(commands: Any) -> None:
    sub = command(
        commands,
        "diff",
        _run_diff,
        "Compare two files, or two folders matched by SOP Instance UID. "
        "Exit status: 0 identical, 1 different, 2 trouble.",
        "  dicomlens diff original.dcm edited.dcm\n  dicomlens diff study_before/ study_after/\n",
    )
    sub.add_argument("a", metavar="A", help="file or folder")
    sub.add_argument("b", metavar="B", help="file or folder")
    sub.add_argument(
        "--no-meta", action="store_true", help="ignore the file meta information (group 0002)"
    )
    add_reading_options(sub)


def _run_diff(args: argparse.Namespace) -> int:
    from dicomlens.differences import diff, diff_folders
    from dicomlens.reading import read

    end_startup()
    try:
        if Path(args.a).is_dir() and Path(args.b).is_dir():
            return _diff_folders(diff_folders(args.a, args.b))
        found = diff(
            read(args.a, force=args.force, max_depth=args.max_depth),
            read(args.b, force=args.force, max_depth=args.max_depth),
            file_meta=not args.no_meta,
        )
    except FileError as exc:
        report_error(exc)
        return _EXIT_DIFF_TROUBLE
    for difference in found:
        print(difference)
    return _EXIT_DIFFERENT if found else EXIT_OK


def _diff_folders(result: Any) -> int:
    for path_a, path_b, found in result.pairs:
        if found:
            print(f"--- {path_a}\n+++ {path_b}")
            for difference in found:
                print(difference)
    for path in result.only_a:
        print(f"only in A: {path}")
    for path in result.only_b:
        print(f"only in B: {path}")
    for error in result.errors:
        report_error(error)
    changed = sum(1 for _, _, found in result.pairs if found)
    print(
        f"{len(result.pairs)} matched, {changed} different, {len(result.only_a)} only in A, "
        f"{len(result.only_b)} only in B, {len(result.errors)} failed",
        file=sys.stderr,
    )
    if result.errors:
        return _EXIT_DIFF_TROUBLE
    return EXIT_OK if result.identical else _EXIT_DIFFERENT


def _values_at(ds: Any, *, paths: tuple[Any, ...]) -> list[Any]:
    """The values ``get`` prints for one file (run in worker processes)."""
    from dicomlens.access import get

    return [get(ds, path, default=None) for path in paths]


def _occurrences(ds: Any, *, path: Any) -> list[tuple[str, str, Any]]:
    """What ``find`` prints for one file (run in worker processes)."""
    from dicomlens.access import find

    return [(match.path, str(match.element.VR), match.value) for match in find(ds, path)]
