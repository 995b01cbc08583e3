"""The ``dicomlens`` command line: a thin argparse layer over the library.

This package is the only place that prints, reads ``sys.argv`` or decides exit
codes: ``inspecting`` (tag, show, get, find, diff), ``volumes`` (series, volume,
render), ``edits`` (edit), ``anonymizing`` (anonymize), ``cataloging`` (index, purge,
query) and ``viewing`` (view, serve) hold the commands, ``_common`` what they share.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import warnings
from collections.abc import Sequence

from dicomlens._version import __version__
from dicomlens.cli._common import PROG, report_error, show_warning, silence_stdout
from dicomlens.errors import EXIT_INTERRUPTED, DicomlensError

__all__ = ["build_parser", "entry", "main"]

# Each command's module; only the one being run is imported (start-up time).
_COMMANDS = {
    "tag": "inspecting",
    "show": "inspecting",
    "get": "inspecting",
    "find": "inspecting",
    "diff": "inspecting",
    "series": "volumes",
    "volume": "volumes",
    "render": "volumes",
    "edit": "edits",
    "anonymize": "anonymizing",
    "index": "cataloging",
    "query": "cataloging",
    "purge": "cataloging",
    "catalog": "cataloging",
    "view": "viewing",
    "serve": "viewing",
}

_EXIT_BROKEN_PIPE = 141  # as a shell reports a process killed by SIGPIPE

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
    # collecting them over and over is wasted time. end_startup() turns it back on.
    frozen_before = gc.get_freeze_count()
    gc.disable()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        try:
            status: int = args.handler(args)
        except DicomlensError as exc:
            report_error(exc)
            return exc.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            silence_stdout()
            return _EXIT_BROKEN_PIPE
        finally:
            gc.enable()
            if not frozen_before:  # leave the collector as we found it (in-process callers)
                gc.unfreeze()
    return status


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
        description="See, query, fix and use what is inside DICOM files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name, module in _COMMANDS.items():
        if command not in _COMMANDS or command == name:
            add = getattr(importlib.import_module(f"dicomlens.cli.{module}"), f"add_{name}")
            add(commands)
    return parser
