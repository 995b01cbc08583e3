"""Read files that resemble a file already read, letting pydicom parse only what differs.

The files of a series repeat most of their header byte for byte: the same elements
in the same order, most of them with the same values. A :class:`Layout` is one file
as pydicom read it: the bytes and the span of every element (values left in the
file, such as pixel data, are neither kept nor compared). Another file is compared
with it byte by byte (with numpy). Where the bytes are the same, pydicom would read
the same elements; an element whose value alone differs keeps its tag, VR and length
(its header is the same); an element whose header differs is parsed by pydicom where
it now lies, and the elements after it are compared at their new place. Values of
undefined length are what pydicom makes of them: a sequence (parsed while reading) is
compared byte by byte too and parsed again where it differs; encapsulated pixel data
left in the file has its end found item by item in each file, as pydicom finds it.

The result, a :class:`Likeness`, is what :func:`~dicomlens.reading.read` with
``decode=()`` gives, as changes to the layout's elements. Whenever that cannot be
shown (other elements, a changed character set, private creator or transfer
syntax, more bytes or fewer, anything unusual) :meth:`Layout.read_like` gives None
and the file is read as usual, with every check.
"""

from __future__ import annotations

import bisect
import io
import os
import stat
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_value

from dicomlens.errors import FileError
from dicomlens.reading.files import (
    _KNOWN_VRS,
    _PREAMBLE_AND_PREFIX,
    _UNDEFINED_LENGTH,
    MAX_DEPTH,
    _check_elements,
    _is_deflated,
    _read_checked,
    has_executable_preamble,
)

__all__ = ["CONTEXT_TAGS", "LaidOut", "Layout", "Likeness", "read_with_layout"]

Fingerprint = tuple[int, int, int]  # size, mtime_ns, inode
_Element = RawDataElement | DataElement  # a DataElement: a sequence of undefined length
_GROUP_LENGTH_HEADER: Final = 12  # (0002,0000) UL 4: the file meta group length counts after it
CONTEXT_TAGS: Final = frozenset(
    {0x00020002, 0x00020010, 0x00080005, 0x00280100, 0x00280103, 0x00283002, 0x54001004}
)
"""Elements whose value changes how others are read or decoded: the transfer syntax,
the media storage class (a DICOMDIR), the character set, and what pydicom consults to
settle ambiguous VRs ("US or SS", "OB or OW"). Private creators are context too."""
_MOST_CHANGES: Final = 64  # changed elements beyond which a file is read whole
_GROWTH: Final = 4096  # bytes read past an element's former end when it is parsed again


class LaidOut(NamedTuple):
    """A file read whole: its data set, its fingerprint as read, and its layout when
    it can serve to read similar files."""

    dataset: FileDataset
    fingerprint: Fingerprint
    layout: Layout | None


def read_with_layout(path: str | os.PathLike[str], *, defer_size: int) -> LaidOut:
    """:func:`~dicomlens.reading.read` with ``decode=()``, and the file's layout.

    >>> from pydicom.data import get_testdata_file
    >>> ct = get_testdata_file("CT_small.dcm")
    >>> ds, _, layout = read_with_layout(ct, defer_size=16384)
    >>> layout.read_like(ct).changed
    {}
    """
    ds, fingerprint = _read_checked(Path(path), False, False, (), defer_size, MAX_DEPTH)
    return LaidOut(ds, fingerprint, Layout.of(ds, fingerprint, defer_size=defer_size))


class Likeness(NamedTuple):
    """A file read against a :class:`Layout`: the layout's elements, with ``changed``
    (by index, file meta first) holding those whose bytes differ in this file."""

    path: str
    fingerprint: Fingerprint
    layout: Layout
    changed: dict[int, _Element]
    shifts: tuple[tuple[int, int], ...]  # (first index, offset from the layout's place)

    def element(self, index: int) -> _Element:
        """Element ``index`` of this file as pydicom reads it (its position included;
        a sequence of undefined length is a new one, parsed from the layout's bytes)."""
        found = self.changed.get(index)
        if found is not None:
            return found
        element = self.layout.elements[index]
        shift = self.shifts[bisect.bisect_right(self.shifts, (index, 1 << 62)) - 1][1]
        if type(element) is not RawDataElement:
            return self.layout.sequence_at(index, shift)
        return element._replace(value_tell=element.value_tell + shift) if shift else element

    def dataset(
        self,
        like: FileDataset,
        *,
        share: bool = False,
        only: Callable[[int], bool] | None = None,
    ) -> FileDataset:
        """This file as :func:`~dicomlens.reading.read` with ``decode=()`` gives it;
        ``like`` is the data set the layout was made from (the preamble, which read
        like compares too, comes from it). With ``share``, an element whose bytes
        are the same as in ``like`` is ``like``'s own, as far as it has been decoded
        there (for readers that will not change the data set); with ``only``, the
        data set holds just the top-level elements whose tag it accepts."""
        layout, changed = self.layout, self.changed
        decoded = layout.decoded_in(like, only) if share else {}

        def element(index: int) -> Any:
            found = decoded.get(index)  # decoded there: the same value
            return self.element(index) if found is None or index in changed else found

        meta = FileMetaDataset()
        for index in range(layout.meta_count):
            found = element(index)
            meta[found.tag] = found
        elements: dict[BaseTag, _Element] = {}
        for index in layout.indexes(only):
            found = element(index)
            elements[found.tag] = found
        implicit, little = layout.encoding
        ds = FileDataset(self.path, elements, preamble=like.preamble, file_meta=meta,
                         is_implicit_VR=implicit, is_little_endian=little)  # fmt: skip
        ds.timestamp = like.timestamp
        return ds


class _Segment(NamedTuple):
    """Bytes of the layout's file compared as one: from ``start`` (an element's
    header, or the file's first byte) to ``end`` (the file's end, or where a value
    left in the file begins). Its pieces start at ``marks`` (relative to ``start``):
    elements ``first`` up to ``after``, after the preamble (piece -1) in the first."""

    start: int
    end: int
    first: int
    after: int
    marks: NDArray[np.intp]
    array: NDArray[np.uint8]


class Layout:
    """One file as pydicom read it (``decode=()``): the span of each element, file meta
    first, and the bytes of all but the values left in the file. Made by :meth:`of`."""

    def __init__(
        self,
        spans: list[tuple[_Element, int]],
        starts: list[int],
        segments: list[_Segment],
        meta_count: int,
        encoding: tuple[bool, bool],
        charset: list[str],
        defer_size: int,
    ) -> None:
        self.elements = tuple(element for element, _ in spans)
        self.meta_count = meta_count
        self.encoding = encoding  # of the data set: (implicit VR, little endian)
        self.charset = charset  # its character encodings, for sequences parsed again
        self.defer_size = defer_size
        self._indexes: dict[Callable[[int], bool] | None, list[int]] = {}
        self._decoded: dict[
            Callable[[int], bool] | None, tuple[FileDataset, dict[int, DataElement]]
        ] = {}
        self._segments = segments
        self._starts = starts
        self._ends = [end for _, end in spans]
        self._headers = [
            _segment_bytes(segments, start, _value_tell(element))
            for start, element in zip(starts, self.elements, strict=True)
        ]
        self._context = frozenset(
            index for index, element in enumerate(self.elements)
            if element.tag in CONTEXT_TAGS or element.tag.is_private_creator
        )  # fmt: skip
        # pydicom looks at these headers to choose how to read what follows
        self._fixed_headers = frozenset({0, meta_count})
        # encapsulated pixel data: its end is found item by item in each file
        self._walked = frozenset(
            index for index, element in enumerate(self.elements) if _is_left_item_by_item(element)
        )
        first = spans[0][0]  # the file meta group length, as read() checked it
        self._group_length = (
            convert_value(first.VR or "UL", first)
            if first.tag == 0x00020000 and type(first) is RawDataElement
            else None
        )

    @classmethod
    def of(cls, ds: FileDataset, fingerprint: Fingerprint, *, defer_size: int) -> Layout | None:
        """The layout of the file ``ds`` was read from (``read(..., decode=(),
        defer_size=defer_size)``; its fingerprint then) or None when the file does
        not lend itself to it: elements that do not tile the file end to end
        (duplicates, undefined lengths but on sequences and on encapsulated pixel
        data left in the file), a deflated data set, a preamble that warns, no transfer
        syntax, a file changed since. The spans come from pydicom's element parser, run
        once more over the bytes and checked against ``ds``."""
        meta = ds.file_meta
        if has_executable_preamble(ds) or "TransferSyntaxUID" not in meta or not len(ds):
            return None
        implicit, little = ds.original_encoding
        if meta.original_encoding != (False, True) or _is_deflated(ds) or implicit is None:
            return None
        encoding = (implicit, bool(little))
        undefined = _undefined_lengths(ds, not implicit, fingerprint[0])
        holes = _holes(ds, undefined)
        edges = [0, *(edge for hole in holes for edge in hole), fingerprint[0]]
        ranges = list(zip(edges[::2], edges[1::2], strict=True))
        chunks = _read_ranges(str(ds.filename), ranges, fingerprint)
        charset = _charset_of(ds)
        if chunks is None or charset is None:
            return None
        parsed = _parse(chunks, ranges, encoding, charset, undefined, defer_size)
        if parsed is None:
            return None
        meta_spans, data_spans = parsed
        if [e.tag for e, _ in meta_spans] != list(meta.keys()) or not _as_read(data_spans, ds):
            return None
        spans = meta_spans + data_spans
        starts = _tiling(spans, len(meta_spans), implicit, fingerprint[0])
        if starts is None:
            return None
        segments = [
            _segment(begin, end, starts, chunk)
            for (begin, end), chunk in zip(ranges, chunks, strict=True)
            if end > begin
        ]
        return cls(spans, starts, segments, len(meta_spans), encoding, charset, defer_size)

    def decoded_in(
        self, like: FileDataset, only: Callable[[int], bool] | None = None
    ) -> dict[int, DataElement]:
        """The elements (by index, file meta included) that ``like``, the data set this
        layout was made from, holds decoded, among those ``only`` accepts: worked out
        once per test (``like`` is read-only by then; an element decoded there later is
        merely not shared)."""
        cached = self._decoded.get(only)
        if cached is None or cached[0] is not like:
            found: dict[int, DataElement] = {}
            for index in [*range(self.meta_count), *self.indexes(only)]:
                within = like.file_meta if index < self.meta_count else like
                theirs = within.get_item(self.elements[index].tag, keep_deferred=True)
                if theirs is not None and not isinstance(theirs, RawDataElement):
                    found[index] = theirs
            cached = self._decoded[only] = (like, found)
        return cached[1]

    def indexes(self, only: Callable[[int], bool] | None = None) -> list[int]:
        """The indexes of the data set's elements (after the file meta) whose tag
        ``only`` accepts (all without it), worked out once per layout and test."""
        if only not in self._indexes:
            self._indexes[only] = [
                index
                for index in range(self.meta_count, len(self.elements))
                if only is None or only(self.elements[index].tag)
            ]
        return self._indexes[only]

    def sequence_at(self, index: int, shift: int) -> DataElement:
        """Element ``index``, a sequence of undefined length, parsed from the layout's
        bytes as if it lay ``shift`` bytes further on (a new object each time)."""
        start, end = self._starts[index], self._ends[index]
        stream = _Placed(_segment_bytes(self._segments, start, end), start + shift)
        element = next(self._parser(stream))
        assert isinstance(element, DataElement)
        return element

    def _parser(self, stream: Any) -> Iterator[_Element]:
        """pydicom's element parser over the data set's bytes in ``stream``."""
        return data_element_generator(
            stream, *self.encoding, defer_size=self.defer_size, encoding=self.charset
        )

    def read_like(self, path: str | os.PathLike[str]) -> Likeness | None:
        """``path`` read against this layout, or None when it must be read whole
        (other elements, a changed context element, an unreadable file: the full
        read then gives the result, or the error)."""
        try:
            handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a pipe: no wait
        except OSError:
            return None
        try:
            before = os.fstat(handle)
            if not stat.S_ISREG(before.st_mode):
                return None
            found = self._changes(handle)
            after = os.stat(path)
        except OSError:
            return None
        finally:
            os.close(handle)
        fingerprint = (before.st_size, before.st_mtime_ns, before.st_ino)
        if found is None or (after.st_size, after.st_mtime_ns, after.st_ino) != fingerprint:
            return None
        changed, shifts = found
        if self._ends[-1] + shifts[-1][1] != before.st_size:
            return None  # more or fewer bytes after the last element
        if not self._meta_fits(changed.get(0), fingerprint[0]):
            return None
        return Likeness(str(path), fingerprint, self, changed, tuple(shifts))

    def _meta_fits(self, group_length: _Element | None, size: int) -> bool:
        """Whether the file meta group length (changed, or the layout's) leaves the file
        meta inside the file, as :func:`read` demands (else the full read says so)."""
        value = self._group_length
        if isinstance(group_length, RawDataElement):
            try:
                value = convert_value(group_length.VR or "UL", group_length)
            except Exception:  # the full read reports it
                return False
        return (
            not isinstance(value, int)
            or _PREAMBLE_AND_PREFIX + _GROUP_LENGTH_HEADER + value <= size
        )

    def _changes(self, handle: int) -> tuple[dict[int, _Element], list[tuple[int, int]]] | None:
        """The elements of the open file that differ from the layout's, and the offset of
        the elements after each one that moved; None when they cannot be told apart."""
        changed: dict[int, _Element] = {}
        shifts = [(0, 0)]
        shift = 0
        for segment in self._segments:
            first_piece = segment.first - (segment.start == 0)  # the preamble is piece -1
            piece = first_piece
            while piece < segment.after:
                mark = segment.marks[piece - first_piece]
                ours = segment.array[mark:]
                window = os.pread(handle, len(ours), segment.start + mark + shift)
                differ = np.ones(len(ours), dtype=bool)  # bytes past the file's end differ
                differ[: len(window)] = ours[: len(window)] != np.frombuffer(window, np.uint8)
                marks = segment.marks[piece - first_piece :] - mark
                moved = False
                for index in (
                    np.flatnonzero(np.logical_or.reduceat(differ, marks)) + piece
                ).tolist():
                    if index < 0 or index in self._context or len(changed) >= _MOST_CHANGES:
                        return None  # the preamble, or context that changed, or too much
                    element = self._same_header(window, segment.start + mark + shift, index, shift)
                    if element is None:
                        parsed = self._parsed(handle, index, shift)
                        if parsed is None:
                            return None
                        changed[index], end = parsed
                        shift = end - self._ends[index]
                        shifts.append((index + 1, shift))
                        piece, moved = index + 1, True
                        break  # the elements after it are compared at their new place
                    changed[index] = element
                if not moved:
                    break
            last = segment.after - 1  # the element whose value follows the segment, if any
            if last in self._walked:
                start = _value_tell(self.elements[last]) + shift
                value_end = _encapsulated_end(handle, start, self.encoding[1], self.defer_size)
                if value_end is None:
                    return None
                shift = value_end - self._ends[last]
                shifts.append((last + 1, shift))
        return changed, shifts

    def _same_header(
        self, window: bytes, offset: int, index: int, shift: int
    ) -> RawDataElement | None:
        """Element ``index`` when only its value differs (same tag, VR and length);
        ``window`` holds the file's bytes from ``offset`` on. (A sequence of undefined
        length is parsed again instead.)"""
        element = self.elements[index]
        if type(element) is not RawDataElement:
            return None
        header = self._headers[index]
        start = self._starts[index] + shift - offset
        if window[start : start + len(header)] != header:
            return None
        value_start = start + len(header)
        value = None
        if element.value is not None:
            value = window[value_start : value_start + element.length]
            if len(value) < element.length:
                return None  # past the bytes read: parsed where it lies instead
        return element._replace(value=value, value_tell=element.value_tell + shift)

    def _parsed(self, handle: int, index: int, shift: int) -> tuple[_Element, int] | None:
        """Element ``index`` parsed by pydicom where it now lies, and where it ends, when
        it is the same element (same tag) of a defined length with a known VR (its value
        read whole), or the same sequence of undefined length."""
        if index in self._fixed_headers:
            return None
        position = self._starts[index] + shift
        former = self.elements[index]
        if not isinstance(former, RawDataElement):
            return self._sequence_parsed(handle, former, position)
        header = former.value_tell - self._starts[index]
        held = 0 if former.value is None else former.length  # a long value: its header alone
        chunk = os.pread(handle, header + held + _GROWTH, position)
        encoding = (False, True) if index < self.meta_count else self.encoding
        with warnings.catch_warnings(record=True) as noticed:
            warnings.simplefilter("always")
            try:
                parser = data_element_generator(
                    io.BytesIO(chunk), *encoding, defer_size=self.defer_size
                )
                element = next(parser, None)
            except Exception:  # damaged here: the full read says how
                return None
        if noticed or not isinstance(element, RawDataElement):
            return None
        if element.tag != former.tag or element.length == _UNDEFINED_LENGTH:
            return None
        if element.VR is not None and element.VR not in _KNOWN_VRS:
            return None
        value_tell = element.value_tell + position
        if element.value is not None and len(element.value) < element.length:
            value = os.pread(handle, element.length, value_tell)  # it grew: read it whole
            if len(value) < element.length:
                return None  # the file ends inside it
            element = element._replace(value=value)
        return element._replace(value_tell=value_tell), value_tell + element.length

    def _sequence_parsed(
        self, handle: int, former: DataElement, position: int
    ) -> tuple[DataElement, int] | None:
        """The sequence of undefined length that starts at ``position`` of the open
        file, as pydicom reads it there, and where it ends; None unless it is the same
        sequence (tag), read without a warning and passing the full read's checks."""
        stream = io.BufferedReader(io.FileIO(handle, closefd=False))
        stream.seek(position)
        with warnings.catch_warnings(record=True) as noticed:
            warnings.simplefilter("always")
            try:
                element = next(self._parser(stream), None)
                end = stream.tell()
            except Exception:  # damaged here: the full read says how
                return None
        if noticed or not isinstance(element, DataElement) or element.tag != former.tag:
            return None
        if not _is_read_sequence(element):
            return None
        try:
            _check_elements(Dataset({element.tag: element}), Path(), MAX_DEPTH)
        except FileError:  # an unknown VR or nesting too deep: the full read refuses it
            return None
        return element, end


def _read_ranges(
    path: str, ranges: list[tuple[int, int]], fingerprint: Fingerprint
) -> list[bytes] | None:
    """The bytes of each range of the file, if it is still as it was read."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a pipe: no wait
        try:
            found = os.fstat(handle)
            chunks = [os.pread(handle, end - begin, begin) for begin, end in ranges]
        finally:
            os.close(handle)
        after = os.stat(path)
    except OSError:
        return None
    for seen in (found, after):
        if (seen.st_size, seen.st_mtime_ns, seen.st_ino) != fingerprint:
            return None
    return chunks


class _Placed(io.BytesIO):
    """Bytes that lie at ``offset`` in a file: positions (tell, seek) are the file's."""

    def __init__(self, data: bytes, offset: int) -> None:
        super().__init__(data)
        self._offset = offset

    def tell(self) -> int:
        return super().tell() + self._offset

    def seek(self, position: int, whence: int = 0) -> int:
        moved = position - self._offset if whence == os.SEEK_SET else position
        return super().seek(moved, whence) + self._offset


_Spans = list[tuple[_Element, int]]  # elements, each with where it ends


def _parse(
    chunks: list[bytes],
    ranges: list[tuple[int, int]],
    encoding: tuple[bool, bool],
    charset: list[str],
    undefined: dict[int, tuple[_Element, int]],
    defer_size: int,
) -> tuple[_Spans, _Spans] | None:
    """The file meta elements and the data set's, as pydicom's element parser reads
    the chunks (the file's bytes but for the values left in it), with where each one
    ends; the full read's elements of ``undefined`` length (by where they start, with
    their ends) are taken as they are. None if anything else of undefined length turns
    up."""
    first = io.BytesIO(chunks[0])
    first.seek(_PREAMBLE_AND_PREFIX)
    meta = _elements(first, (False, True), [], {}, defer_size, within_meta=True)
    parts = [_elements(first, encoding, charset, undefined, defer_size)]
    for (begin, _), chunk in zip(ranges[1:], chunks[1:], strict=True):
        parts.append(_elements(_Placed(chunk, begin), encoding, charset, undefined, defer_size))
    if meta is None or None in parts:
        return None
    return meta, [span for part in parts if part for span in part]


def _elements(
    stream: io.BytesIO,
    encoding: tuple[bool, bool],
    charset: list[str],
    undefined: dict[int, tuple[_Element, int]],
    defer_size: int,
    *,
    within_meta: bool = False,
) -> _Spans | None:
    """The elements pydicom's parser finds from the stream's position on (positions
    are the file's), with their ends: the file meta group, the stream then left at
    its end, or the rest. Where a value of undefined length starts, the parser stops:
    one of the full read's (``undefined``) is stepped over, anything else gives None."""
    found: _Spans = []
    end = stream.tell()
    stopped = [False]  # whether the parser stopped at a value of undefined length

    def at_undefined_length(tag: BaseTag, vr: str | None, length: int) -> bool:
        stopped[0] = length == _UNDEFINED_LENGTH
        return stopped[0]

    while True:
        stopped[0] = False
        try:
            for element in data_element_generator(
                stream, *encoding, stop_when=at_undefined_length, defer_size=defer_size,
                encoding=charset or default_encoding,
            ):  # fmt: skip
                if within_meta and element.tag >> 16 != 2:
                    break
                if type(element) is not RawDataElement:
                    return None
                found.append((element, element.value_tell + element.length))
                end = found[-1][1]
        except Exception:  # read() parsed these bytes: anything odd here is left to it
            return None
        if within_meta or not stopped[0]:
            break
        known = undefined.get(stream.tell())
        if known is None:
            return None  # a value of undefined length the full read did not take
        found.append(known)
        end = known[1]
        stream.seek(end)
    stream.seek(end)
    return found


def _undefined_lengths(
    ds: FileDataset, explicit: bool, size: int
) -> dict[int, tuple[_Element, int]]:
    """The elements of undefined length the full read took: sequences it parsed and
    encapsulated pixel data it left in the file (pydicom reads both item by item), by
    where their header starts, each with where it ends: where the next element's
    header starts, or the end of the file."""
    values = list(ds.values())
    found: dict[int, tuple[_Element, int]] = {}
    for element, following in zip(values, [*values[1:], None], strict=True):
        if _is_read_sequence(element) or _is_left_item_by_item(element):
            end = size if following is None else _start(following, explicit)
            found[_start(element, explicit)] = (element, end)
    return found


def _holes(ds: FileDataset, undefined: dict[int, tuple[_Element, int]]) -> list[tuple[int, int]]:
    """Where the values the read left in the file lie (start, end), in file order."""
    holes = [
        (element.value_tell, element.value_tell + element.length)
        for element in ds.values()
        if type(element) is RawDataElement and element.value is None and element.length
        and element.length != _UNDEFINED_LENGTH
    ]  # fmt: skip
    holes += [(e.value_tell, end) for e, end in undefined.values() if isinstance(e, RawDataElement)]
    return sorted(holes)


def _is_left_item_by_item(element: object) -> bool:
    """Whether the read left in the file a value of undefined length (encapsulated
    pixel data, whose items pydicom walked to find its end)."""
    return (
        type(element) is RawDataElement
        and element.length == _UNDEFINED_LENGTH
        and element.value is None
    )


def _encapsulated_end(handle: int, start: int, little: bool, defer_size: int) -> int | None:
    """Where the encapsulated value that starts at ``start`` in the open file ends (past
    its sequence delimiter), found as pydicom finds it, item by item, when pydicom would
    also leave it in the file (``defer_size`` bytes or more); None otherwise (an odd
    item, a delimiter with a length, the end of the file: the full read decides)."""
    header = struct.Struct("<HHL" if little else ">HHL")
    position = start
    while True:
        found = os.pread(handle, 8, position)
        if len(found) < 8:
            return None
        group, element, length = header.unpack(found)
        tag = group << 16 | element
        if tag == 0xFFFEE0DD:  # the sequence delimiter
            deferred = position + 4 - start >= defer_size
            return position + 8 if length == 0 and deferred else None
        if tag != 0xFFFEE000:
            return None
        position += 8 + length


def _start(element: _Element, explicit: bool) -> int:
    """Where the element's header starts in the file."""
    return _value_tell(element) - (12 if explicit and element.VR in EXPLICIT_VR_LENGTH_32 else 8)


def _charset_of(ds: FileDataset) -> list[str] | None:
    """The Python encodings of the data set's character set, as pydicom's parser hands
    them to the sequences it reads; None when they cannot be told."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the full read has said what is wrong with it
        try:
            return convert_encodings(ds.get("SpecificCharacterSet") or "")
        except Exception:  # LookupError when pydicom is set to raise; odd values
            return None


def _is_read_sequence(element: object) -> bool:
    """Whether pydicom's parser gave a sequence of undefined length (read item by item)."""
    return type(element) is DataElement and element.VR == "SQ" and element.is_undefined_length


def _is_short(element: RawDataElement) -> bool:
    """Whether a value read holds fewer bytes than its length says (the file ended)."""
    return element.value is not None and len(element.value) != element.length


def _value_tell(element: _Element) -> int:
    """Where the element's value starts in the file (-1: not known)."""
    if isinstance(element, RawDataElement):
        return element.value_tell
    return -1 if element.file_tell is None else int(element.file_tell)


def _as_read(spans: _Spans, ds: FileDataset) -> bool:
    """Whether the elements are the data set's, in its order (no duplicate hidden)."""
    if len(spans) != len(ds):
        return False
    for (element, _), kept in zip(spans, ds.values(), strict=True):
        if element.tag != kept.tag or _is_read_sequence(element) != _is_read_sequence(kept):
            return False
        if isinstance(kept, RawDataElement) and element != kept:
            return False
    return True


def _tiling(spans: _Spans, meta_count: int, implicit: bool, size: int) -> list[int] | None:
    """Where each element's header starts, when the elements tile the file from the
    end of the preamble to its last byte, nothing between them; else None."""
    starts = []
    end = _PREAMBLE_AND_PREFIX
    for index, (element, element_end) in enumerate(spans):
        start = _start(element, not implicit or index < meta_count)
        short = type(element) is RawDataElement and _is_short(element)
        if start != end or short:
            return None
        starts.append(start)
        end = element_end
    return starts if end == size and spans else None


def _segment(begin: int, end: int, starts: list[int], chunk: bytes) -> _Segment:
    """The segment of the file's bytes ``[begin, end)`` (``chunk``): the elements whose
    header starts there, and the preamble when it is the first."""
    first, after = bisect.bisect_left(starts, begin), bisect.bisect_left(starts, end)
    marks = [0] * (begin == 0) + [start - begin for start in starts[first:after]]
    array = np.frombuffer(chunk, np.uint8)
    return _Segment(begin, end, first, after, np.array(marks, dtype=np.intp), array)


def _segment_bytes(segments: list[_Segment], start: int, end: int) -> bytes:
    """The layout file's bytes ``[start, end)``, from the segment that holds them."""
    for segment in segments:
        if segment.start <= start and end <= segment.end:
            return segment.array[start - segment.start : end - segment.start].tobytes()
    raise ValueError(f"bytes {start}-{end} are not kept")
