"""Turn element values into text (for tables and dumps) and JSON-ready data.

>>> value_text([30.0, -550.0])
'30\\\\-550'
>>> value_text(b"\\x00\\x01" * 40, limit=40)
'<80 bytes: 00 01 00 01 00 01 00 01 …>'
"""

from __future__ import annotations

import base64
from typing import Any, Final

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

__all__ = ["value_json", "value_text"]

_BYTES_PREVIEW: Final = 8


def value_text(value: Any, *, limit: int | None = None) -> str:
    """One line of text for a value; multiple values joined by ``\\`` as in DICOM.

    Parameters
    ----------
    value
        An element value as pydicom or :func:`dicomlens.get` gives it.
    limit
        Longest text wanted; longer values are cut with their full length noted.
    """
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return _bytes_text(bytes(value), limit)
    if isinstance(value, Sequence):
        return f"<{len(value)} item{'s' if len(value) != 1 else ''}>"
    if isinstance(value, Dataset):
        return f"<item of {len(value)} elements>"
    if isinstance(value, list | tuple | MultiValue):
        text = "\\".join(value_text(v) for v in value)
    elif type(value) is float:  # DS values read from a file keep their own text
        text = repr(value).removesuffix(".0")
    else:
        text = str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if limit is not None and len(text) > limit:
        return f"{text[: max(limit - 12, 8)]}… ({len(text)} chars)"
    return text


def _bytes_text(data: bytes, limit: int | None) -> str:
    text = data.rstrip(b"\x00 ")
    if text and len(text) <= (limit or 64) and all(32 <= byte < 127 for byte in text):
        return f"<{len(data)} bytes: {text.decode('ascii')!r}>"  # e.g. text stored as UN
    if limit is None or len(data) <= _BYTES_PREVIEW:
        return data.hex(" ") if len(data) <= _BYTES_PREVIEW else f"<{len(data)} bytes>"
    return f"<{len(data)} bytes: {data[:_BYTES_PREVIEW].hex(' ')} …>"


def value_json(value: Any) -> Any:
    """A JSON-ready form: numbers stay numbers, names and UIDs become strings,
    bytes become base64, sequence items become DICOM JSON model objects."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Sequence):
        return [item.to_json_dict() for item in value]
    if isinstance(value, Dataset):
        return value.to_json_dict()
    if isinstance(value, list | tuple | MultiValue):
        return [value_json(v) for v in value]
    return str(value)  # str, PersonName, UID, dates
