"""From files to catalog rows: a pure function of a list of paths (no database).

:func:`file_rows` reads headers in worker processes and gives one
:class:`FileRow` per file: its fingerprint and, for a DICOM instance, the key
attributes of each level plus every non-bulk element in a compact JSON form.
The same function can run anywhere (a Dask worker writing Parquet, say).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from pydicom.values import convert_value

from dicomlens.catalog.schema import LEVEL_COLUMNS, FileRow, InstanceRow
from dicomlens.errors import FileError
from dicomlens.reading import fingerprint, read_files
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
        elif isinstance(result.value, str):
            yield FileRow(path, size, mtime_ns, inode, "error", result.value)
        else:
            yield FileRow(path, size, mtime_ns, inode, "instance", instance=result.value)


def _reason(error: FileError, path: str) -> str:
    text = str(error)
    return text[len(path) + 2 :] if text.startswith(path + ": ") else text


def _instance_or_reason(ds: FileDataset) -> InstanceRow | str:
    """The row of a dataset, or why its values cannot be read (a damaged value)."""
    try:
        return _instance_row(ds)
    except Exception as exc:  # pydicom's value converters raise many kinds
        return f"cannot decode ({type(exc).__name__}: {exc})"


def _instance_row(ds: FileDataset) -> InstanceRow:
    elements = _elements(ds)
    levels = {
        level: {column: _first(elements.get(key)) for column, key in columns.items()}
        for level, columns in _LEVEL_KEYS.items()
    }
    pixels = ds.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in ds else None
    offset = length = None
    if isinstance(pixels, RawDataElement) and pixels.length != 0xFFFFFFFF:
        offset, length = pixels.value_tell, pixels.length
    infos = slice_infos(ds, Path(str(ds.filename))) if "Rows" in ds else []
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
        _dumps(elements),
    )


def _first(value: Any) -> Any:
    """A key attribute for its typed column: the first value of a multi-valued one."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


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
    return _dumps(_elements(ds))


def _dumps(elements: dict[str, Any]) -> str:
    return json.dumps(elements, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _elements(ds: Dataset, inherited: list[str] | None = None) -> dict[str, Any]:
    """One pass over the raw elements: each converted by pydicom without being stored
    back in the dataset (the dataset's bookkeeping would cost more than the conversion)."""
    if inherited is None or 0x00080005 in ds:
        encodings = convert_encodings(_charset_names(ds))
    else:
        encodings = inherited
    out: dict[str, Any] = {}
    creators: dict[int, str] = {}
    for raw in ds.elements():
        tag = int(raw.tag)
        if raw.VR in _BULK_VRS or (
            isinstance(raw, RawDataElement) and raw.value is None and raw.length
        ):
            continue  # binary or deferred: bulk data left in the file
        if isinstance(raw, RawDataElement) and raw.VR in _PLAIN_VRS:
            vr, value = raw.VR, convert_value(raw.VR, raw, encodings)  # the common case, direct
        else:
            element = (
                convert_raw_data_element(raw, encoding=encodings, ds=ds)
                if isinstance(raw, RawDataElement)
                else raw
            )
            vr, value = element.VR, element.value
        if vr in _BULK_VRS:
            continue
        group, number = tag >> 16, tag & 0xFFFF
        creator = None
        if group % 2:
            if 0x10 <= number <= 0xFF and isinstance(value, str):
                creators[tag] = value
            elif number >= 0x1000:
                creator = creators.get((group << 16) | (number >> 8))
        out[element_key(tag, creator)] = _json_value(vr, value, encodings)
    return out


def _charset_names(ds: Dataset) -> Any:
    try:
        return ds["SpecificCharacterSet"].value if "SpecificCharacterSet" in ds else "ISO_IR 6"
    except Exception:  # an unreadable charset: decode as the default
        return "ISO_IR 6"


def _json_value(vr: str, value: Any, encodings: list[str] | None) -> Any:
    if vr == "SQ":
        return [_elements(item, encodings) for item in value]
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


def _slice_fields(info: SliceInfo) -> dict[str, Any]:
    fields = asdict(info)
    del fields["path"]
    return fields


_TUPLES: Final = ("position", "orientation", "pixel_spacing", "image_type")


def slices_from_json(text: str, path: str) -> list[SliceInfo]:
    """The :class:`SliceInfo` list stored by :func:`file_rows` for the file at ``path``."""
    infos = []
    for fields in json.loads(text):
        for name in _TUPLES:
            if fields[name] is not None:
                fields[name] = tuple(fields[name])
        if fields["native_pixels"] is not None:
            fields["native_pixels"] = NativePixels(*fields["native_pixels"])
        infos.append(SliceInfo(path=Path(path), **fields))
    return infos
