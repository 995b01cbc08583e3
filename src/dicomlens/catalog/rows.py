"""From files to catalog rows: a pure function of a list of paths (no database).

:func:`file_rows` reads headers in worker processes and gives one
:class:`FileRow` per file: its fingerprint and, for a DICOM instance, the key
attributes of each level plus every non-bulk element in a compact JSON form.
The same function can run anywhere (a Dask worker writing Parquet, say).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import itertools
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from pydicom.values import convert_value

from dicomlens.catalog.schema import (
    LEVEL_COLUMNS,
    FileRow,
    InstanceRow,
    scalar_pairs,
    top_level_scalars,
)
from dicomlens.errors import FileError, NotDicomError
from dicomlens.reading import (
    CONTEXT_TAGS,
    Layout,
    Likeness,
    decode_elements,
    fingerprint,
    in_processes,
    is_dicomdir,
    plain_reason,
    read_with_layout,
)
from dicomlens.series import NativePixels, SliceInfo, slice_infos

__all__ = [
    "element_key",
    "elements_json",
    "file_rows",
    "slices_from_json",
]

_LEVEL_KEYS: Final = {
    level: {column: f"{tag_for_keyword(keyword):08X}" for column, keyword in columns.items()}
    for level, columns in LEVEL_COLUMNS.items()
}
_BULK_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# VRs pydicom converts the same whatever the context (no "US or SS", no sequences).
_PLAIN_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL",
     "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UR", "US", "UT", "UV", "AT"}
)  # fmt: skip
_INTEGER_VRS: Final = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_FLOAT_VRS: Final = frozenset({"DS", "FD", "FL"})
_MAY_BE_SEQUENCE: Final = frozenset({None, "SQ", "UN"})  # VRs as read (None: implicit VR)
_DEFER_BYTES: Final = 16384
_PIXEL_DATA: Final = 0x7FE00010


def file_rows(paths: Sequence[str | os.PathLike[str]], *, workers: int = 1) -> Iterator[FileRow]:
    """One :class:`FileRow` per path, in order; headers read in ``workers`` processes.

    Each process reads runs of consecutive files; a file laid out like one it has
    just read (the next slice of a series) is read against that file's layout, so
    that only the elements whose bytes differ are parsed and decoded again.

    >>> from pydicom.data import get_testdata_file
    >>> (row,) = file_rows([get_testdata_file("CT_small.dcm")])
    >>> row.kind, row.instance.series["modality"], row.instance.instance["rows"]
    ('instance', 'CT', 128)
    """
    listed = [str(Path(p)) for p in paths]
    with warnings.catch_warnings():
        # Odd values and short pixel data do not stop a header from being indexed
        # (and pydicom's value warnings would quote the values into logs).
        warnings.simplefilter("ignore")
        yield from in_processes(_file_row, listed, workers=workers)


# Per process: the templates of the layouts met last, the most recently used first.
_templates: list[_Template] = []
_TEMPLATES_KEPT: Final = 4


def _file_row(path: str) -> FileRow:
    """The row of one file: against a template when one fits, else read whole."""
    for position, template in enumerate(_templates):
        likeness = template.layout.read_like(path)
        row = None if likeness is None else template.row(likeness)
        if row is not None:
            _templates.insert(0, _templates.pop(position))
            return row
    return _read_whole(path)


def _read_whole(path: str) -> FileRow:
    """The row of a file read with every check; its layout becomes a template."""
    try:
        ds, found, layout = read_with_layout(path, defer_size=_DEFER_BYTES)
    except NotDicomError:
        return FileRow(path, *_fingerprint_or_zeros(path), "other", "not a DICOM file")
    except FileError as error:
        return FileRow(path, *_fingerprint_or_zeros(path), "error", _reason(error, path))
    if is_dicomdir(ds):
        reason = "a DICOMDIR: the files it lists are indexed as they are found"
        return FileRow(path, *found, "other", reason)
    kept_as_bytes = ""
    try:
        encodings = _encodings(ds)
        try:
            entries, creators = _entries(ds, encodings)
        except Exception:  # an element pydicom cannot decode: kept as its bytes
            kept_as_bytes, layout = _keep_undecodable_as_bytes(ds, path), None
            entries, creators = _entries(ds, encodings)
        text, values = _object(entries)
        pixels = ds.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in ds else None
        instance = _instance_row(ds, path, text, values, pixels, *_form(ds))
    except FileError as error:
        return FileRow(path, *found, "error", _reason(error, path))
    except Exception as exc:  # pydicom's value converters raise many kinds
        return FileRow(path, *found, "error", f"cannot decode ({plain_reason(exc)})")
    if layout is not None:
        template = _Template.of(layout, ds, encodings, entries, creators, values)
        if template is not None:
            _templates.insert(0, template)
            del _templates[_TEMPLATES_KEPT:]
    return FileRow(path, *found, "instance", kept_as_bytes, instance=instance)


def _keep_undecodable_as_bytes(ds: FileDataset, path: str) -> str:
    """Decode every element as :func:`~dicomlens.reading.read` does, keeping those
    that do not decode as raw bytes (UN); the warnings it gave, joined."""
    with warnings.catch_warnings(record=True) as noticed:
        warnings.simplefilter("always")
        decode_elements(ds, Path(path))
    prefix = f"{path}: "
    return "; ".join(str(w.message).removeprefix(prefix) for w in noticed)


def _fingerprint_or_zeros(path: str) -> tuple[int, int, int]:
    try:
        return fingerprint(path)
    except OSError:
        return 0, 0, 0


def _reason(error: FileError, path: str) -> str:
    text = str(error)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


class _Template(NamedTuple):
    """A file read whole with its catalog row element by element: a file of the same
    layout is a row by decoding only the elements whose bytes differ from it."""

    layout: Layout
    ds: FileDataset  # context for decoding (character set, creators, ambiguous VRs)
    encodings: tuple[str, ...]
    entries: list[_Member | None]  # per data set element; None: not in the JSON
    creators: list[str | None]  # per data set element: its private block's creator
    members: list[str]  # the JSON members, in order
    places: dict[str, int]  # element key -> position among the members
    values: dict[str, Any]
    scalars: dict[str, tuple[tuple[str, Any], ...]]  # the values' scalar pairs, by key
    pixel_data: int | None  # the layout's index of the Pixel Data element
    form: tuple[bool, str]  # whether it holds images, and its transfer syntax
    sequences: dict[int, _SequenceTemplate]  # by data set element

    @classmethod
    def of(
        cls,
        layout: Layout,
        ds: FileDataset,
        encodings: tuple[str, ...],
        entries: list[_Member | None],
        creators: list[str | None],
        values: dict[str, Any],
    ) -> _Template | None:
        """The template of a file, unless something of its row comes from elsewhere
        than its elements' bytes: a text left in the file (read for the row),
        functional groups (read for the slices), two elements with one key."""
        if any(_left_in_file(e) and _is_text(e) for e in ds.values()):  # type: ignore[arg-type]
            return None
        groups = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
        if any(keyword in ds for keyword in groups):
            return None
        kept = [entry for entry in entries if entry is not None]
        places = {key: place for place, (key, _, _) in enumerate(kept)}
        if len(places) != len(kept):
            return None
        members = [member for _, member, _ in kept]
        tags: list[int] = list(ds.keys())
        pixel_data = layout.meta_count + tags.index(_PIXEL_DATA) if _PIXEL_DATA in ds else None
        sequences = {}
        for number, (element, entry) in enumerate(zip(ds.values(), entries, strict=True)):
            if entry is None:
                continue
            found = _SequenceTemplate.of(element, creators[number], ds, encodings)
            if found is not None and found.key == entry[0]:
                sequences[number] = found
        form = _form(ds)
        scalars = {key: scalar_pairs(key, value) for key, value in values.items()}
        return cls(
            layout, ds, encodings, entries, creators, members, places, values, scalars,
            pixel_data, form, sequences,
        )  # fmt: skip

    def row(self, likeness: Likeness) -> FileRow | None:
        """The row of a file read against this template's layout; None when it must
        be read whole (a changed element that cannot be decoded from its bytes alone)."""
        members = self.members.copy()
        values = self.values.copy()
        scalars = self.scalars.copy()
        meta_count = self.layout.meta_count
        for index, element in likeness.changed.items():
            if index < meta_count:
                continue  # the file meta is not in the row (and its context did not change)
            number = index - meta_count
            before = self.entries[number]
            raw = element if isinstance(element, RawDataElement) else None
            if raw is not None and _left_in_file(raw) and _is_text(raw):
                return None
            sequence = self.sequences.get(number)
            try:
                after = None if sequence is None or raw is None else sequence.entry_like(raw)
                if after is None:
                    after = _entry(element, self.creators[number], self.ds, self.encodings)
            except Exception:  # the full read names the damage
                return None
            if (before is None) != (after is None):
                return None
            if after is not None:
                key, member, value = after
                members[self.places[key]], values[key] = member, value
                scalars[key] = scalar_pairs(key, value)
        pixels = None if self.pixel_data is None else likeness.element(self.pixel_data)
        text = "{" + ",".join(members) + "}"
        pairs = tuple(itertools.chain.from_iterable(scalars.values()))
        instance = _instance_row(self.ds, likeness.path, text, values, pixels, *self.form, pairs)
        return FileRow(likeness.path, *likeness.fingerprint, "instance", instance=instance)


class _SequenceTemplate(NamedTuple):
    """A sequence of a template, item by item: the same sequence in another file, with
    the same bytes but for some values (each inside one element of an item, whose
    header is unchanged), is decoded by decoding those values alone. Any other
    difference: pydicom decodes it whole."""

    element: RawDataElement
    array: NDArray[np.uint8]  # its value
    key: str
    start: str  # the key as the start of a JSON member
    items: list[_Item]
    objects: list[tuple[str, dict[str, Any]]]  # each item's JSON object and values
    leaf_starts: NDArray[np.intp]  # where each leaf's value lies in the sequence's
    leaf_ends: NDArray[np.intp]
    leaves: list[tuple[int, int, RawDataElement]]  # item, place in it, element

    @classmethod
    def of(
        cls,
        element: RawDataElement | DataElement,
        creator: str | None,
        ds: Dataset,
        encodings: tuple[str, ...],
    ) -> _SequenceTemplate | None:
        """The template of a sequence as read (of a defined length, not yet decoded)."""
        if type(element) is not RawDataElement or not element.value:
            return None
        if element.VR not in _MAY_BE_SEQUENCE or _implicit_vr(int(element.tag)) is not None:
            return None  # (converting every element to see would cost more than the rest)
        decoded = convert_raw_data_element(element, encoding=list(encodings), ds=ds)
        if decoded.VR != "SQ":
            return None
        value = element.value
        items, objects, leaves = [], [], []
        for number, item in enumerate(decoded.value):
            item_encodings = _encodings(item, encodings)
            entries, creators = _entries(item, item_encodings)
            text, values = _object(entries)
            if len(values) != sum(entry is not None for entry in entries):
                return None  # an element key met twice
            items.append(_Item(item, item_encodings, entries, creators))
            objects.append((text, values))
            for place, leaf in enumerate(item.values()):
                if _is_leaf(leaf):
                    if value[leaf.value_tell : leaf.value_tell + leaf.length] != leaf.value:
                        return None  # positions not within the sequence: pydicom decodes
                    leaves.append((leaf.value_tell, number, place, leaf))
        leaves.sort(key=lambda found: found[0])
        key, start = _member_start(int(element.tag), creator)
        return cls(
            element, np.frombuffer(value, np.uint8), key, start, items, objects,
            np.array([leaf.value_tell for _, _, _, leaf in leaves], dtype=np.intp),
            np.array([leaf.value_tell + leaf.length for _, _, _, leaf in leaves], dtype=np.intp),
            [(number, place, leaf) for _, number, place, leaf in leaves],
        )  # fmt: skip

    def entry_like(self, element: RawDataElement) -> _Member | None:
        """The entry of this sequence as another file holds it, when only leaf values
        differ; None to decode it whole."""
        value = element.value
        if value is None or len(value) != len(self.array) or element.VR != self.element.VR:
            return None
        differ = np.flatnonzero(np.frombuffer(value, np.uint8) != self.array)
        places = np.searchsorted(self.leaf_starts, differ, "right") - 1
        if places.size and (places.min() < 0 or (differ >= self.leaf_ends[places]).any()):
            return None  # a difference outside every leaf's value
        objects = list(self.objects)
        changed: dict[int, list[_Member | None]] = {}
        for leaf in sorted(set(places.tolist())):  # (np.unique would import numpy.ma)
            number, place, old = self.leaves[leaf]
            item = self.items[number]
            new = old._replace(value=value[old.value_tell : old.value_tell + old.length])
            entries = changed.setdefault(number, list(item.entries))
            entries[place] = _entry(new, item.creators[place], item.ds, item.encodings)
            if (entries[place] is None) != (item.entries[place] is None):
                return None
        for number, entries in changed.items():
            objects[number] = _object(entries)
        text = "[" + ",".join(item_text for item_text, _ in objects) + "]"
        return self.key, self.start + text, [item_values for _, item_values in objects]


class _Item(NamedTuple):
    """An item of a template's sequence, with its entries as the row has them."""

    ds: Dataset
    encodings: tuple[str, ...]
    entries: list[_Member | None]
    creators: list[str | None]


def _is_leaf(element: RawDataElement | DataElement) -> bool:
    """Whether an element of an item is decoded from its own bytes alone: a plain or
    bulk value, not a sequence, not context for other elements."""
    if type(element) is not RawDataElement or element.value is None:
        return False
    if element.tag in CONTEXT_TAGS or element.tag.is_private_creator:
        return False
    vr = element.VR or _implicit_vr(element.tag)
    return vr in _PLAIN_VRS or (element.VR in _BULK_VRS and element.VR != "UN")


def _instance_row(
    ds: FileDataset,
    path: str,
    text: str,
    values: dict[str, Any],
    pixels: RawDataElement | DataElement | None,
    images: bool,
    syntax: str,
    scalars: tuple[tuple[str, Any], ...] | None = None,
) -> InstanceRow:
    """The row of an instance from its elements' JSON and values (and their scalar
    pairs, when known), its Pixel Data element as read, and its data set (for the
    structure: :func:`_form` tells the rest)."""
    levels = {
        level: {column: _first(values.get(key)) for column, key in columns.items()}
        for level, columns in _LEVEL_KEYS.items()
    }
    offset = length = None
    if isinstance(pixels, RawDataElement) and pixels.length != 0xFFFFFFFF:
        offset, length = pixels.value_tell, pixels.length

    def value(keyword: str, default: Any = None) -> Any:
        found = values.get(_key_of_keyword(keyword))
        return default if found is None else found

    def private(group: int, creator: str, offset: int) -> Any:
        return values.get(element_key(group << 16 | offset, creator))

    infos = slice_infos(ds, Path(path), value, pixel_data=pixels, private=private) if images else []
    return InstanceRow(
        levels["patient"],
        levels["study"],
        levels["series"],
        levels["instance"],
        syntax,
        offset,
        length,
        _SLICES_JSON.encode([_slice_fields(info) for info in infos]),
        text,
        top_level_scalars(values) if scalars is None else scalars,
    )


def _form(ds: FileDataset) -> tuple[bool, str]:
    """Whether a data set holds images (Rows), and its transfer syntax."""
    syntax = ds.file_meta.get("TransferSyntaxUID", "") if hasattr(ds, "file_meta") else ""
    return "Rows" in ds, str(syntax)


def _first(value: Any) -> Any:
    """A key attribute for its typed column: the first value of a multi-valued one."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


@functools.cache
def _key_of_keyword(keyword: str) -> str:
    return f"{tag_for_keyword(keyword) or 0:08X}"


# ---------------------------------------------------------------------------
# Elements as JSON
# ---------------------------------------------------------------------------


def element_key(tag: int, creator: str | None = None) -> str:
    """The JSON key of an element: ``00280030``; a private element with its
    creator as ``0019xx0C[SIEMENS CT VA0  COAD]`` (its block may differ per file)."""
    if creator is not None:
        return f"{tag >> 16:04X}xx{tag & 0xFF:02X}[{creator}]"
    return f"{tag:08X}"


def elements_json(ds: Dataset) -> str:
    """Every non-bulk element of ``ds`` (nested sequences included) as compact JSON.

    >>> ds = Dataset(); ds.PatientName = "Doe^Jane"; ds.PixelSpacing = [0.5, 0.5]
    >>> elements_json(ds)
    '{"00100010":"Doe^Jane","00280030":[0.5,0.5]}'
    """
    return _encoded(ds)[0]


# One encoder each, made once (json.dumps makes a new one for every call with options).
_SLICES_JSON: Final = json.JSONEncoder(separators=(",", ":"))
_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


# The same bytes of the same element decode to the same value: most elements repeat
# from file to file of a series, so each distinct one is decoded and encoded only once.
_Member = tuple[str, str, Any]  # element key, '"key":value' (JSON), value
_MemoKey = tuple[int, str | None, str, bytes | None, bool, tuple[str, ...]]
_members: dict[_MemoKey, _Member] = {}
_MEMO_LIMIT: Final = 1 << 15  # entries (values are short: a few MB per worker)
_MEMO_MAX_BYTES: Final = 256  # longer values are decoded every time
_LONGEST_TEXT: Final = 1 << 20  # bytes of a deferred text value read for the catalog


def _encoded(ds: Dataset, inherited: tuple[str, ...] | None = None) -> tuple[str, dict[str, Any]]:
    """The JSON object of a data set's non-bulk elements, and its values by element key."""
    entries, _ = _entries(ds, _encodings(ds, inherited))
    return _object(entries)


def _encodings(ds: Dataset, inherited: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The character encodings of a data set (a sequence item inherits its parent's)."""
    if inherited is None or 0x00080005 in ds:
        return tuple(convert_encodings(_charset_names(ds)))
    return inherited


def _entries(
    ds: Dataset, encodings: tuple[str, ...]
) -> tuple[list[_Member | None], list[str | None]]:
    """Each element's JSON member and value (None: left out), and its private block's
    creator, in file order.

    One pass over the raw elements: each converted by pydicom without being stored
    back in the dataset (the dataset's bookkeeping would cost more than the conversion).
    """
    entries: list[_Member | None] = []
    creators_of: list[str | None] = []
    creators: dict[int, str] = {}
    for element in ds.values():  # as read: unconverted, in file order
        tag = int(element.tag)
        creator = None
        if tag & 0x10000 and tag & 0xFFFF >= 0x1000:  # a private element: find its block
            creator = creators.get(tag & 0xFFFF0000 | tag >> 8 & 0xFF)
        entry = _entry(element, creator, ds, encodings)
        entries.append(entry)
        creators_of.append(creator)
        if entry is not None and element.tag.is_private_creator and isinstance(entry[2], str):
            creators[tag] = entry[2]
    return entries, creators_of


def _entry(
    element: RawDataElement | DataElement,
    creator: str | None,
    ds: Dataset,
    encodings: tuple[str, ...],
) -> _Member | None:
    """One element's key, JSON member and value; None for bulk data."""
    tag = int(element.tag)
    vr = element.VR or _implicit_vr(tag)
    raw: RawDataElement | DataElement | None = element
    if _left_in_file(element):
        raw = _deferred_value(ds, element)  # type: ignore[arg-type]
        if raw is None:
            return None
    if type(raw) is RawDataElement and vr in _PLAIN_VRS:
        memo_key = (tag, creator, vr, raw.value, raw.is_little_endian, encodings)
        return _members.get(memo_key) or _decode_plain(memo_key, raw)
    decoded = _decoded_other(raw, ds, encodings)
    if decoded is None:
        return None
    text, value = decoded
    key, start = _member_start(tag, creator)
    return key, start + text, value


def _object(entries: list[_Member | None]) -> tuple[str, dict[str, Any]]:
    """The JSON object of the entries, and their values by key (an element key met
    twice, two private blocks of one creator, keeps its first place and last value)."""
    members: dict[str, str] = {}
    values: dict[str, Any] = {}
    for entry in entries:
        if entry is not None:
            key, members[key], values[key] = entry
    return "{" + ",".join(members.values()) + "}", values


def _left_in_file(element: RawDataElement | DataElement) -> bool:
    """Whether the read left the element's value in the file (a long value)."""
    return type(element) is RawDataElement and element.value is None and bool(element.length)


def _is_text(raw: RawDataElement) -> bool:
    """Whether a value left in the file is text that the catalog reads (a report, an
    XML document); bulk data (binary VRs, unknown UN) and overlong values are not."""
    vr = raw.VR or _implicit_vr(raw.tag)
    plain = vr in _PLAIN_VRS or (raw.VR is None and raw.tag & 0x10000)  # implicit private
    return bool(plain) and raw.length <= _LONGEST_TEXT


@functools.lru_cache(maxsize=1 << 14)
def _member_start(tag: int, creator: str | None) -> tuple[str, str]:
    """An element's key, and the key as the start of a JSON member."""
    key = element_key(tag, creator)
    return key, _dumps(key) + ":"


@functools.lru_cache(maxsize=1 << 12)
def _implicit_vr(tag: int) -> str | None:
    """The dictionary VR of a public element read without one (implicit VR), when plain."""
    if tag >> 16 & 1 or tag & 0xFFFF == 0:
        return None  # private, or a group length: pydicom's own rules apply
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr if vr in _PLAIN_VRS else None


def _deferred_value(ds: Dataset, raw: RawDataElement) -> RawDataElement | DataElement | None:
    """A long value the read left in the file: read now if it is text, None if it is
    bulk data or unreasonably long."""
    if not _is_text(raw) or not isinstance(ds, FileDataset):
        return None
    return ds.get_item(raw.tag)


def _decode_plain(memo_key: _MemoKey, raw: RawDataElement) -> _Member:
    """Decode a plain-VR element (once per distinct memo key)."""
    tag, creator, vr, value_bytes, _, encodings = memo_key
    value = _json_value(vr, convert_value(vr, raw, list(encodings)))
    key, start = _member_start(tag, creator)
    found = (key, start + _dumps(value), value)
    if value_bytes is None or len(value_bytes) <= _MEMO_MAX_BYTES:  # None: an empty value
        if len(_members) >= _MEMO_LIMIT:
            _members.clear()
        _members[memo_key] = found
    return found


def _decoded_other(raw: Any, ds: Dataset, encodings: tuple[str, ...]) -> tuple[str, Any] | None:
    """JSON text and value of an ambiguous, sequence or already converted element;
    None for bulk data (binary VRs, unknown UN)."""
    if isinstance(raw, RawDataElement):
        if raw.VR in _BULK_VRS and raw.VR != "UN":
            return None
        # UN of a tag pydicom's dictionary knows gets its VR here
        element = convert_raw_data_element(raw, encoding=list(encodings), ds=ds)
        if " or " in element.VR:  # "US or SS": decided by the data set, as pydicom does
            corrected = correct_ambiguous_vr_element(element, ds, raw.is_little_endian)
            element = corrected if isinstance(corrected, DataElement) else element
    else:
        element = raw
    if element.VR == "UN" and isinstance(element.value, bytes):  # kept as read: undecodable
        return _dumps({"vr": "UN", "InlineBinary": base64.b64encode(element.value).decode()}), None
    if element.VR in _BULK_VRS:
        return None
    if element.VR == "SQ":
        items = [_encoded(item, encodings) for item in element.value]
        text = "[" + ",".join(item_text for item_text, _ in items) + "]"
        return text, [item_values for _, item_values in items]
    value = _json_value(element.VR, element.value)
    return _dumps(value), value


def _charset_names(ds: Dataset) -> Any:
    try:
        return ds["SpecificCharacterSet"].value if "SpecificCharacterSet" in ds else "ISO_IR 6"
    except Exception:  # an unreadable charset: decode as the default
        return "ISO_IR 6"


def _json_value(vr: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        return [_scalar(v, vr) for v in value]
    return _scalar(value, vr)


def _scalar(value: Any, vr: str) -> Any:
    if isinstance(value, PersonName):
        return str(value)
    if vr in _INTEGER_VRS:
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)
    if vr in _FLOAT_VRS:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return number if math.isfinite(number) else str(value)
    if vr == "AT":
        return f"{int(value):08X}"
    if isinstance(value, bytes | bytearray):
        return None
    return str(value)


# ---------------------------------------------------------------------------
# Slices (for the series grouping, without re-reading headers)
# ---------------------------------------------------------------------------


_SLICE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(SliceInfo) if f.name != "path")


def _slice_fields(info: SliceInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in _SLICE_FIELDS}


_TUPLES: Final = (
    "position",
    "orientation",
    "pixel_spacing",
    "image_type",
    "gradient",
    "volume_order",
)


def slices_from_json(
    text: str, path: str, recorded: tuple[int, int, int] | None = None
) -> list[SliceInfo]:
    """The :class:`SliceInfo` list stored by :func:`file_rows` for the file at ``path``.

    With the ``recorded`` fingerprint (size, mtime_ns, inode), a file changed since it
    was indexed loses its pixel offsets: it is then read (and checked) again, never
    trusted at a stale position.
    """
    fresh = recorded is None or _fingerprint_or_none(path) == recorded
    infos = []
    for fields in json.loads(text):
        for name in _TUPLES:
            if fields[name] is not None:
                fields[name] = tuple(fields[name])
        if fields["native_pixels"] is not None:
            fields["native_pixels"] = NativePixels(*fields["native_pixels"]) if fresh else None
        infos.append(SliceInfo(path=Path(path), **fields))
    return infos


def _fingerprint_or_none(path: str) -> tuple[int, int, int] | None:
    try:
        return fingerprint(path)
    except OSError:
        return None
