"""From files to catalog rows: a pure function of a list of paths (no database).

:func:`file_rows` reads headers in worker processes and gives one
:class:`FileRow` per file: its fingerprint and, for a DICOM instance, the key
attributes of each level plus every non-bulk element in a compact JSON form.
The same function can run anywhere (a Dask worker writing Parquet, say).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from pydicom.values import convert_value

from dicomlens.catalog.schema import LEVEL_COLUMNS, FileRow, InstanceRow
from dicomlens.errors import FileError
from dicomlens.reading import fingerprint, is_dicomdir, read_files
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
_DEFER_BYTES: Final = 16384
_PIXEL_DATA: Final = 0x7FE00010


def file_rows(paths: Sequence[str | os.PathLike[str]], *, workers: int = 1) -> Iterator[FileRow]:
    """One :class:`FileRow` per path, in order; headers read in ``workers`` processes.

    >>> from pydicom.data import get_testdata_file
    >>> (row,) = file_rows([get_testdata_file("CT_small.dcm")])
    >>> row.kind, row.instance.series["modality"], row.instance.instance["rows"]
    ('instance', 'CT', 128)
    """
    listed = [(Path(p), None, False) for p in paths]
    with warnings.catch_warnings():
        # Odd values and short pixel data do not stop a header from being indexed
        # (and pydicom's value warnings would quote the values into logs).
        warnings.simplefilter("ignore")
        yield from _rows(listed, workers)


def _rows(listed: list[tuple[Path, None, bool]], workers: int) -> Iterator[FileRow]:
    reads = read_files(
        listed,
        stop_before_pixels=False,  # pixel data deferred: its offset is kept
        decode=(),
        defer_size=_DEFER_BYTES,
        extract=_instance_or_reason,
        workers=workers,
    )
    for result in reads:
        path = str(result.path)
        try:
            size, mtime_ns, inode = fingerprint(path)
        except OSError:
            size = mtime_ns = inode = 0
        if result.ignorable:
            yield FileRow(path, size, mtime_ns, inode, "other", "not a DICOM file")
        elif result.error is not None:
            yield FileRow(path, size, mtime_ns, inode, "error", _reason(result.error, path))
        elif isinstance(result.value, _NotAnInstance):
            yield FileRow(path, size, mtime_ns, inode, "other", result.value.reason)
        elif isinstance(result.value, str):
            yield FileRow(path, size, mtime_ns, inode, "error", result.value)
        else:
            yield FileRow(path, size, mtime_ns, inode, "instance", instance=result.value)


def _reason(error: FileError, path: str) -> str:
    text = str(error)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


class _NotAnInstance(NamedTuple):
    reason: str


def _instance_or_reason(ds: FileDataset) -> InstanceRow | _NotAnInstance | str:
    """The row of a dataset, or why its values cannot be read (a damaged value)."""
    if is_dicomdir(ds):
        return _NotAnInstance("a DICOMDIR: the files it lists are indexed as they are found")
    try:
        return _instance_row(ds)
    except Exception as exc:  # pydicom's value converters raise many kinds
        return f"cannot decode ({type(exc).__name__}: {exc})"


def _instance_row(ds: FileDataset) -> InstanceRow:
    text, values = _encoded(ds)
    levels = {
        level: {column: _first(values.get(key)) for column, key in columns.items()}
        for level, columns in _LEVEL_KEYS.items()
    }
    pixels = ds.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in ds else None
    offset = length = None
    if isinstance(pixels, RawDataElement) and pixels.length != 0xFFFFFFFF:
        offset, length = pixels.value_tell, pixels.length

    def value(keyword: str, default: Any = None) -> Any:
        found = values.get(_key_of_keyword(keyword))
        return default if found is None else found

    infos = slice_infos(ds, Path(str(ds.filename)), value) if "Rows" in ds else []
    syntax = ds.file_meta.get("TransferSyntaxUID", "") if hasattr(ds, "file_meta") else ""
    return InstanceRow(
        levels["patient"],
        levels["study"],
        levels["series"],
        levels["instance"],
        str(syntax),
        offset,
        length,
        json.dumps([_slice_fields(info) for info in infos], separators=(",", ":")),
        text,
    )


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


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# The same bytes of the same element decode to the same value: most elements repeat
# from file to file of a series, so each distinct one is decoded and encoded only once.
_Member = tuple[str, str, Any]  # element key, '"key":value' (JSON), value
_MemoKey = tuple[int, str | None, str, bytes | None, bool, tuple[str, ...]]
_members: dict[_MemoKey, _Member] = {}
_MEMO_LIMIT: Final = 1 << 15  # entries (values are short: a few MB per worker)
_MEMO_MAX_BYTES: Final = 256  # longer values are decoded every time
_LONGEST_TEXT: Final = 1 << 20  # bytes of a deferred text value read for the catalog


def _encoded(ds: Dataset, inherited: tuple[str, ...] | None = None) -> tuple[str, dict[str, Any]]:
    """The JSON object of a data set's non-bulk elements, and its values by element key.

    One pass over the raw elements: each converted by pydicom without being stored
    back in the dataset (the dataset's bookkeeping would cost more than the conversion).
    """
    if inherited is None or 0x00080005 in ds:
        encodings = tuple(convert_encodings(_charset_names(ds)))
    else:
        encodings = inherited
    members: dict[str, str] = {}
    values: dict[str, Any] = {}
    creators: dict[int, str] = {}
    for element in ds.values():  # as read: unconverted, in file order
        tag = int(element.tag)
        vr = element.VR or _implicit_vr(tag)
        raw: RawDataElement | DataElement | None = element
        if type(element) is RawDataElement and element.value is None and element.length:
            raw = _deferred_value(ds, element, vr)
        if raw is None:
            continue
        creator = None
        if tag & 0x10000 and tag & 0xFFFF >= 0x1000:  # a private element: find its block
            creator = creators.get(tag & 0xFFFF0000 | tag >> 8 & 0xFF)
        if type(raw) is RawDataElement and vr in _PLAIN_VRS:
            memo_key = (tag, creator, vr, raw.value, raw.is_little_endian, encodings)
            key, members[key], value = _members.get(memo_key) or _decode_plain(memo_key, raw)
        else:
            decoded = _decoded_other(raw, ds, encodings)
            if decoded is None:
                continue
            text, value = decoded
            key, start = _member_start(tag, creator)
            members[key] = start + text
        values[key] = value
        if tag & 0x10000 and 0x10 <= tag & 0xFFFF <= 0xFF and isinstance(value, str):
            creators[tag] = value  # a private creator
    return "{" + ",".join(members.values()) + "}", values


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


def _deferred_value(
    ds: Dataset, raw: RawDataElement, vr: str | None
) -> RawDataElement | DataElement | None:
    """A long value the read left in the file: read now if it is text (a report, an
    XML document), None if it is bulk data or unreasonably long."""
    plain = vr in _PLAIN_VRS or (raw.VR is None and raw.tag & 0x10000)  # implicit private
    if not plain or raw.length > _LONGEST_TEXT or not isinstance(ds, FileDataset):
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


_TUPLES: Final = ("position", "orientation", "pixel_spacing", "image_type")


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
