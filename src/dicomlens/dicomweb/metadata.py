"""WADO-RS metadata (PS3.18 10.4.1.1.2) and bulk data of catalogued instances.

An instance's metadata is every element of its file in the DICOM JSON model, as
pydicom's ``to_json_dict`` gives it, with binary values longer than
:data:`BULK_THRESHOLD` as ``BulkDataURI`` (``.../bulk/TAG``, ``.../bulk/SEQ/ITEM/TAG``
inside sequences) and never read. Converting a file costs a millisecond or two, so
:class:`MetadataCache` keeps the JSON text of recently asked instances by file
fingerprint: a changed file is converted again.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from typing import Any, Final

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dicomlens.dicomweb.problems import BadRequest, NotFound
from dicomlens.dicomweb.retrieve import Stored
from dicomlens.errors import DicomlensError
from dicomlens.reading import read

__all__ = ["BULK_THRESHOLD", "MetadataCache", "bulk_data", "metadata"]

BULK_THRESHOLD: Final = 1024
"""Binary values longer than this many bytes are given as BulkDataURIs."""
CACHE_BYTES: Final = 256 << 20
"""The JSON text kept by a :class:`MetadataCache` by default."""
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_BULK_KEY: Final = '"BulkDataURI":"'
"""How a BulkDataURI starts in compact JSON text: nowhere else, as a string's own
quotes are escaped."""


def metadata(stored: Stored) -> dict[str, Any]:
    """The instance in the DICOM JSON model, its BulkDataURIs relative to the
    instance's ``bulk`` resource (``7FE00010``, ``00880200/0/7FE00010``)."""
    stored.check()
    try:
        ds = read(stored.path, defer_size=BULK_THRESHOLD, decode=())
    except DicomlensError:
        raise NotFound(f"instance {stored.sop}: its file cannot be read") from None
    return _json_dataset(ds, "", implicit=bool(ds.original_encoding[0]))


class MetadataCache:
    """The compact JSON text of instances' metadata, least recently asked dropped
    beyond ``max_bytes``; safe to share between threads."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._texts: OrderedDict[tuple[str, tuple[int, int, int]], str] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def text(self, stored: Stored, bulk_url: str) -> str:
        """The instance's metadata as JSON text, BulkDataURIs under ``bulk_url``."""
        key = (stored.path, stored.fingerprint)
        with self._lock:
            found = self._texts.get(key)
            if found is not None:
                self._texts.move_to_end(key)
        if found is None:
            found = json.dumps(metadata(stored), separators=(",", ":"))
            self._keep(key, found)
        else:
            stored.check()  # still the file the text was made from
        return found.replace(_BULK_KEY, f"{_BULK_KEY}{bulk_url}/")

    def _keep(self, key: tuple[str, tuple[int, int, int]], text: str) -> None:
        with self._lock:
            if key in self._texts:
                return
            self._texts[key] = text
            self._size += len(text)
            while self._size > self.max_bytes and self._texts:
                _, dropped = self._texts.popitem(last=False)
                self._size -= len(dropped)


def bulk_data(stored: Stored, steps: list[str]) -> bytes:
    """The bytes of the binary value at ``TAG`` or ``SEQ/ITEM/.../TAG``, as stored
    (Pixel Data of a compressed file: its encapsulated fragments)."""
    stored.check()
    ds: Dataset = read(stored.path)
    if not steps or len(steps) % 2 == 0:
        raise BadRequest("bulk data is addressed as TAG or SEQUENCE/ITEM/.../TAG")
    try:
        for sequence, item in zip(steps[0:-1:2], steps[1:-1:2], strict=True):
            ds = ds[int(sequence, 16)].value[int(item)]
        value = ds[int(steps[-1], 16)].value
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        raise NotFound(f"instance {stored.sop} has no bulk data at {'/'.join(steps)}") from None
    if not isinstance(value, bytes | bytearray):
        raise NotFound(f"{'/'.join(steps)} is not a binary value")
    return bytes(value)


def _json_dataset(ds: Dataset, prefix: str, *, implicit: bool) -> dict[str, Any]:
    """``ds.to_json_dict`` with the BulkDataURIs of values by their path below
    ``prefix``; deferred values are not read."""
    found = {}
    for tag, element in ds._dict.items():  # raw: a deferred value stays in the file
        key = f"{int(tag):08X}"
        vr = _vr(element, implicit)
        if vr == "SQ":
            found[key] = {"vr": "SQ", "Value": [
                _json_dataset(item, f"{prefix}{key}/{number}/", implicit=implicit)
                for number, item in enumerate(ds[tag].value)
            ]}  # fmt: skip
        elif vr in _BINARY_VRS and _is_bulk(element):
            found[key] = {"vr": vr, "BulkDataURI": f"{prefix}{key}"}
        else:
            found[key] = _json_element(ds, tag, element)
    return found


def _json_element(ds: Dataset, tag: Any, element: Any) -> dict[str, Any]:
    """One element in the JSON model (short binary: InlineBinary). A value the model
    cannot hold as its VR says (a DS or IS that is not a number) is given as stored,
    as UN: one odd value does not cost a client the whole series' metadata."""
    try:
        converted: dict[str, Any] = ds[tag].to_json_dict(None, 0)
        return converted
    except (ValueError, TypeError, OverflowError):
        stored = element.value if isinstance(element, RawDataElement) else None
        data = stored if isinstance(stored, bytes) else str(ds[tag].value).encode()
        return {"vr": "UN", "InlineBinary": base64.b64encode(data).decode("ascii")}


def _vr(element: Any, implicit: bool) -> str:
    vr = str(element.VR or "")
    if vr and " or " not in vr:
        return vr
    if int(element.tag) == 0x7FE00010:
        return "OW" if implicit else "OB"
    try:
        return str(dictionary_VR(element.tag)).split(" or ")[-1]
    except KeyError:
        return "UN"


def _is_bulk(element: Any) -> bool:
    """A value left in the file, of undefined length (encapsulated) or long."""
    if isinstance(element, RawDataElement):
        return element.value is None or element.length > BULK_THRESHOLD
    value = element.value
    return isinstance(value, bytes | bytearray) and len(value) > BULK_THRESHOLD
