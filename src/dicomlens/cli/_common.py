"""Helpers shared by the command modules: batches, tables, errors, start-up."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from dicomlens.errors import (
    EXIT_FAILED,
    EXIT_OK,
    FileError,
)

PROG = "dicomlens"


def end_startup() -> None:
    """Imports are done: keep their objects out of future collections, collect again."""
    gc.freeze()
    gc.enable()


def command(
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


def add_reading_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--force",
        action="store_true",
        help="also read files without the DICM prefix (raw data sets without file meta)",
    )
    sub.add_argument(
        "--max-depth",
        type=int,
        default=64,
        metavar="N",
        help="deepest sequence nesting accepted (default 64, as DCMTK)",
    )


class Progress:
    """A one-line counter with rate (and time left, when the total is known) on a
    terminal's stderr."""

    def __init__(self, label: str) -> None:
        import time

        self.label, self.clock, self.start, self.shown = (
            label,
            time.monotonic,
            time.monotonic(),
            0.0,
        )

    def __call__(self, count: int, total: int | None = None) -> None:
        now = self.clock()
        if now - self.shown >= 0.2:
            rate = count / max(now - self.start, 1e-9)
            if total:
                left = (total - count) / rate if rate else 0.0
                text = f"{count}/{total} files, {rate:.0f}/s, {left:.0f} s left"
            else:
                text = f"{count} files ({rate:.0f}/s)"
            print(f"\r{PROG}: {self.label}: {text}", end="", file=sys.stderr)
            self.shown = now

    def done(self) -> None:
        if self.shown:
            print("\r\x1b[K", end="", file=sys.stderr)


class Batch:
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

        end_startup()
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
                report_error(result.error)

    def finish(self) -> int:
        """Print the summary line when useful; the exit status."""
        if self.done + self.failed == 0:
            raise FileError(f"{', '.join(self.paths)}: no DICOM files found")
        if self.many:  # one file: its error line says it all
            summarise(
                f"{self.done} file{'s' if self.done != 1 else ''} read", self.failed, self.skipped
            )
        return EXIT_FAILED if self.failed else EXIT_OK


def summarise(done: str, failed: int, skipped: int, *, failed_label: str = "failed") -> None:
    """The closing line of a batch on stderr: what was done, what failed, what was skipped."""
    parts = [done]
    if failed:
        parts.append(f"{failed} {failed_label}")
    if skipped:
        parts.append(f"{skipped} non-DICOM skipped")
    print(f"{PROG}: {', '.join(parts)}", file=sys.stderr)


def counted(number: int, noun: str) -> str:
    """``1 file``, ``2 files``, ``3 studies``, ``2 series``.

    >>> counted(1, "study"), counted(3, "study"), counted(2, "series")
    ('1 study', '3 studies', '2 series')
    """
    plural = {"study": "studies", "series": "series"}.get(noun, noun + "s")
    return f"{number} {noun if number == 1 else plural}"


def print_table(header: list[str], rows: list[list[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def report_error(exc: BaseException) -> None:
    print(f"{PROG}: error: {exc}", file=sys.stderr)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: Any = None,
) -> None:
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {text}", file=sys.stderr)


def silence_stdout() -> None:
    """After a closed pipe, stop Python from complaining when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
