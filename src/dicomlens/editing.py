"""Writing files safely: the one place dicomlens writes to disk.

:func:`atomic_output` gives writers a temporary path beside the target; only
when the writer finishes is the file flushed to disk and moved over the target,
so a crash, a full disk or an exception never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import struct
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final

from pydicom import config
from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.valuerep import VR as VR_
from pydicom.valuerep import validate_value

from dicomlens.access import get
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
from dicomlens.processes import is_alive
from dicomlens.reading import examine, fingerprint, has_executable_preamble, iter_files, read
from dicomlens.tags import ElementRef, PathStep, TagPath, parse_tag
from dicomlens.values import value_text

__all__ = [
    "Action",
    "Change",
    "Edit",
    "FileEdit",
    "apply_edits",
    "atomic_output",
    "edit",
    "fsync_path",
    "is_within",
    "read_for_writing",
    "recording_failures",
    "remove_stale_temporaries",
    "sync_folders",
]


@contextlib.contextmanager
def atomic_output(
    target: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    sync_folder: bool = True,
    mode: int | None = None,
    durable: bool = True,
) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success, move it over ``target``.

    The temporary file is synced before the rename and the folder after it
    (batch writers may pass ``sync_folder=False`` and sync each folder once at
    the end); with ``durable=False`` neither is (for outputs that can be made again:
    other programs still never see a partial file, but a power cut may lose it).
    The file gets ``mode`` if given, else the mode of the file it replaces, else
    the default for new files. On any failure it is removed and ``target`` is left
    as it was.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "out.txt").read_text()
    'done'
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise WriteError(f"{target}: already exists")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        suffix = f".{os.getpid()}.tmp.{target.name}"  # the PID tells a stale one
        fd, name = tempfile.mkstemp(dir=folder, prefix=".", suffix=suffix)
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            with temporary.open("rb+") as fh:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        elif target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
        if sync_folder and durable:
            fsync_path(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


_TEMPORARY: Final = re.compile(r"\.[^.]+\.([0-9]+)\.tmp\..")  # as atomic_output names them


def remove_stale_temporaries(folders: Iterable[Path]) -> None:
    """Delete the temporary files that writers killed before they finished left in
    ``folders`` (:func:`atomic_output`'s, of processes gone; RELIABILITY W2). Others
    are left alone, as is what cannot be listed or deleted: it stays hidden."""
    for folder in set(folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            found = _TEMPORARY.match(name)
            if found and not is_alive(int(found[1])):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries: a rename in it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Edit operations
# ---------------------------------------------------------------------------


class Action(Enum):
    SET = "set"
    ADD = "add"
    DELETE = "delete"


@dataclass(frozen=True)
class Edit:
    """One operation: set (modify or insert), add (insert, may create sequence
    items; VR explicit or from the dictionary) or delete, at a tag path."""

    action: Action
    path: TagPath
    value: str | None = None
    VR: str | None = None

    @classmethod
    def parse(cls, action: Action | str, text: str) -> Edit:
        """``TAG=VALUE`` for set, ``TAG[VR]=VALUE`` or ``TAG=VALUE`` for add, ``TAG`` for delete.

        >>> Edit.parse("set", "PatientName=Doe^Jane").path.tag
        (0010,0010)
        >>> Edit.parse("add", "(0011,xx01)[ACME 1.0][LO]=MRN-1").VR
        'LO'
        """
        action = Action(action)
        if action is Action.DELETE:
            return cls(action, parse_tag(text))
        tag_text, equals, value = _split_assignment(text)
        if not equals:
            raise UsageError(f"--{action.value} {text!r}: expected TAG=VALUE")
        vr = None
        match = _TRAILING_VR.search(tag_text)
        if match and match["vr"] in _KNOWN_VRS:
            vr, tag_text = match["vr"], tag_text[: match.start()]
        return cls(action, parse_tag(tag_text), value, vr)

    def __str__(self) -> str:
        if self.action is Action.DELETE:
            return f"delete {self.path}"
        vr = f"[{self.VR}]" if self.VR else ""
        return f"{self.action.value} {self.path}{vr}={self.value}"


_TRANSFER_SYNTAX: Final = ElementRef(0x0002, 0x0010)
_TRAILING_VR: Final = re.compile(r"\[(?P<vr>[A-Z]{2})\]\s*$")
_KNOWN_VRS: Final = frozenset(vr.value for vr in VR_)


def _split_assignment(text: str) -> tuple[str, str, str]:
    depth, quoted = 0, False
    for position, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif char == "=" and not quoted and depth == 0:
            return text[:position].strip(), "=", text[position + 1 :]
    return text, "", ""


@dataclass(frozen=True)
class Change:
    """What an edit did to one element: old and new value as text ("" when absent)."""

    path: str
    old: str
    new: str

    def __str__(self) -> str:
        if not self.old:
            return f"+ {self.path}: {self.new}"
        if not self.new:
            return f"- {self.path}: {self.old}"
        return f"~ {self.path}: {self.old} -> {self.new}"


def apply_edits(ds: Dataset, edits: Sequence[Edit], *, allow_invalid: bool = False) -> list[Change]:
    """Apply edits to a dataset in memory and return what changed.

    Values are validated against their VR (length, characters, dates) unless
    ``allow_invalid``; non-ASCII text switches a missing or ASCII Specific
    Character Set to ISO_IR 192 (UTF-8); the file meta Media Storage SOP
    Instance UID follows SOPInstanceUID.

    Raises
    ------
    EditError
        A value does not fit its VR, a private tag has no known VR, a path
        cannot be created, a binary value is given as text.
    """
    changes: list[Change] = []
    for edit in edits:
        if edit.path.steps[0].ref == _TRANSFER_SYNTAX:
            raise EditError(
                f"{edit.path}: the transfer syntax describes how the file is encoded; "
                "changing it needs transcoding, which edit does not do"
            )
        if edit.action is Action.DELETE:
            changes += _delete(ds, edit.path)
        else:
            changes += _assign(ds, edit, allow_invalid=allow_invalid)
    if changes:
        _keep_meta_in_sync(ds)
    return changes


def _delete(ds: Dataset, path: TagPath) -> list[Change]:
    """Remove elements, or with a final ``[n]``/``[*]`` sequence items or values."""
    changes = []
    subscript = path.steps[-1].subscript
    for parent, tag, where in reversed(list(_targets(ds, path, containers=False, leaf=False))):
        element = parent[tag]
        if subscript is None:
            changes.append(Change(where, _text(element), ""))
            del parent[tag]
            continue
        values = list(element.value) if element.VM > 1 or element.VR == "SQ" else [element.value]
        keep = [] if subscript == "*" else list(values)
        if isinstance(subscript, int) and -len(values) <= subscript < len(values):
            del keep[subscript]
        if len(keep) == len(values):
            continue
        old = _text(element)
        element.value = keep if element.VR == "SQ" or len(keep) != 1 else keep[0]
        changes.append(Change(where, old, _text(element)))
    return changes[::-1]


def _assign(ds: Dataset, edit: Edit, *, allow_invalid: bool) -> list[Change]:
    assert edit.value is not None
    if edit.path.steps[-1].subscript is not None:
        raise EditError(f"{edit.path}: set a whole element, not one value (use a\\\\b for several)")
    changes = []
    targets = list(_targets(ds, edit.path, containers=edit.action is Action.ADD, leaf=True))
    if not targets:
        raise EditError(f"{edit.path}: no such element to set")
    for parent, tag, where in targets:
        vr = _vr_for(parent, tag, edit)
        value = _convert(edit.value, vr, where, allow_invalid=allow_invalid)
        old = _text(parent[tag]) if tag in parent else ""
        if tag in parent and vr == parent[tag].VR:
            parent[tag].value = value
        else:
            parent.add_new(tag, vr, value)
        _ensure_charset(ds, value)
        changes.append(Change(where, old, _text(parent[tag])))
    return changes


def _targets(
    ds: Dataset, path: TagPath, *, containers: bool, leaf: bool
) -> Iterator[tuple[Dataset, BaseTag, str]]:
    """(dataset holding the element, its tag, its path) for every place the path names.

    ``containers`` makes missing sequences and items; ``leaf`` also yields places
    where the last element is missing (to insert it), making private blocks as needed.
    """
    steps = path.steps
    holder: Dataset = ds
    if steps[0].ref.group == 0x0002 and hasattr(ds, "file_meta"):
        holder = ds.file_meta
    yield from _walk_targets(holder, steps, "", containers, leaf)


def _walk_targets(
    ds: Dataset, steps: tuple[PathStep, ...], prefix: str, containers: bool, leaf: bool
) -> Iterator[tuple[Dataset, BaseTag, str]]:
    step, rest = steps[0], steps[1:]
    tag = _resolve_or_create(ds, step.ref, create=containers or (leaf and not rest))
    if tag is None:
        return
    if not rest:
        if tag in ds or leaf:
            yield ds, tag, prefix + _step_name(step.ref, tag)
        return
    if tag not in ds:
        if not containers:
            return
        ds.add_new(tag, "SQ", [])
    sequence = ds[tag]
    if sequence.VR != "SQ":
        raise EditError(f"{prefix}{step.ref}: is {sequence.VR}, not a sequence")
    items = sequence.value
    if isinstance(step.subscript, int):
        while containers and len(items) <= step.subscript:
            items.append(Dataset())
        chosen = [step.subscript] if -len(items) <= step.subscript < len(items) else []
    else:
        if containers and not items:
            items.append(Dataset())
        chosen = list(range(len(items)))
    for position in chosen:
        where = f"{prefix}{step.ref}[{position % len(items)}]."
        yield from _walk_targets(items[position], rest, where, containers, leaf)


def _resolve_or_create(ds: Dataset, ref: ElementRef, *, create: bool) -> BaseTag | None:
    if ref.creator is None:
        return ref.tag
    try:
        return ds.private_block(ref.group, ref.creator, create=create).get_tag(ref.element)
    except KeyError:
        return None


def _step_name(ref: ElementRef, tag: BaseTag) -> str:
    return str(ref) if ref.creator else str(ElementRef(tag.group, tag.element))


def _vr_for(parent: Dataset, tag: BaseTag, edit: Edit) -> str:
    if edit.VR:
        return edit.VR
    if tag in parent and parent[tag].VR not in ("UN", None):
        return str(parent[tag].VR)
    if tag.is_private:
        creator = edit.path.leaf.creator
        if creator:
            try:
                return str(get_private_entry(tag, creator)[0])
            except KeyError:
                pass
        raise EditError(
            f"{edit.path}: private element of unknown VR; give it, e.g. --add '{edit.path}[LO]=...'"
        )
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise EditError(
            f"{edit.path}: not in the dictionary; give the VR with --add TAG[VR]=VALUE"
        ) from None
    if " or " in vr:
        raise EditError(
            f"{edit.path}: the dictionary allows {vr}; give one with --add TAG[VR]=VALUE"
        )
    return str(vr)


_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
_INT_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "AT"})
_FLOAT_VRS: Final = frozenset({"FL", "FD"})


def _convert(text: str, vr: str, where: str, *, allow_invalid: bool) -> Any:
    if vr in _BINARY_VRS:
        raise EditError(f"{where}: a {vr} value cannot be given as text")
    parts = text.split("\\") if vr not in ("LT", "ST", "UT") else [text]
    values: list[Any] = []
    for part in parts:
        try:
            if vr in _INT_VRS:
                values.append(int(part, 0))
            elif vr in _FLOAT_VRS:
                values.append(float(part))
            else:
                values.append(part)
        except ValueError:
            raise EditError(f"{where}: {vr} needs a number, got {part!r}") from None
        if not allow_invalid:
            _validate(vr, values[-1], where)
    return values[0] if len(values) == 1 else values


def _validate(vr: str, value: Any, where: str) -> None:
    try:
        validate_value(vr, value, config.RAISE)
        if vr == "DA" and value:
            datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, TypeError) as exc:
        reason = str(exc).split(". Please see")[0].rstrip(".")
        if vr == "DA" and "Invalid value" not in reason:
            reason = f"Invalid value for VR DA: {value!r} is not a calendar date"
        raise EditError(f"{where}: {reason} (--allow-invalid writes it anyway)") from None


def _ensure_charset(ds: Dataset, value: Any) -> None:
    texts = value if isinstance(value, list) else [value]
    if not any(isinstance(t, str) and not t.isascii() for t in texts):
        return
    current = ds.get("SpecificCharacterSet")
    if not current or current in ("ISO_IR 6", ["ISO_IR 6"]):
        ds.SpecificCharacterSet = "ISO_IR 192"


def _keep_meta_in_sync(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID


def _text(element: DataElement) -> str:
    return (
        value_text(element.value, limit=60)
        if element.VR != "SQ"
        else f"<{len(element.value)} items>"
    )


# ---------------------------------------------------------------------------
# Editing files
# ---------------------------------------------------------------------------

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


def sync_folders(written: Iterable[Path | None]) -> None:
    """Make the renames of a batch durable: the folder of each written file synced once."""
    for folder in sorted({path.parent for path in written if path is not None}):
        fsync_path(folder)


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
    tag_text, equals, value = _split_assignment(text)
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


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (links resolved): a batch's own output."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


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
