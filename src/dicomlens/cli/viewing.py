"""``view`` (the local web viewer) and ``serve`` (the same server, for other programs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dicomlens.cli._common import PROG, command, end_startup
from dicomlens.cli.cataloging import (
    add_catalog_option,
    add_parquet_option,
    catalog_path,
    check_catalog_place,
)
from dicomlens.errors import EXIT_OK, UsageError


def add_view(commands: Any) -> None:
    sub = command(
        commands,
        "view",
        _run_view,
        "Browse studies, scroll slices and search tags in your web browser, on this "
        "machine only (127.0.0.1, a random token in the address). Folders given are "
        "indexed into the catalog first. The same server answers DICOMweb under /dicomweb.",
        "  dicomlens view dicom_data/\n"
        "  dicomlens view --catalog archive.db\n"
        "  dicomlens view study/ --port 8765 --no-browser\n"
        "  dicomlens view study/ --ohif ohif/package/dist    # OHIF at /, this viewer at "
        "/dicomlens\n",
    )
    _add_common(sub, what="the catalog to show (and to index PATHs into)")
    sub.add_argument(
        "--no-browser", action="store_true", help="print the address, do not open a browser"
    )
    sub.add_argument(
        "--ohif",
        metavar="DIR",
        help="an OHIF Viewer build to serve at / against this server's DICOMweb (the dist "
        "folder of `npm pack @ohif/app`; dicomlens's own viewer moves to /dicomlens)",
    )


def add_serve(commands: Any) -> None:
    sub = command(
        commands,
        "serve",
        _run_serve,
        "Serve the catalog over DICOMweb (QIDO-RS, WADO-RS, STOW-RS with --store) and the "
        "viewer, without opening a browser: for OHIF, 3D Slicer, Weasis, dicomweb-client "
        "and other machines. Prints the DICOMweb root and the token clients send as "
        "'Authorization: Bearer TOKEN'. Loopback only unless --host; read-only unless --store.",
        "  dicomlens serve dicom_data/\n"
        "  dicomlens serve --catalog archive.db --port 8042\n"
        "  dicomlens serve --catalog archive.db --store incoming/      # STOW-RS into incoming/\n"
        "  dicomlens serve --catalog archive.db --host 0.0.0.0 --certfile cert.pem "
        "--keyfile key.pem\n"
        "  dicomlens serve --catalog archive.db --cors https://viewer.example.org\n",
    )
    _add_common(sub, what="the catalog to serve (and to index PATHs into)")
    sub.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                     help="address to listen on (default 127.0.0.1; another needs TLS or "
                          "--insecure-http)")  # fmt: skip
    sub.add_argument("--certfile", type=Path, metavar="FILE", help="TLS certificate (PEM)")
    sub.add_argument("--keyfile", type=Path, metavar="FILE", help="TLS private key (PEM)")
    sub.add_argument("--insecure-http", action="store_true",
                     help="allow plain HTTP on a non-loopback --host (the token travels "
                          "in clear text)")  # fmt: skip
    sub.add_argument("--name", action="append", default=[], metavar="HOST",
                     help="a host name clients use for this machine (repeatable; requests "
                          "naming any other host are refused)")  # fmt: skip
    sub.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                     help="an origin whose pages may call the server, e.g. "
                          "https://viewer.example.org (repeatable)")  # fmt: skip
    sub.add_argument("--token-file", type=Path, metavar="FILE",
                     help="also write the token to FILE (mode 0600), for scripts")  # fmt: skip


def _add_common(sub: argparse.ArgumentParser, *, what: str) -> None:
    sub.add_argument("paths", nargs="*", metavar="PATH", help="folders to index first")
    add_catalog_option(sub, what=what, creates=True)
    add_parquet_option(sub, what=what)
    sub.add_argument("--port", type=int, metavar="N", help="port (default: a free one)")
    sub.add_argument(
        "--store",
        metavar="DIR",
        help="accept STOW-RS: store instances sent to /dicomweb/studies in DIR "
        "(as STUDY/SERIES/SOP.dcm) and index them (default: read-only)",
    )


def _prepare(args: argparse.Namespace) -> str:
    """Index the PATHs given into the catalog; its path."""
    from dicomlens.catalog import index

    end_startup()
    if args.parquet:
        return _from_parquet(args)
    path = catalog_path(args)
    if args.paths:
        check_catalog_place(args, path)
        report = index(args.paths, path)
        print(
            f"{PROG}: {path}: read {report.read} files, {report.unchanged} unchanged, "
            f"{len(report.errors)} failed",
            file=sys.stderr,
        )
    return path


def _from_parquet(args: argparse.Namespace) -> str:
    """A private SQLite copy of the Parquet catalog (deleted at exit) for the server."""
    import atexit
    import shutil
    import tempfile

    from dicomlens.catalog.parquet import import_catalog, index_parquet

    if args.catalog:
        raise UsageError("--catalog and --parquet name two catalogs: give one")
    if args.store:
        raise UsageError("--store indexes what it receives into a SQLite catalog: use --catalog")
    if args.paths:
        report = index_parquet(args.paths, args.parquet)
        print(f"{PROG}: {args.parquet}: read {report.read} files, {report.unchanged} unchanged, "
              f"{len(report.errors)} failed", file=sys.stderr)  # fmt: skip
    folder = tempfile.mkdtemp(prefix="dicomlens-")  # mode 0700: the copy holds PHI
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = str(Path(folder) / "catalog.db")
    count = import_catalog(args.parquet, path)
    print(f"{PROG}: {args.parquet}: {count} files loaded for serving", file=sys.stderr)
    return path


def _run_view(args: argparse.Namespace) -> int:
    from dicomlens.viewer import serve
    from dicomlens.viewer.ohif import ohif_page

    if args.ohif is not None:
        ohif_page(args.ohif)  # before any indexing
    path = _prepare(args)

    def announce(url: str) -> None:
        print(f"{PROG}: viewer at {url} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    serve(path, port=args.port, open_browser=not args.no_browser, announce=announce,
          store=args.store, ohif=args.ohif)  # fmt: skip
    return EXIT_OK


def _run_serve(args: argparse.Namespace) -> int:
    from dicomlens.viewer import Exposure, serve

    exposure = Exposure(args.host, args.certfile, args.keyfile, args.insecure_http,
                        tuple(args.name), tuple(args.cors))  # fmt: skip
    exposure.check()
    path = _prepare(args)

    def announce(url: str) -> None:
        root, _, token = url.partition("/?token=")
        if args.token_file is not None:
            _write_token(args.token_file, token)
        print(f"{root}/dicomweb", flush=True)  # on stdout, for scripts
        print(f"{PROG}: token {token} (send 'Authorization: Bearer {token}')", file=sys.stderr)
        print(f"{PROG}: viewer at {url} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    serve(path, port=args.port, open_browser=False, announce=announce, exposure=exposure,
          store=args.store)  # fmt: skip
    return EXIT_OK


def _write_token(path: Path, token: str) -> None:
    import os

    from dicomlens.editing import atomic_output

    with atomic_output(path, mode=0o600) as temporary:
        temporary.write_text(token + "\n")
    os.chmod(path, 0o600)
