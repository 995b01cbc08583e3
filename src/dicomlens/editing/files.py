"""Editing files and folders: read, edit in memory, check, write atomically.

:func:`edit` plans every input and output before the first write, edits files in
parallel and reports one :class:`FileEdit` per file; a file that fails is left
byte-identical and the batch goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dicomlens.access import get
from dicomlens.editing.operations import Action, Change, Edit, apply_edits, split_assignment
from dicomlens.editing.writing import (
    atomic_output,
    is_within,
    remove_stale_temporaries,
    sync_folders,
)
from dicomlens.errors import (
    CorruptDicomError,
    DicomlensError,
    DicomlensWarning,
    EditError,
    FileError,
    NotDicomError,
    TruncatedPixelDataWarning,
    UsageError,
    WriteError,
)
from dicomlens.reading import examine, fingerprint, has_executable_preamble, iter_files, read
from dicomlens.tags import TagPath, parse_tag
from dicomlens.values import value_text

__all__ = ["FileEdit", "edit", "read_for_writing", "recording_failures"]

_SHORT_LENGTH_VRS: Final = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL",
     "SS", "ST", "TM", "UI", "UL", "US"}
)  # fmt: skip
_PARALLEL_FROM: Final = 64  # files: below this a process pool costs more than it saves
_ALWAYS_DECODED: Final = frozenset({0x00080005, 0x00080016, 0x00080018})  # charset, SOP UIDs


@dataclass
class FileEdit:
    """What happened to one file: its changes and where they went, or why not."""

    source: Path
    target: Path | None = None
    changes: list[Change] = field(default_factory=list)
    skipped: str = ""
    error: DicomlensError | None = None
    written: bool = False


def edit(
    paths: Iterable[str | os.PathLike[str]],
    *,
    set: Sequence[str] = (),
    delete: Sequence[str] = (),
    add: Sequence[str] = (),
    where: Sequence[str] = (),
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    backup: bool = False,
    dry_run: bool = False,
    allow_invalid: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
) -> list[FileEdit]:
    """Edit files, folders or patterns: set, delete or add elements, safely.

    Each file is read whole, edited in memory, validated and written through
    :func:`atomic_output` to ``out`` (mirroring the input tree) or over itself
    with ``in_place`` (a symbolic link: over the file it points to; other hard
    links keep the old content); a failure leaves the original byte-identical.
    Everything not edited is kept (transfer syntax, file meta, private blocks,
    encapsulated pixel data), except retired group length elements (gggg,0000),
    which pydicom does not write. A file
    that changes on disk while it is being edited is not overwritten. The input
    list is taken before the first write, so outputs inside an input folder are
    not edited again.

    Parameters
    ----------
    set, delete, add
        ``TAG=VALUE`` / ``TAG`` / ``TAG[VR]=VALUE`` in any tag notation
        (``add`` also creates missing sequence items).
    where
        ``TAG=VALUE`` conditions, all of which a file must meet to be edited.
    dry_run
        Report the changes without writing anything.
    fail_fast
        Stop at the first failure (it is re-raised).

    Examples
    --------
    >>> import tempfile
    >>> from pydicom.data import get_testdata_file
    >>> ct = get_testdata_file("CT_small.dcm")
    >>> (result,) = edit([ct], set=["PatientName=Doe^Jane"], out=tempfile.mkdtemp())
    >>> [str(change) for change in result.changes]
    ['~ PatientName: CompressedSamples^CT1 -> Doe^Jane']
    """
    if (out is None) == (not in_place) and not dry_run:
        raise UsageError("choose where the results go: an output folder (-o) or --in-place")
    if out is not None and in_place:
        raise UsageError("-o and --in-place exclude each other")
    edits = [Edit.parse(Action.SET, t) for t in set] + [
        Edit.parse(Action.DELETE, t) for t in delete
    ]
    edits += [Edit.parse(Action.ADD, t) for t in add]
    if not edits:
        raise UsageError("nothing to do: give --set, --delete or --add")
    conditions = [_condition(text) for text in where]
    job = _Job(tuple(edits), tuple(conditions), allow_invalid, dry_run, backup, overwrite)
    tasks = _plan(paths, Path(out) if out is not None else None, in_place=in_place)
    if not dry_run:
        remove_stale_temporaries(target.parent for _, target, _, _ in tasks)
    workers = 1 if fail_fast else 2 * (os.cpu_count() or 1)  # fsync waits overlap work
    if workers < 2 or len(tasks) < _PARALLEL_FROM:
        results = []
        try:
            for task in tasks:
                results.append(job(task))
                if fail_fast and results[-1].error is not None:
                    raise results[-1].error
        finally:
            sync_folders(r.target for r in results if r.written)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(job, tasks, chunksize=max(8, len(tasks) // (workers * 8))))
    sync_folders(r.target for r in results if r.written)
    return results


@dataclass(frozen=True)
class _Job:
    """Edit one planned file; a picklable callable for the process pool."""

    edits: tuple[Edit, ...]
    conditions: tuple[tuple[TagPath, str], ...]
    allow_invalid: bool
    dry_run: bool
    backup: bool
    overwrite: bool

    def __call__(self, task: tuple[Path, Path, FileError | None, bool]) -> FileEdit:
        source, target, error, explicit = task
        result = FileEdit(source, target)
        with recording_failures(result, explicit=explicit):
            if error is not None:
                raise error
            _edit_one(result, self)
        return result

    @property
    def decode(self) -> frozenset[int] | None:
        """The top-level elements the job reads or changes (None: all of them)."""
        firsts = [e.path.steps[0].ref for e in self.edits] + [
            c[0].steps[0].ref for c in self.conditions
        ]
        if any(ref.creator is not None for ref in firsts):
            return None
        return frozenset(ref.tag for ref in firsts) | _ALWAYS_DECODED


def _condition(text: str) -> tuple[TagPath, str]:
    tag_text, equals, value = split_assignment(text)
    if not equals:
        raise UsageError(f"--where {text!r}: expected TAG=VALUE")
    return parse_tag(tag_text), value


def _plan(
    paths: Iterable[str | os.PathLike[str]], out: Path | None, *, in_place: bool
) -> list[tuple[Path, Path, FileError | None, bool]]:
    """Source, target, listing error and whether the user named the file, for
    every file, decided before any write."""
    planned: list[tuple[Path, Path, FileError | None, bool]] = []
    for given in paths:
        root = Path(given)
        for path, error, explicit in iter_files([given]):
            if out is not None and is_within(path, out):
                continue  # our own earlier output
            if in_place or out is None:
                target = path
            else:
                relative = path.relative_to(root) if root.is_dir() else Path(path.name)
                target = out / relative
            planned.append((path, target, error, explicit))
    return planned


@contextlib.contextmanager
def recording_failures(result: Any, *, explicit: bool) -> Iterator[None]:
    """Record a batch file's failure on its result (``error``), except a non-DICOM file
    met inside a folder, which is skipped (``skipped``); the batch goes on either way."""
    try:
        yield
    except NotDicomError as exc:
        if explicit:
            result.error = exc
        else:
            result.skipped = "not a DICOM file"
    except DicomlensError as exc:
        result.error = exc


def _edit_one(result: FileEdit, job: _Job) -> None:
    """Read, check, edit and write one file (see :func:`edit`).

    Only the elements the job touches are decoded: the others are written back
    exactly as read, except odd-length values, which are re-encoded to be padded.
    """
    source, target = result.source, result.target
    assert target is not None
    in_place = target == source
    examine(source)  # a clear error for a missing file, a pipe, a folder, named as given
    if in_place and source.is_symlink():
        target = result.target = source.resolve()  # edit the file the link points to
    with _locked(target if in_place else source, exclusive=in_place and not job.dry_run):
        before = fingerprint(source)
        ds = read_for_writing(source, decode=job.decode)
        if not all(_matches(ds, path, value) for path, value in job.conditions):
            result.skipped = "does not match --where"
            return
        try:
            result.changes = apply_edits(ds, job.edits, allow_invalid=job.allow_invalid)
        except EditError as exc:
            raise EditError(f"{source}: {exc}") from exc
        if not result.changes:
            result.skipped = "nothing to change"
            return
        if job.dry_run:
            return
        if not in_place and target.exists() and not job.overwrite:
            raise WriteError(f"{target}: output exists (use --overwrite)")
        if has_executable_preamble(ds):
            ds.preamble = b"\x00" * 128  # CVE-2019-11687: no executable headers in our output
        if in_place and fingerprint(source) != before:
            raise WriteError(f"{source}: file changed by another process; not overwritten")
        if in_place and target.stat().st_nlink > 1:
            warnings.warn(
                f"{target}: has {target.stat().st_nlink - 1} other hard link(s); they keep "
                "the old content",
                DicomlensWarning,
                stacklevel=2,
            )
        if job.backup and in_place:
            with atomic_output(target.with_name(target.name + ".bak")) as copy:
                copy.write_bytes(target.read_bytes())
        try:
            _prepare_for_writing(ds)
        except Exception as exc:  # pydicom's value converters raise many kinds
            raise CorruptDicomError(f"{source}: cannot decode ({_one_line(exc)})") from exc
        with atomic_output(target, sync_folder=False) as temporary:  # folders: once per batch
            _save(ds, temporary, source)
        result.written = True


def _save(ds: Dataset, temporary: Path, source: Path) -> None:
    """Write ``ds``; what pydicom refuses to encode (command or meta elements in the
    data set, a garbled transfer syntax) is an error about the source file."""
    try:
        ds.save_as(temporary, enforce_file_format=False)
    except (ValueError, TypeError, AttributeError, KeyError, struct.error) as exc:
        raise CorruptDicomError(f"{source}: cannot be written back ({_one_line(exc)})") from exc


def _one_line(exc: BaseException) -> str:
    """The first line of a message (pydicom appends whole tracebacks to some)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _prepare_for_writing(ds: Dataset) -> None:
    """Decode what cannot be written back raw: every value when raw values lack
    the VR an explicit-VR file needs (files read as implicit VR despite their
    transfer syntax), and top-level values of odd length (so that pydicom pads them)."""
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    explicit = syntax is not None and syntax.is_transfer_syntax and not syntax.is_implicit_VR
    odd: list[BaseTag] = []
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement):
            continue
        if explicit and raw.VR is None:
            _check_short_lengths(ds)
            return
        if raw.length % 2 and raw.length != 0xFFFFFFFF:
            odd.append(tag)
    for tag in odd:
        ds[tag]


def _check_short_lengths(ds: Dataset) -> None:
    """Decode every value, and refuse those too long for the 16-bit length field their
    VR has in explicit VR (read as implicit VR, they had 32 bits): pydicom would
    write a wrong length and so a file nobody can read."""
    for element in ds.iterall():
        value = element.value
        if element.VR in _SHORT_LENGTH_VRS and _encoded_length(value) > 0xFFFF:
            raise CorruptDicomError(
                f"{_name(element)} ({element.VR}) holds {_encoded_length(value)} bytes, more "
                "than its VR can hold in this transfer syntax"
            )


def _encoded_length(value: Any) -> int:
    """About the bytes a text or binary value takes (several values: with separators)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | MultiValue):
        return sum(_encoded_length(v) + 1 for v in value)
    return 0


def _name(element: DataElement) -> str:
    return f"({element.tag.group:04X},{element.tag.element:04X})"


def read_for_writing(source: Path, *, decode: frozenset[int] | None = None) -> Any:
    """Read a file to rewrite; short pixel data is an error here, not a warning:
    writing it back would turn a damaged file into a consistent-looking one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedPixelDataWarning)
        try:
            return read(source, decode=decode)
        except TruncatedPixelDataWarning as exc:
            raise CorruptDicomError(str(exc)) from None


def _matches(ds: Dataset, path: TagPath, value: str) -> bool:
    found = get(ds, path, default=None)
    return value_text(found) == value


@contextlib.contextmanager
def _locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock on ``path`` so that two dicomlens editors take turns."""
    if not exclusive:
        yield
        return
    try:  # not blocking: a pipe is refused by the read, not waited on here
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FileError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
