"""``view``: the local web viewer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomlens.cli._common import PROG, command, end_startup
from dicomlens.cli.cataloging import add_catalog_option, catalog_path, check_catalog_place
from dicomlens.errors import EXIT_OK


def add_view(commands: Any) -> None:
    sub = command(
        commands,
        "view",
        _run_view,
        "Browse studies, scroll slices and search tags in your web browser, on this "
        "machine only (127.0.0.1, a random token in the address). Folders given are "
        "indexed into the catalog first.",
        "  dicomlens view dicom_data/\n"
        "  dicomlens view --catalog archive.db\n"
        "  dicomlens view study/ --port 8765 --no-browser\n",
    )
    sub.add_argument("paths", nargs="*", metavar="PATH", help="folders to index first")
    add_catalog_option(sub, what="the catalog to show (and to index PATHs into)", creates=True)
    sub.add_argument("--port", type=int, metavar="N", help="port (default: a free one)")
    sub.add_argument(
        "--no-browser", action="store_true", help="print the address, do not open a browser"
    )


def _run_view(args: argparse.Namespace) -> int:
    from dicomlens.catalog import index
    from dicomlens.viewer import serve

    end_startup()
    path = catalog_path(args)
    if args.paths:
        check_catalog_place(args, path)
        report = index(args.paths, path)
        print(
            f"{PROG}: {path}: read {report.read} files, {report.unchanged} unchanged, "
            f"{len(report.errors)} failed",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        print(f"{PROG}: viewer at {url} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    serve(path, port=args.port, open_browser=not args.no_browser, announce=announce)
    return EXIT_OK
