"""The DICOM JSON model (PS3.18 Annex F) of the catalog's element values.

The catalog keeps each instance's public elements as ``"00100010": "Doe^Jane"``;
DICOMweb answers with ``"00100010": {"vr": "PN", "Value": [{"Alphabetic": ...}]}``.
VRs come from the dictionary; of ``US or SS``, ``SS`` when the pixels are signed
(PixelRepresentation 1, as pydicom decides) or a value is negative, else the first
of an ambiguous set; private elements, whose block is not kept in
the catalog, are not part of search results (WADO-RS metadata has them).
"""

from __future__ import annotations

import functools
from typing import Any, Final

from pydicom.datadict import dictionary_VR

__all__ = ["attribute", "dataset"]

_NAME_GROUPS: Final = ("Alphabetic", "Ideographic", "Phonetic")


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(key: str) -> str | None:
    try:
        return str(dictionary_VR(int(key, 16)))
    except (KeyError, ValueError):
        return None


def vr_of(key: str, value: Any = None, *, signed: bool = False) -> str | None:
    """The dictionary VR of a public element key (``00100010``), None when unknown;
    ``signed``: the pixels of the dataset holding it are signed."""
    vr = _dictionary_vr(key)
    if vr is None:
        return None
    if vr == "US or SS":
        values = value if isinstance(value, list) else [value]
        negative = any(isinstance(v, int) and v < 0 for v in values)
        return "SS" if signed or negative else "US"
    return vr.split(" or ")[0]


def attribute(
    key: str, value: Any, *, vr: str | None = None, signed: bool = False
) -> dict[str, Any] | None:
    """One attribute in the JSON model from its catalog value (None: not expressible)."""
    vr = vr or vr_of(key, value, signed=signed)
    if vr is None:
        return None
    if isinstance(value, dict) and "InlineBinary" in value:  # kept as read: undecodable
        return {"vr": value.get("vr", vr), "InlineBinary": value["InlineBinary"]}
    if value is None or value == "" or value == []:
        return {"vr": vr}
    values = value if isinstance(value, list) else [value]
    if vr == "SQ":
        return {"vr": "SQ", "Value": [dataset(item, signed=signed) for item in values]}
    if vr == "PN":
        return {"vr": "PN", "Value": [_person_name(v) for v in values]}
    return {"vr": vr, "Value": [None if v == "" else v for v in values]}


def dataset(elements: dict[str, Any], *, signed: bool = False) -> dict[str, Any]:
    """Every public element of a catalog JSON object in the JSON model, in tag order;
    ``signed``: the enclosing dataset's pixels are signed (its items inherit it)."""
    if "00280103" in elements:  # PixelRepresentation
        signed = elements["00280103"] == 1
    found = {}
    for key in sorted(elements):
        if len(key) != 8:  # private, with its creator in the key
            continue
        converted = attribute(key, elements[key], signed=signed)
        if converted is not None:
            found[key] = converted
    return found


def _person_name(value: Any) -> dict[str, str] | None:
    if not value:
        return None
    groups = str(value).split("=")
    return {name: text for name, text in zip(_NAME_GROUPS, groups, strict=False) if text}
