"""What a truncated file holds before its cut: the elements that end inside the file.

:func:`~dicomlens.reading.read` refuses a file whose value or sequence is cut by the
end of the file; ``read(salvage=True)`` falls back to :func:`read_prefix`, which
lets pydicom parse element after element and keeps every top-level element that is
whole, as dcmdump prints what it read before its error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO, Final

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileDataset
from pydicom.filereader import data_element_generator, read_file_meta_info, read_preamble
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

__all__ = ["read_prefix"]

_PIXEL_DATA: Final = 0x7FE00010
_UNDEFINED: Final = 0xFFFFFFFF
_RAN_OUT: Final = "End of file reached before delimiter"  # pydicom's warning
_DEFER_BYTES: Final = 1 << 20


def read_prefix(file: Path, *, stop_before_pixels: bool) -> tuple[FileDataset, int]:
    """The whole top-level elements of a cut file (their values not yet decoded), and
    the byte where the first incomplete one starts.

    Raises
    ------
    ValueError
        Not even the file meta can be read.
    """
    with file.open("rb") as stream:
        return _read_prefix(stream, file, stop_before_pixels)


def _read_prefix(stream: BinaryIO, file: Path, stop_before_pixels: bool) -> tuple[FileDataset, int]:
    size = file.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes on the damage: we say where it is
        preamble = read_preamble(stream, force=False)
        try:
            meta = read_file_meta_info(file)
        except Exception as exc:  # the file meta itself is cut
            raise ValueError(f"the file meta is incomplete ({exc})") from None
    start = 132 + 12 + int(meta.get("FileMetaInformationGroupLength", 0))
    syntax = meta.get("TransferSyntaxUID")
    implicit, little = syntax == ImplicitVRLittleEndian, syntax != ExplicitVRBigEndian
    stream.seek(start)
    kept: dict[BaseTag, RawDataElement | DataElement] = {}
    cut = start
    # long values stay in the file (memory stays bounded): whole when their bytes are there
    elements = data_element_generator(stream, implicit, little, defer_size=_DEFER_BYTES)
    with warnings.catch_warnings(record=True) as noticed:
        warnings.simplefilter("always")
        try:
            for raw in elements:
                closed = not any(_RAN_OUT in str(w.message) for w in noticed)
                length = raw.length if isinstance(raw, RawDataElement) else _UNDEFINED
                if raw.value is None and isinstance(raw, RawDataElement) and length:
                    whole = raw.value_tell + length <= size  # left in the file
                else:
                    whole = length in (_UNDEFINED, 0 if raw.value is None else len(raw.value))
                if not (closed and whole) or (stop_before_pixels and raw.tag == _PIXEL_DATA):
                    break
                kept[raw.tag] = raw
                cut = stream.tell()
        except Exception:  # an element or a sequence cut by the end: stop before it
            pass
    ds = FileDataset(str(file), kept, preamble=preamble, file_meta=meta,
                     is_implicit_VR=implicit, is_little_endian=little)  # fmt: skip
    return ds, cut
