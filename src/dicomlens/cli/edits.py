"""``edit``: set, delete and add elements safely."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomlens.cli._common import PROG, command, end_startup, report_error
from dicomlens.errors import (
    EXIT_FAILED,
    EXIT_OK,
    FileError,
)

# ---------------------------------------------------------------------------
# edit
# ---------------------------------------------------------------------------


def add_edit(commands: Any) -> None:
    sub = command(
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

    end_startup()
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
            report_error(result.error)
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
