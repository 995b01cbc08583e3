"""Read one DICOM file with every check, walk folders and read batches.

:func:`read` wraps :func:`pydicom.dcmread` with the checks pydicom leaves out
(files too short, truncated meta or data set, forced reads of junk) and turns
every failure into a one-line :class:`~dicomlens.errors.FileError` that names
the file. :func:`iter_files` lists folders and :func:`read_files` reads batches.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import stat
import warnings
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian, MediaStorageDirectoryStorage
from pydicom.valuerep import VR as VR_

from dicomlens.errors import (
    NOT_REGULAR,
    CorruptDicomError,
    DicomlensWarning,
    FileError,
    NotDicomError,
    TruncatedPixelDataWarning,
)
from dicomlens.reading.decoding import decode_values, plain_reason
from dicomlens.reading.salvage import read_prefix
from dicomlens.tags import format_tag

__all__ = [
    "ReadResult",
    "examine",
    "fingerprint",
    "has_executable_preamble",
    "in_processes",
    "is_dicomdir",
    "iter_files",
    "read",
    "read_files",
]

logger = logging.getLogger(__name__)
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

_PREAMBLE_AND_PREFIX = 132
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SHORTEST_ELEMENT_HEADER = 8
_ZERO_HEADER = bytes(_SHORTEST_ELEMENT_HEADER)
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_MIN_FORCED_ELEMENTS = 5
_GLOB_CHARS = re.compile(r"[*?\[]")
_KNOWN_VRS = frozenset(vr.value for vr in VR_) | {"US or SS", "OB or OW", "US or OW",
                                                  "US or SS or OW"}  # fmt: skip
_MAY_BE_UNDEFINED = frozenset({"SQ", "UN", "OB", "OW", "OB or OW"})
_NO_TAG = re.compile(r"No tag to read at file position ([0-9A-Fa-f]+)")
_GUARDED_READ = 1 << 20  # bytes: smaller over-long values just come back short
_INFLATE_STEP = 1 << 20
_INFLATE_RATIO_FROM = 16 << 20  # bytes inflated before the ratio is judged
_MAX_INFLATE_RATIO = 100  # deflated DICOM rarely exceeds 20:1; zeros reach 1000:1
_MAX_INFLATED = 2 << 30
_PARALLEL_FROM = 64  # files: below this a process pool costs more than it saves
MAX_DEPTH = 64
"""Deepest sequence nesting :func:`read` accepts by default."""
DEFER_SIZE = 64 << 20
"""Values longer than this (bytes) stay in the file until used, by default."""
_ZERO_RUN = 4096  # element headers of zeros in a row: not a data set (RELIABILITY R23)
_IN_MEMORY = 1 << 16  # bytes: headers are parsed from memory when they fit in this,
_IN_MEMORY_MOST = 4 << 20  # or else in this (CSA headers, functional groups)
_DEFLATED_UID = DeflatedExplicitVRLittleEndian.encode()


def read(
    path: str | os.PathLike[str],
    *,
    stop_before_pixels: bool = False,
    force: bool = False,
    decode: Collection[int] | None = None,
    defer_size: int | None = DEFER_SIZE,
    max_depth: int = MAX_DEPTH,
    salvage: bool = False,
) -> FileDataset:
    """Read one DICOM file into a pydicom dataset, or raise a clear error.

    Values are decoded here, so problems surface now rather than on first
    access later.

    Parameters
    ----------
    path
        The file.
    stop_before_pixels
        Skip the pixel data (much faster for header work).
    force
        Also read files without the ``DICM`` prefix (raw data sets); the result
        must still look like DICOM.
    decode
        Decode only these top-level tags now (with everything inside them) and the
        file meta, for callers that will touch nothing else; None decodes every
        value; an empty collection decodes nothing (pydicom has read the transfer syntax).
    defer_size
        Leave values longer than this many bytes in the file (pydicom reads them
        on first access); their position is in ``ds.get_item(tag, keep_deferred=True).value_tell``.
        By default 64 MiB: memory stays bounded whatever a file declares; None reads all.
    max_depth
        Deepest nesting of sequences accepted among the decoded values (64, as
        DCMTK; raise it for the rare legitimate file that needs more).
    salvage
        Read a truncated file (a value or sequence cut by the end of the file) up to
        the cut instead of refusing it: the whole elements before it, with a
        :class:`~dicomlens.errors.DicomlensWarning` that says where the cut is.

    Raises
    ------
    NotDicomError
        Missing ``DICM`` prefix, empty or too short file.
    CorruptDicomError
        Truncated or unparseable content.
    FileError
        Missing file, a folder, no permission.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> read(get_testdata_file("CT_small.dcm")).Modality
    'CT'
    """
    try:
        return _read_checked(Path(path), stop_before_pixels, force, decode, defer_size, max_depth)[
            0
        ]
    except CorruptDicomError as problem:
        if not salvage or "truncated" not in str(problem):
            raise
        return _salvaged(Path(path), problem, stop_before_pixels, max_depth)


def _salvaged(
    file: Path, problem: CorruptDicomError, stop_before_pixels: bool, max_depth: int
) -> FileDataset:
    """The whole elements of a truncated file, with a warning naming the cut."""
    try:
        ds, cut = read_prefix(file, stop_before_pixels=stop_before_pixels)
    except ValueError:
        raise problem from None
    _check_elements(ds, file, max_depth)
    decode_values(ds, file, None)
    reason = str(problem).removeprefix(f"{file}: ")
    warnings.warn(
        f"{file}: salvaged {len(ds)} elements, the last ending at byte {cut} of "
        f"{file.stat().st_size}; then {reason}",
        DicomlensWarning,
        stacklevel=3,
    )
    return ds


def _read_checked(
    file: Path,
    stop_before_pixels: bool,
    force: bool,
    decode: Collection[int] | None,
    defer_size: int | None,
    max_depth: int,
) -> tuple[FileDataset, tuple[int, int, int]]:
    """:func:`read`, also giving the file's fingerprint (size, mtime_ns, inode) as read."""
    found = examine(file)
    size, before = found.st_size, (found.st_size, found.st_mtime_ns, found.st_ino)
    if size == 0:
        raise NotDicomError(f"{file}: empty file (0 bytes)")
    if size < _PREAMBLE_AND_PREFIX and not force:
        raise NotDicomError(f"{file}: file too short to be DICOM ({size} bytes)")
    quick = None if force else _read_in_memory(file, found, stop_before_pixels, defer_size)
    short_reads: list[tuple[int, int, int]] = []  # (position, wanted, got)
    if quick is not None:
        ds = quick
    else:
        ds, short_reads = _read_guarded(file, size, stop_before_pixels, force, defer_size)
    if force:
        _check_plausible(ds, file)
    _check_lengths(ds, file, None if _is_deflated(ds) else size)
    _check_meta(ds, file, size)
    _check_short_reads(ds, file, short_reads)
    if has_executable_preamble(ds):
        warnings.warn(
            f"{file}: the preamble holds an executable signature (CVE-2019-11687)",
            DicomlensWarning,
            stacklevel=3,
        )
    _check_elements(ds, file, max_depth)  # before decoding: a clearer message than pydicom's
    if decode is None or decode:
        decode_values(ds, file, decode)
        _check_elements(ds, file, max_depth)  # the sequences decoding has just built
    if not _unchanged(file, before):  # RELIABILITY R26: another process wrote it meanwhile
        raise FileError(f"{file}: file changed while being read; try again")
    return ds, before


def _read_in_memory(
    file: Path, found: os.stat_result, stop_before_pixels: bool, defer_size: int | None
) -> FileDataset | None:
    """The quick way for the common case: parse the file's first bytes from memory,
    without the guard's per-read checks; when the header runs past the first 64 KiB,
    once more from its first 4 MiB. None (read the guarded way) whenever the parse
    needed bytes beyond them or anything was unusual (a warning, an error, a
    deflated data set, zero element headers), so results never differ."""
    size = found.st_size
    header_only = stop_before_pixels or (defer_size is not None and defer_size < _IN_MEMORY)
    if size > _IN_MEMORY and not header_only:
        return None
    try:
        with file.open("rb") as fh:
            data = fh.read(_IN_MEMORY)
            ds = _parse_in_memory(data, size, stop_before_pixels, defer_size)
            if ds is None and len(data) < size:
                data += fh.read(_IN_MEMORY_MOST - len(data))
                ds = _parse_in_memory(data, size, stop_before_pixels, defer_size)
    except OSError:  # the guarded read names the problem
        return None
    if ds is None:
        return None
    ds.filename, ds.buffer, ds.fileobj_type = str(file), None, open
    ds.timestamp = found.st_mtime  # as pydicom sets it: deferred values are read from the file
    return ds


def _parse_in_memory(
    data: bytes, size: int, stop_before_pixels: bool, defer_size: int | None
) -> FileDataset | None:
    """The data set in ``data``, the first bytes of a file of ``size`` bytes, when it
    surely reads the same as the whole file would (see :func:`_read_in_memory`)."""
    if _DEFLATED_UID in data:
        return None  # the guarded read bounds the inflation
    stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings(record=True) as noticed:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(
                stream, stop_before_pixels=stop_before_pixels, defer_size=defer_size
            )
    except Exception:  # the guarded read names the problem
        return None
    if noticed or not _plainly_read(ds, stream.tell(), len(data), size):
        return None
    return ds


def _plainly_read(ds: Dataset, end: int, read: int, size: int) -> bool:
    """Whether a parse of the first ``read`` bytes of a file of ``size`` bytes, which
    stopped at ``end``, is surely what the guarded read gives: no value ran into the
    end of the file (pydicom keeps such a value short, silently).

    Either the parse stopped inside the bytes read (before the pixel data; a short
    read ends at the end of the bytes), or it took the whole file and its last value
    ends at the last byte. Values of undefined length (found by reading ahead),
    values decoded while reading (character set, sequences) when they come last,
    zero element headers and an empty data set are left to the guarded read.
    """
    last, ends_at_size, decoded_at = -1, False, -1
    for raw in ds.values():
        if not isinstance(raw, RawDataElement):
            decoded_at = max(decoded_at, raw.file_tell if raw.file_tell is not None else size)
        elif raw.length == _UNDEFINED_LENGTH:
            return False
        elif raw.value_tell > last:
            last, ends_at_size = raw.value_tell, raw.value_tell + raw.length == size
            if raw.value is not None and len(raw.value) < raw.length:
                return False
    if last < 0 or 0x00000000 in ds:
        return False
    if end != size:
        return end < read
    return ends_at_size and decoded_at < last


def _read_guarded(
    file: Path, size: int, stop_before_pixels: bool, force: bool, defer_size: int | None
) -> tuple[FileDataset, list[tuple[int, int, int]]]:
    """Parse through :class:`_LengthGuard`, mapping every failure to one clear error.
    Also gives the values that ran into the end of the file (position, wanted, got)."""
    try:
        with _LengthGuard(file, size) as fh, warnings.catch_warnings(record=True) as noticed:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(
                fh, stop_before_pixels=stop_before_pixels, force=force, defer_size=defer_size
            )
    except _InflateBomb as bomb:
        raise CorruptDicomError(
            f"{file}: deflated data set expands beyond the limit ({bomb.deflated} bytes "
            f"inflate to more than {bomb.inflated})"
        ) from None
    except _ZeroRun as run:
        raise CorruptDicomError(
            f"{file}: zero bytes where data elements should be (from about byte "
            f"{run.position - _ZERO_RUN * _SHORTEST_ELEMENT_HEADER}): not a data set"
        ) from None
    except _LengthLie as lie:
        if force:  # junk read as if it were DICOM: its "lengths" are noise
            raise NotDicomError(
                f"{file}: forced read produced no plausible DICOM content"
            ) from None
        raise CorruptDicomError(
            f"{file}: an element declares {lie.wanted} bytes at byte {lie.position} "
            f"but only {lie.left} remain"
        ) from None
    except InvalidDicomError as exc:
        raise NotDicomError(f"{file}: {_not_dicom_reason(file)}") from exc
    except PermissionError as exc:
        raise FileError(f"{file}: permission denied") from exc
    except (OSError, EOFError) as exc:
        position = _NO_TAG.search(str(exc))
        if position:
            raise CorruptDicomError(
                f"{file}: truncated: a sequence or item is not closed before the end of the "
                f"file (byte {int(position[1], 16)})"
            ) from None
        raise CorruptDicomError(f"{file}: truncated or corrupt ({plain_reason(exc)})") from exc
    except zlib.error as exc:
        raise CorruptDicomError(f"{file}: corrupt deflated data set (zlib: {exc})") from None
    except RecursionError:
        raise CorruptDicomError(f"{file}: sequences nested too deeply to read") from None
    except Exception as exc:  # pydicom raises a dozen types for damaged input
        raise CorruptDicomError(f"{file}: cannot parse ({plain_reason(exc)})") from exc
    _pass_on(noticed, file)
    return ds, fh.short_reads


def _pass_on(noticed: list[warnings.WarningMessage], file: Path) -> None:
    """pydicom's warnings while parsing: an unclosed value or sequence is an error
    (the data set is cut short); the others are passed on to the caller."""
    for warning in noticed:
        text = str(warning.message)
        if text.startswith("End of file reached before delimiter"):
            raise CorruptDicomError(
                f"{file}: truncated: a value of undefined length or a sequence is not closed "
                "before the end of the file"
            )
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def is_dicomdir(ds: FileDataset) -> bool:
    """Whether the file is a DICOMDIR (a media directory listing other files)."""
    return bool(ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage)


def has_executable_preamble(ds: FileDataset) -> bool:
    """Whether the 128-byte preamble starts like a Windows or Linux executable."""
    preamble = ds.preamble or b""
    return preamble[:4].startswith((b"MZ", b"\x7fELF"))


class _ZeroRun(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class _LengthLie(Exception):
    def __init__(self, wanted: int, left: int, position: int) -> None:
        super().__init__(wanted, left, position)
        self.wanted, self.left, self.position = wanted, left, position


class _LengthGuard(io.BufferedReader):
    """A file that refuses large reads past its end.

    A damaged or hostile file can declare a 4 GB element in a few bytes;
    pydicom would try to allocate that much before finding out. Reads of
    at least ``_GUARDED_READ`` bytes are checked against what is left.
    """

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(io.FileIO(os.fspath(path), "rb"))
        self._size = size
        self.short_reads: list[tuple[int, int, int]] = []  # (position, wanted, got)
        self._zero_headers = 0

    def read(self, size: int | None = -1, /) -> bytes:
        if size is not None and size >= _GUARDED_READ:
            left = self._size - self.tell()
            if size > left:
                raise _LengthLie(size, max(left, 0), self.tell())
        data = super().read(size)
        if size is None or size < 0:  # pydicom reads "the rest" only to inflate it
            _check_inflation(data)
        elif len(data) < size:
            self.short_reads.append((self.tell() - len(data), size, len(data)))
        if size == _SHORTEST_ELEMENT_HEADER:  # pydicom reads element headers 8 bytes at a time
            self._zero_headers = self._zero_headers + 1 if data == _ZERO_HEADER else 0
            if self._zero_headers > _ZERO_RUN:
                raise _ZeroRun(self.tell())
        return data


class _InflateBomb(Exception):
    def __init__(self, inflated: int, deflated: int) -> None:
        super().__init__(inflated, deflated)
        self.inflated, self.deflated = inflated, deflated


def _check_inflation(data: bytes) -> None:
    """Inflate ``data`` (raw deflate) in bounded steps, keeping nothing, and stop
    as soon as it grows implausibly large; data that is not deflate passes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total, pending = 0, data
    try:
        while pending:
            total += len(inflater.decompress(pending, _INFLATE_STEP))
            pending = inflater.unconsumed_tail
            too_big = total > _MAX_INFLATED or (
                total > _INFLATE_RATIO_FROM and total > _MAX_INFLATE_RATIO * len(data)
            )
            if too_big:
                raise _InflateBomb(total, len(data))
    except zlib.error:
        return  # not ours to judge here: pydicom reports a corrupt stream


def examine(file: Path) -> os.stat_result:
    """The file's status, or a clear error for a missing file, a folder, no permission,
    a pipe or a device (which reading would wait on, or never finish)."""
    try:
        found = file.stat()
    except FileNotFoundError:
        raise FileError(f"{file}: no such file or directory") from None
    except PermissionError:
        raise FileError(f"{file}: permission denied") from None
    except OSError as exc:
        raise FileError(f"{file}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(found.st_mode):
        raise FileError(f"{file}: is a directory")
    if not stat.S_ISREG(found.st_mode):
        raise FileError(f"{file}: {NOT_REGULAR}")
    return found


def _not_dicom_reason(file: Path) -> str:
    with file.open("rb") as fh:
        head = fh.read(_PREAMBLE_AND_PREFIX)
    reason = "not a DICOM file (no DICM prefix at byte 128)"
    if any(head[i : i + 2] in (b"\x08\x00", b"\x00\x08", b"\x02\x00") for i in range(4)):
        reason += "; it looks like a raw data set without file meta: use --force to read it"
    return reason


def _check_meta(ds: FileDataset, file: Path, size: int) -> None:
    meta = ds.file_meta
    group_length = meta.get("FileMetaInformationGroupLength")
    if isinstance(group_length, int):
        meta_end = _PREAMBLE_AND_PREFIX + 12 + group_length
        if meta_end > size:
            raise CorruptDicomError(
                f"{file}: truncated (file meta ends at byte {size}, expected {meta_end})"
            )
    if len(ds) == 0:
        raise CorruptDicomError(
            f"{file}: truncated (no data set after the file meta; {size} bytes)"
        )
    if len(meta) and "TransferSyntaxUID" not in meta:
        syntax = "implicit" if ds.original_encoding[0] else "explicit"
        warnings.warn(
            f"{file}: file meta has no Transfer Syntax UID; read as {syntax} VR little endian",
            DicomlensWarning,
            stacklevel=4,
        )


def _is_deflated(ds: FileDataset) -> bool:
    return bool(ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian)


def _check_lengths(ds: Dataset, file: Path, size: int | None) -> None:
    """Compare the declared length of the last element read with the bytes there.

    pydicom reads sequentially and stops silently when a file ends inside an
    element's value or header, so only the last element read can be short.
    ``size`` is the file size, or None when positions do not refer to the file
    (deflated data sets).
    """
    for tag in reversed(list(ds.keys())):  # in the order read
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement) and raw.length != _UNDEFINED_LENGTH:
            break
    else:
        return  # nothing but converted values (sequences of undefined length)
    end = raw.value_tell + raw.length
    if raw.value is not None:
        got = len(raw.value)
    elif size is not None:  # deferred: its bytes are still in the file
        got = max(0, min(raw.length, size - raw.value_tell))
    else:
        got = raw.length
    if got < raw.length and tag in _PIXEL_TAGS:
        warnings.warn(
            f"{file}: Pixel Data shorter than declared ({got} of {raw.length} bytes)",
            TruncatedPixelDataWarning,
            stacklevel=4,
        )
    elif got < raw.length:
        raise CorruptDicomError(
            f"{file}: truncated: {format_tag(tag)} declares {raw.length} bytes "
            f"but only {got} remain"
        )
    if size is not None and 0 < size - end < _SHORTEST_ELEMENT_HEADER:
        raise CorruptDicomError(f"{file}: truncated inside an element header at byte {end}")


def _check_short_reads(ds: Dataset, file: Path, short: list[tuple[int, int, int]]) -> None:
    """A value that ran into the end of the file anywhere but in the pixel data (whose
    shortfall :func:`_check_lengths` reports as a warning): pydicom keeps it silently."""
    pixels = ds.get_item(0x7FE00010, keep_deferred=True) if 0x7FE00010 in ds else None
    pixel_start = getattr(pixels, "value_tell", None)
    for position, wanted, got in short:
        if position != pixel_start and wanted > _SHORTEST_ELEMENT_HEADER:
            raise CorruptDicomError(
                f"{file}: truncated: a value at byte {position} declares {wanted} bytes "
                f"but only {got} remain"
            )


def _check_plausible(ds: Dataset, file: Path) -> None:
    has_uid = "SOPClassUID" in ds or "SOPInstanceUID" in ds
    if not has_uid and len(ds) < _MIN_FORCED_ELEMENTS:
        raise NotDicomError(f"{file}: forced read produced no plausible DICOM content")
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        guess = (
            f"{'implicit' if implicit else 'explicit'} VR {'little' if little else 'big'} endian"
        )
        warnings.warn(
            f"{file}: no file meta; transfer syntax guessed as {guess}",
            DicomlensWarning,
            stacklevel=4,
        )


def decode_elements(
    ds: FileDataset, file: Path, tags: Collection[int] | None = None, *, max_depth: int = MAX_DEPTH
) -> None:
    """Decode the elements of a data set read with ``decode=()`` (every one, or those
    under ``tags``) as :func:`read` does: what does not decode is kept as raw bytes
    (UN), with a warning; sequences nested deeper than ``max_depth`` are refused."""
    decode_values(ds, file, tags)
    _check_elements(ds, file, max_depth)


def fingerprint(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Size, modification time (ns) and inode: a changed file changes one of them."""
    found = os.stat(path)
    return found.st_size, found.st_mtime_ns, found.st_ino


def _unchanged(file: Path, before: tuple[int, int, int]) -> bool:
    try:
        return fingerprint(file) == before
    except OSError:
        return False


def _check_elements(ds: Dataset, file: Path, max_depth: int) -> None:
    """One pass over what was read, refusing (RELIABILITY R12, R14, R16):

    * unknown VRs, even in elements nobody will decode: the file is damaged and
      would fail later, on first access or on writing;
    * undefined lengths except on sequences and encapsulated pixels: such a value
      swallows the rest of the file;
    * sequences nested deeper than ``max_depth`` among the decoded values: deeper
      files are crafted, and every recursive walk over them would fail.
    """
    stack = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for element in current.values():  # as read, unconverted, without sorting
            if isinstance(element, RawDataElement):
                if element.VR is None:
                    continue
                if element.VR not in _KNOWN_VRS:
                    raise CorruptDicomError(
                        f"{file}: {format_tag(element.tag)} has an unknown VR {element.VR!r}"
                    )
                if element.length == _UNDEFINED_LENGTH and element.VR not in _MAY_BE_UNDEFINED:
                    raise CorruptDicomError(
                        f"{file}: {format_tag(element.tag)} ({element.VR}) has an undefined length"
                    )
            elif element.VR == "SQ":
                if depth + 1 > max_depth:
                    raise CorruptDicomError(
                        f"{file}: sequences nested deeper than {max_depth} "
                        f"(at {format_tag(element.tag)})"
                    )
                stack.extend((item, depth + 1) for item in element.value)


# ---------------------------------------------------------------------------
# Folders and batches
# ---------------------------------------------------------------------------


class ReadResult(NamedTuple):
    """One file of a batch: its dataset (or what was extracted from it), or the
    error that prevented reading it.

    ``explicit`` is true when the user named the file (rather than it being
    found inside a folder): batch commands skip non-DICOM files found in folders
    but report named ones.
    """

    path: Path
    dataset: FileDataset | None = None
    error: FileError | None = None
    explicit: bool = True
    value: Any = None

    @property
    def ignorable(self) -> bool:
        """A non-DICOM file met inside a folder: batch commands skip and count it."""
        return isinstance(self.error, NotDicomError) and not self.explicit


def _natural_key(path: Path) -> list[object]:
    """``1-2.dcm`` before ``1-10.dcm``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def iter_files(
    paths: Iterable[str | os.PathLike[str]],
) -> Iterator[tuple[Path, FileError | None, bool]]:
    """Expand files, folders (recursively) and glob patterns, in natural order.

    Yields ``(path, error, explicit)``: ``error`` is set for a path that does not
    exist or a folder that cannot be listed; ``explicit`` is false for files
    found inside a folder. Symbolic links to folders are not followed.
    """
    for given in paths:
        path = Path(given)
        if path.is_dir():
            yield from _walk(path)
        elif path.exists() or path.is_symlink():
            yield path, None, True
        elif _GLOB_CHARS.search(str(given)):
            import glob  # only for patterns the shell did not expand

            matches = sorted(
                (Path(m) for m in glob.glob(str(given), recursive=True)), key=_natural_key
            )
            if not matches:
                yield path, FileError(f"{path}: no file matches this pattern"), True
            for match in matches:
                yield from _walk(match) if match.is_dir() else [(match, None, True)]
        else:
            yield path, FileError(f"{path}: no such file or directory"), True


def _walk(folder: Path) -> Iterator[tuple[Path, FileError | None, bool]]:
    problems: list[OSError] = []
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=problems.append):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root, name) for name in files if not name.startswith("."))
    for file in sorted(found, key=_natural_key):
        yield file, None, False
    for problem in problems:
        where = problem.filename or folder
        yield Path(where), FileError(f"{where}: cannot list folder ({problem.strerror})"), True


def read_files(
    files: Sequence[tuple[Path, FileError | None, bool]],
    *,
    stop_before_pixels: bool = True,
    force: bool = False,
    decode: Collection[int] | None = None,
    defer_size: int | None = DEFER_SIZE,
    max_depth: int = MAX_DEPTH,
    extract: Callable[[FileDataset], Any] | None = None,
    workers: int = 1,
    salvage: bool = False,
) -> Iterator[ReadResult]:
    """Read listed files (as :func:`iter_files` gives them), in their order.

    List the files first (``read_files(list(iter_files(paths)))``): files written
    into the folders meanwhile are then not picked up.

    Parameters
    ----------
    decode, defer_size, stop_before_pixels, force, max_depth, salvage
        Passed on to :func:`read`.
    extract
        Called on each dataset; its result is the ``value`` of the read result
        and the dataset itself is dropped. It must be picklable (a module-level
        function or a ``functools.partial`` of one) to run in worker processes.
    workers
        Processes to read in, used with ``extract`` for batches of 64 files or more.
    """
    job = functools.partial(
        _read_one,
        stop_before_pixels=stop_before_pixels,
        force=force,
        decode=decode,
        defer_size=defer_size,
        max_depth=max_depth,
        extract=extract,
        salvage=salvage,
    )
    yield from in_processes(job, files, workers=workers if extract is not None else 1)


def in_processes(
    job: Callable[[_Item], _Result], items: Sequence[_Item], *, workers: int
) -> Iterator[_Result]:
    """``map(job, items)`` in ``workers`` processes (for 64 items or more), in order;
    ``job`` must be picklable. Each process takes runs of consecutive items."""
    if workers < 2 or len(items) < _PARALLEL_FROM:
        yield from map(job, items)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(job, items, chunksize=max(16, len(items) // (workers * 8)))


def _read_one(
    file: tuple[Path, FileError | None, bool],
    *,
    stop_before_pixels: bool,
    force: bool,
    decode: Collection[int] | None,
    defer_size: int | None,
    max_depth: int,
    extract: Callable[[FileDataset], Any] | None,
    salvage: bool = False,
) -> ReadResult:
    """Read (and extract from) one listed file; module-level so workers can run it."""
    path, error, explicit = file
    if error is not None:
        return ReadResult(path, error=error, explicit=explicit)
    try:
        ds = read(
            path,
            stop_before_pixels=stop_before_pixels,
            force=force,
            decode=decode,
            defer_size=defer_size,
            max_depth=max_depth,
            salvage=salvage,
        )
    except FileError as exc:
        return ReadResult(path, error=exc, explicit=explicit)
    if extract is None:
        return ReadResult(path, dataset=ds, explicit=explicit)
    return ReadResult(path, explicit=explicit, value=extract(ds))
