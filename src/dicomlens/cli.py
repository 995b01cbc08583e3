"""The ``dicomlens`` command line: a thin argparse layer over the library.

This is the only module that prints, reads ``sys.argv`` or decides exit codes.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from dicomlens._version import __version__
from dicomlens.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DicomlensError,
    FileError,
    SeriesError,
    UsageError,
)

PROG = "dicomlens"
_EXIT_BROKEN_PIPE = 141  # as a shell reports a process killed by SIGPIPE
_EXIT_DIFFERENT = 1
_EXIT_DIFF_TROUBLE = 2

_EPILOG = """\
tags can be written in any notation: PatientName, "Window Center", "(0028,1050)",
"(0028, 1050)", 0028,1050, 0x281050, private "(0019,xx0C)[SIEMENS CT VA0  COAD]",
paths "ReferencedImageSequence[0].ReferencedSOPInstanceUID", values "WindowCenter[1]".

examples:
  dicomlens show dicom_data/1-001.dcm
  dicomlens get "(0028, 1050)" dicom_data/
  dicomlens tag "window center"
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    # Start-up (importing pydicom and numpy) allocates many long-lived objects;
    # collecting them over and over is wasted time. _end_startup() turns it back on.
    frozen_before = gc.get_freeze_count()
    gc.disable()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            status: int = args.handler(args)
        except DicomlensError as exc:
            _error(exc)
            return exc.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            return _EXIT_BROKEN_PIPE
        finally:
            gc.enable()
            if not frozen_before:  # leave the collector as we found it (in-process callers)
                gc.unfreeze()
    return status


def _end_startup() -> None:
    """Imports are done: keep their objects out of future collections, collect again."""
    gc.freeze()
    gc.enable()


def entry() -> int:
    """The ``dicomlens`` program: :func:`main`, then a quick exit.

    At exit Python collects every object once more; after importing pydicom
    and numpy that alone takes tens of milliseconds, so the objects still alive
    are frozen (left out of that collection) first. :func:`main` itself leaves
    the collector as it found it, for in-process callers.
    """
    status = main()
    gc.freeze()
    return status


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with a known ``command``, only that subcommand is built
    (the others cost start-up time and are not needed to run it)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="See, query and compare what is inside DICOM files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    adders = {
        "tag": _add_tag,
        "show": _add_show,
        "get": _add_get,
        "find": _add_find,
        "diff": _add_diff,
        "series": _add_series,
        "volume": _add_volume,
        "render": _add_render,
        "edit": _add_edit,
    }
    for name, add in adders.items():
        if command not in adders or command == name:
            add(commands)
    return parser


def _command(
    commands: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    summary: str,
    examples: str,
) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(handler=handler)
    return sub


def _add_reading_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--force",
        action="store_true",
        help="also read files without the DICM prefix (raw data sets without file meta)",
    )


# ---------------------------------------------------------------------------
# tag
# ---------------------------------------------------------------------------


def _add_tag(commands: Any) -> None:
    sub = _command(
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
    _add_reading_options(sub)


def _run_tag(args: argparse.Namespace) -> int:
    from dicomlens.access import find
    from dicomlens.reading import read
    from dicomlens.tags import ElementRef, PathStep, TagPath, search_tags

    hits = search_tags(args.query, limit=args.limit, private=not args.no_private)
    if not hits:
        raise DicomlensError(f"nothing in the dictionary matches {args.query!r}")
    ds = read(args.file, stop_before_pixels=True, force=args.force) if args.file else None
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
        _print_json(rows)
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
    _print_table(["TAG", "KEYWORD", "NAME", "VR", "VM", ""], table)
    if ds is not None:
        print()
        for row in rows:
            where = ", ".join(row["found"]) if row["found"] else "not present"
            print(f"{row['tag']} {row['keyword'] or row['name']} in {args.file}: {where}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------


def _add_show(commands: Any) -> None:
    sub = _command(
        commands,
        "show",
        _run_show,
        "Print the full header of DICOM files, file meta first.",
        "  dicomlens show dicom_data/1-001.dcm\n"
        '  dicomlens show -t "(0028,1050)" -t PatientName dicom_data/\n'
        "  dicomlens show --grep window --no-private ct.dcm\n"
        "  dicomlens show --mask ct.dcm          # safe to paste in a bug report\n"
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
    _add_reading_options(sub)


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
        color=_use_color(args.color),
        value_width=args.width,
    )
    batch = _Batch(
        args.paths, stop_before_pixels=args.json and not args.bulk_data, force=args.force
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
        _print_json(models[0] if len(models) == 1 and not batch.many else models)
    return batch.finish()


# ---------------------------------------------------------------------------
# get
# ---------------------------------------------------------------------------


def _add_get(commands: Any) -> None:
    sub = _command(
        commands,
        "get",
        _run_get,
        "Print tag values, one row per file, for scripts.",
        '  dicomlens get "(0028, 1050)" dicom_data/1-001.dcm\n'
        "  dicomlens get PatientName -t StudyDate -t SeriesDescription dicom_data/\n"
        '  dicomlens get "OtherPatientIDsSequence[*].PatientID" ct.dcm\n'
        "  dicomlens get SliceThickness --format csv dicom_data/ > thickness.csv\n",
    )
    sub.add_argument("tag", metavar="TAG", help="tag or path to print")
    sub.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
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
    _add_reading_options(sub)


def _run_get(args: argparse.Namespace) -> int:
    from dicomlens.tags import parse_tag
    from dicomlens.values import value_json, value_text

    paths = [parse_tag(tag) for tag in [args.tag, *args.more]]
    private = any(step.ref.creator for path in paths for step in path.steps)
    wanted = None if private else {path.steps[0].ref.tag for path in paths}
    extract = functools.partial(_values_at, paths=tuple(paths))
    batch = _Batch(
        args.paths, extract=extract, stop_before_pixels=True, force=args.force, decode=wanted
    )
    columns = [str(path) for path in paths]
    rows = [(str(file), values) for file, values in batch]
    if args.format == "json":
        _print_json(
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
        _print_table(header, table)
    return batch.finish()


# ---------------------------------------------------------------------------
# find
# ---------------------------------------------------------------------------


def _add_find(commands: Any) -> None:
    sub = _command(
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
    _add_reading_options(sub)


def _run_find(args: argparse.Namespace) -> int:
    from dicomlens.tags import parse_tag
    from dicomlens.values import value_json, value_text

    extract = functools.partial(_occurrences, path=parse_tag(args.tag))
    batch = _Batch(args.paths, extract=extract, stop_before_pixels=True, force=args.force)
    found = [(str(file), *match) for file, matches in batch for match in matches]
    if args.json:
        _print_json(
            [{"file": f, "path": p, "vr": vr, "value": value_json(v)} for f, p, vr, v in found]
        )
    else:
        _print_table(
            ["FILE", "PATH", "VR", "VALUE"],
            [[f, p, vr, value_text(v, limit=80)] for f, p, vr, v in found],
        )
    return batch.finish()


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------


def _add_diff(commands: Any) -> None:
    sub = _command(
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
    _add_reading_options(sub)


def _run_diff(args: argparse.Namespace) -> int:
    from dicomlens.differences import diff, diff_folders
    from dicomlens.reading import read

    _end_startup()
    try:
        if Path(args.a).is_dir() and Path(args.b).is_dir():
            return _diff_folders(diff_folders(args.a, args.b))
        found = diff(
            read(args.a, force=args.force),
            read(args.b, force=args.force),
            file_meta=not args.no_meta,
        )
    except FileError as exc:
        _error(exc)
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
        _error(error)
    changed = sum(1 for _, _, found in result.pairs if found)
    print(
        f"{len(result.pairs)} matched, {changed} different, {len(result.only_a)} only in A, "
        f"{len(result.only_b)} only in B, {len(result.errors)} failed",
        file=sys.stderr,
    )
    if result.errors:
        return _EXIT_DIFF_TROUBLE
    return EXIT_OK if result.identical else _EXIT_DIFFERENT


# ---------------------------------------------------------------------------
# series, volume, render
# ---------------------------------------------------------------------------


def _add_series(commands: Any) -> None:
    sub = _command(
        commands,
        "series",
        _run_series,
        "List the series in folders: size, spacing, orientation and a geometry verdict.",
        "  dicomlens series dicom_data/\n"
        "  dicomlens series --json dicom_data/ | jq '.[0].geometry'\n",
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="folders, files or glob patterns")
    sub.add_argument(
        "--json", action="store_true", help="print every series with its geometry report"
    )


def _run_series(args: argparse.Namespace) -> int:
    result = _scan(args.paths)
    if args.json:
        _print_json([{**s.summary(), "geometry": s.report.to_dict()} for s in result.series])
    else:
        rows = []
        for s in result.series:
            row = s.summary()
            spacing = "x".join(_mm(v) for v in row["spacing"]) if row["spacing"] else ""
            rows.append(
                [
                    "" if row["number"] is None else str(row["number"]),
                    row["description"],
                    row["modality"],
                    str(row["files"]),
                    "x".join(map(str, row["shape"])),
                    spacing,
                    row["orientation"],
                    row["verdict"] + (f" ({row['split']})" if row["split"] else ""),
                ]
            )
        header = [
            "#",
            "DESCRIPTION",
            "MODALITY",
            "FILES",
            "ROWSxCOLSxSLICES",
            "SPACING",
            "ORIENT",
            "GEOMETRY",
        ]
        _print_table(header, rows)
    return _scan_status(result)


def _add_volume(commands: Any) -> None:
    sub = _command(
        commands,
        "volume",
        _run_volume,
        "Build the 3-D volume of a series and write it as NIfTI or NumPy with a JSON sidecar.",
        "  dicomlens volume dicom_data/ -o ct.nii.gz          # writes ct.nii.gz and ct.json\n"
        "  dicomlens volume study/ --series 3 -o t1.npz\n"
        "  dicomlens volume study/ --series 1.2.840.113619.2.55.3 -o ct.nii --stored\n",
    )
    _add_series_choice(sub, output="OUT", output_help=".nii.gz, .nii, .npz or .npy")
    sub.add_argument(
        "--stored", action="store_true", help="stored values, without RescaleSlope/Intercept"
    )


def _add_series_choice(sub: argparse.ArgumentParser, *, output: str, output_help: str) -> None:
    sub.add_argument("paths", nargs="+", metavar="PATH", help="folders, files or glob patterns")
    sub.add_argument("-o", "--output", required=True, metavar=output, help=output_help)
    sub.add_argument(
        "--series", metavar="N|UID", help="series number or UID (needed when there are several)"
    )
    sub.add_argument(
        "--skip-bad", action="store_true", help="go on without files that cannot be read (exit 1)"
    )


def _chosen_series(args: argparse.Namespace) -> tuple[Any, Any]:
    """Scan the paths and pick the series --series names (or the only one).

    A file that could not be read may have been a slice of it: that stops the
    command unless --skip-bad says to go on without such files.
    """
    from dicomlens.scanning import select_series

    result = _scan(args.paths)
    if result.errors and not args.skip_bad:
        raise SeriesError(
            f"{len(result.errors)} file(s) could not be read (above) and may be slices of this "
            "series; repair or remove them, or pass --skip-bad to go on without them"
        )
    return result, select_series(result.series, args.series)


def _run_volume(args: argparse.Namespace) -> int:
    from dicomlens.export import save_volume

    result, series = _chosen_series(args)
    volume = series.volume(rescale=not args.stored)
    sidecar = save_volume(volume, args.output, info={"series": series.summary()})
    shape = "x".join(map(str, volume.array.shape))
    verdict = volume.report.verdict
    print(f"{args.output}: {shape} {volume.array.dtype}, geometry {verdict}; sidecar {sidecar}")
    for note in volume.report.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    return _scan_status(result)


def _add_render(commands: Any) -> None:
    sub = _command(
        commands,
        "render",
        _run_render,
        "Render a slice (or a montage of all slices) as a PNG with window/level.",
        "  dicomlens render dicom_data/ -o middle.png\n"
        "  dicomlens render dicom_data/ --slice 10 --preset lung -o lung.png\n"
        "  dicomlens render ct.dcm --window 40,400 -o ct.png\n"
        "  dicomlens render dicom_data/ --montage -o all.png\n",
    )
    _add_series_choice(sub, output="OUT.png", output_help="the picture to write")
    where = sub.add_mutually_exclusive_group()
    where.add_argument(
        "--slice", type=int, metavar="N", help="slice index in sorted order (default: middle)"
    )
    where.add_argument("--montage", action="store_true", help="every slice in one picture")
    how = sub.add_mutually_exclusive_group()
    how.add_argument("--window", metavar="C,W", help="window center and width, e.g. 40,400")
    how.add_argument(
        "--preset",
        metavar="NAME",
        help="brain, subdural, lung, mediastinum, bone, abdomen, liver, or a window of the file "
        "(its number or explanation); default: the file's first window",
    )


def _run_render(args: argparse.Namespace) -> int:
    from dicomlens.export import montage, save_png
    from dicomlens.rendering import render_series

    window = _parse_window(args.window) if args.window else None
    result, series = _chosen_series(args)
    images = render_series(
        series, index=args.slice, all_slices=args.montage, window=window, preset=args.preset
    )
    save_png(montage(images) if args.montage else images[0], args.output)
    print(f"{args.output}: {len(images)} slice{'s' if len(images) != 1 else ''} of {series}")
    return _scan_status(result)


def _parse_window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--window {text!r}: expected CENTER,WIDTH such as 40,400") from None
    if width <= 0:
        raise UsageError(f"--window {text!r}: the width must be positive")
    return center, width


def _scan(paths: Sequence[str]) -> Any:
    from dicomlens.scanning import scan_folder

    _end_startup()
    progress = _Progress("scanning") if sys.stderr.isatty() else None
    result = scan_folder(paths, progress=progress)
    if progress is not None:
        progress.done()
    for error in result.errors:
        _error(error)
    if not result.series and result.errors:
        raise SeriesError(f"no readable DICOM images ({len(result.errors)} file(s) failed)")
    if not result.series:
        raise FileError(f"{', '.join(paths)}: no DICOM images found")
    return result


def _scan_status(result: Any) -> int:
    if result.errors or result.skipped:
        parts = [f"{len(result.series)} series"]
        if result.errors:
            parts.append(f"{len(result.errors)} files failed")
        if result.skipped:
            parts.append(f"{result.skipped} non-DICOM skipped")
        print(f"{PROG}: {', '.join(parts)}", file=sys.stderr)
    return EXIT_FAILED if result.errors else EXIT_OK


def _mm(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


class _Progress:
    """A one-line counter with rate on a terminal's stderr."""

    def __init__(self, label: str) -> None:
        import time

        self.label, self.clock, self.start, self.shown = (
            label,
            time.monotonic,
            time.monotonic(),
            0.0,
        )

    def __call__(self, count: int) -> None:
        now = self.clock()
        if now - self.shown >= 0.2:
            rate = count / max(now - self.start, 1e-9)
            print(f"\r{PROG}: {self.label}: {count} files ({rate:.0f}/s)", end="", file=sys.stderr)
            self.shown = now

    def done(self) -> None:
        if self.shown:
            print("\r\x1b[K", end="", file=sys.stderr)


# ---------------------------------------------------------------------------
# edit
# ---------------------------------------------------------------------------


def _add_edit(commands: Any) -> None:
    sub = _command(
        commands,
        "edit",
        _run_edit,
        "Set, delete or add elements in files or whole folders, safely (atomic writes, "
        "values checked against their VR, nothing else changed).",
        '  dicomlens edit ct.dcm --set "PatientName=Doe^Jane" -o fixed/\n'
        '  dicomlens edit dicom_data/ --set "(0028,1050)=40" --set "Window Width=400" --in-place\n'
        "  dicomlens edit study/ --delete PatientBirthDate --where Modality=CT -o clean/ "
        "--dry-run\n"
        '  dicomlens edit a.dcm --add "(0011,xx01)[ACME 1.0][LO]=batch 7" -o out/\n'
        '  dicomlens edit a.dcm --add "ReferencedImageSequence[0].ReferencedSOPInstanceUID=1.2.3" '
        "-o out/\n",
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TAG=VALUE",
        help="modify or insert (repeat; a\\b for several values)",
    )
    sub.add_argument(
        "--delete",
        action="append",
        default=[],
        metavar="TAG",
        help="remove an element, or items/values with [n] or [*]",
    )
    sub.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="TAG[VR]=VALUE",
        help="insert, creating sequence items on the way; VR needed for unknown private tags",
    )
    sub.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="TAG=VALUE",
        help="edit only files whose value matches (repeat: all must match)",
    )
    target = sub.add_mutually_exclusive_group()
    target.add_argument(
        "-o",
        "--output",
        metavar="OUTDIR",
        help="write edited copies here, mirroring the input tree",
    )
    target.add_argument(
        "--in-place", action="store_true", help="replace the originals (atomically)"
    )
    sub.add_argument(
        "--backup", action="store_true", help="with --in-place: keep the original as FILE.bak"
    )
    sub.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    sub.add_argument(
        "--allow-invalid", action="store_true", help="write values that violate their VR"
    )
    sub.add_argument(
        "--overwrite", action="store_true", help="replace existing files in the output folder"
    )
    sub.add_argument("--fail-fast", action="store_true", help="stop at the first failure")


def _run_edit(args: argparse.Namespace) -> int:
    from dicomlens.editing import edit

    _end_startup()
    results = edit(
        args.paths,
        set=args.set,
        delete=args.delete,
        add=args.add,
        where=args.where,
        out=args.output,
        in_place=args.in_place,
        backup=args.backup,
        dry_run=args.dry_run,
        allow_invalid=args.allow_invalid,
        overwrite=args.overwrite,
        fail_fast=args.fail_fast,
    )
    counts = {"edited": 0, "unchanged": 0, "non-DICOM skipped": 0, "failed": 0}
    for result in results:
        if result.error is not None:
            counts["failed"] += 1
            _error(result.error)
        elif result.skipped == "not a DICOM file":
            counts["non-DICOM skipped"] += 1
        elif result.skipped:
            counts["unchanged"] += 1
        else:
            counts["edited"] += 1
            arrow = "" if result.target == result.source else f" -> {result.target}"
            verb = "would change" if args.dry_run else "changed"
            print(f"{result.source}{arrow}: {verb} {len(result.changes)} element(s)")
            if args.dry_run:
                for change in result.changes:
                    print(f"  {change}")
    summary = ", ".join(f"{n} {label}" for label, n in counts.items() if n or label == "edited")
    print(
        f"{PROG}: {summary}{' (dry run: nothing written)' if args.dry_run else ''}", file=sys.stderr
    )
    if not results:
        raise FileError(f"{', '.join(args.paths)}: no files found")
    return EXIT_FAILED if counts["failed"] else EXIT_OK


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


class _Batch:
    """Iterate the readable files under some paths; report the others and summarise."""

    def __init__(
        self,
        paths: Sequence[str],
        *,
        extract: Callable[[Any], Any] | None = None,
        **read_options: Any,
    ) -> None:
        """``extract`` turns each dataset into what the command needs, in worker
        processes for large batches; without it the datasets themselves are yielded."""
        from dicomlens.reading import iter_files

        _end_startup()
        self.paths = paths
        self.extract = extract
        self.read_options = read_options
        self.files = list(iter_files(paths))
        self.many = len(self.files) > 1 or any(Path(p).is_dir() for p in paths)
        self.done = self.failed = self.skipped = 0

    def __iter__(self) -> Iterator[tuple[Path, Any]]:
        from dicomlens.reading import read_files

        workers = os.cpu_count() or 1
        for result in read_files(
            self.files, extract=self.extract, workers=workers, **self.read_options
        ):
            if result.error is None:
                self.done += 1
                yield result.path, result.dataset if self.extract is None else result.value
            elif result.ignorable:
                self.skipped += 1
            else:
                self.failed += 1
                _error(result.error)

    def finish(self) -> int:
        """Print the summary line when useful; the exit status."""
        if self.done + self.failed == 0:
            raise FileError(f"{', '.join(self.paths)}: no DICOM files found")
        if self.many or self.failed or self.skipped:
            parts = [f"{self.done} file{'s' if self.done != 1 else ''} read"]
            if self.failed:
                parts.append(f"{self.failed} failed")
            if self.skipped:
                parts.append(f"{self.skipped} non-DICOM skipped")
            print(f"{PROG}: {', '.join(parts)}", file=sys.stderr)
        return EXIT_FAILED if self.failed else EXIT_OK


def _values_at(ds: Any, *, paths: tuple[Any, ...]) -> list[Any]:
    """The values ``get`` prints for one file (run in worker processes)."""
    from dicomlens.access import get

    return [get(ds, path, default=None) for path in paths]


def _occurrences(ds: Any, *, path: Any) -> list[tuple[str, str, Any]]:
    """What ``find`` prints for one file (run in worker processes)."""
    from dicomlens.access import find

    return [(match.path, str(match.element.VR), match.value) for match in find(ds, path)]


def _print_table(header: list[str], rows: list[list[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _error(exc: BaseException) -> None:
    print(f"{PROG}: error: {exc}", file=sys.stderr)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: Any = None,
) -> None:
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {text}", file=sys.stderr)


def _silence_stdout() -> None:
    """After a closed pipe, stop Python from complaining when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
