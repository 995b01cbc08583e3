"""``anonymize``: de-identify files and folders by DICOM PS3.15 Annex E."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dicomlens.cli._common import PROG, Progress, command, counted, end_startup, report_error
from dicomlens.errors import EXIT_FAILED, EXIT_OK, FileError

_KEY_VARIABLE = "DICOMLENS_KEY"
_SKIP_COUNTED = {  # a skipped result's first word: how the summary counts it
    "DICOMDIR": "DICOMDIR omitted",
    "identical:": "already in the output (identical bytes)",
}
_OPTIONS_HELP = """\
profile options (--keep, repeat or separate with commas):
  dates        Retain Longitudinal Temporal Information, Modified Dates: every date
               shifted by one interval per patient (intervals kept)
  uids         Retain UIDs: keep the original UIDs
  device       Retain Device Identity: serial numbers, station names
  institution  Retain Institution Identity: institution names and addresses
  patient      Retain Patient Characteristics: age, sex, size, weight, ...
  descriptors  Clean Descriptors: keep descriptions, with every identifier of the
               file (names, IDs, dates) blanked out of them
  private      Retain Safe Private: keep the private elements named by --safe-private
"""


def add_anonymize(commands: Any) -> None:
    sub = command(
        commands,
        "anonymize",
        _run_anonymize,
        "De-identify files or folders by the DICOM PS3.15 Basic Application Level "
        "Confidentiality Profile, consistently across every file of the run; each output is "
        "checked for the removed values before it is written.",
        "  dicomlens anonymize dicom_data/ -o shared/\n"
        '  dicomlens anonymize study/ -o shared/ --key "$SECRET" --keep dates,patient\n'
        "  dicomlens anonymize study/ -o shared/ --map identities.json   # keep it private\n"
        "  dicomlens anonymize us/ -o shared/ --keep private --safe-private "
        '"(0019,xx1E)[GEMS_ACQU_01]"\n'
        "  dicomlens anonymize study/ -o shared/ --strict --dry-run\n\n" + _OPTIONS_HELP,
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or glob patterns")
    sub.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTDIR",
        help="where the de-identified files go, as STUDY/SERIES/INSTANCE.dcm by their new UIDs",
    )
    sub.add_argument(
        "--key",
        metavar="KEY",
        help="secret that makes the run repeatable: the same input and key give the same "
        f"output (default: ${_KEY_VARIABLE}, else a random key for this run)",
    )
    sub.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="OPTION",
        help="profile option to apply (see below)",
    )
    sub.add_argument(
        "--safe-private",
        action="append",
        default=[],
        metavar="TAG",
        help="private element to keep with --keep private, with its creator (repeat)",
    )
    sub.add_argument(
        "--map",
        metavar="FILE",
        help="write the identity map (original to new UIDs, pseudonyms, date shifts) here, "
        "readable by you only",
    )
    sub.add_argument(
        "--strict",
        action="store_true",
        help="fail files whose pixels may show burned-in text, instead of warning",
    )
    sub.add_argument("--dry-run", action="store_true", help="de-identify and check, write nothing")
    sub.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs and identity map"
    )
    sub.add_argument("--fail-fast", action="store_true", help="stop at the first failure")


def _run_anonymize(args: argparse.Namespace) -> int:
    from dicomlens.anonymization import anonymize

    end_startup()
    keep = [name for option in args.keep for name in option.split(",") if name.strip()]
    progress = Progress("anonymizing") if sys.stderr.isatty() else None
    try:
        results = anonymize(
            args.paths,
            out=args.output,
            key=args.key or os.environ.get(_KEY_VARIABLE) or None,
            keep=keep,
            safe_private=args.safe_private,
            map_file=args.map,
            dry_run=args.dry_run,
            strict=args.strict,
            overwrite=args.overwrite,
            fail_fast=args.fail_fast,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.done()
    written = failed = 0
    skipped: dict[str, int] = {}
    studies, series, patients = set(), set(), set()
    for result in results:
        for warning in result.warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        if result.error is not None:
            failed += 1
            report_error(result.error)
        elif result.skipped:
            reason = _SKIP_COUNTED.get(result.skipped.split()[0], "non-DICOM skipped")
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            written += 1
            assert result.target is not None
            studies.add(result.target.parent.parent.name)
            series.add(result.target.parent)
            patients.add(result.patient[1] if result.patient else "")
            if args.dry_run:
                print(f"{result.source} -> {result.target}")
    if not results:
        raise FileError(f"{', '.join(args.paths)}: no files found")
    verb = "would write" if args.dry_run else "anonymized"
    counts = ", ".join(
        counted(n, noun) for n, noun in ((len(patients), "patient"), (len(studies), "study"),
                                         (len(series), "series"))
    )  # fmt: skip
    parts = [f"{verb} {counted(written, 'file')} ({counts}) into {args.output}"]
    if written:
        parts[0] += "; no removed value found in any output"
    if failed:
        parts.append(f"{failed} failed")
    parts += [f"{count} {reason}" for reason, count in sorted(skipped.items())]
    if args.map and not args.dry_run:
        parts.append(f"identity map in {args.map}")
    print(f"{PROG}: {', '.join(parts)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
