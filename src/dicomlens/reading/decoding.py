"""Decode the values of a data set read with ``decode=()``, so that damage surfaces
while reading; an element pydicom cannot decode with its VR is kept as its raw bytes
(VR UN) with a warning, and errors are said in plain words."""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Final

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import BytesLengthException

from dicomlens.errors import CorruptDicomError, DicomlensWarning
from dicomlens.tags import format_tag

__all__ = ["decode_values", "plain_reason"]


def decode_values(ds: FileDataset, file: Path, tags: Collection[int] | None) -> None:
    """Decode values now (all, or those under ``tags``) so that damage surfaces inside
    :func:`read` rather than on first access. An element pydicom cannot decode with its
    VR is kept as its raw bytes (VR UN, as the standard keeps unknown private elements)
    with a :class:`DicomlensWarning`: one bad element never costs the whole file."""
    try:
        for _ in ds.file_meta.iterall():
            pass
    except Exception as exc:  # any decoding failure of pydicom's converters
        raise CorruptDicomError(
            f"{file}: cannot decode the file meta ({plain_reason(exc)})"
        ) from exc
    for tag in list(ds.keys()) if tags is None else tags:
        _decode_element(ds, tag, file, "")


def _decode_element(ds: Dataset, tag: int, file: Path, where: str) -> None:
    """Decode one element (and, for a sequence, everything in it); keep what does not
    decode as raw bytes."""
    if tag not in ds:
        return
    try:
        element = ds[tag]
    except Exception as exc:  # pydicom's converters raise many types
        _keep_as_bytes(ds, tag, file, where, exc)
        return
    if element.VR != "SQ":
        return
    for number, item in enumerate(element.value):
        inside = f"{where}{format_tag(tag)}[{number}] > "
        for inner in list(item.keys()):
            _decode_element(item, inner, file, inside)


def _keep_as_bytes(ds: Dataset, tag: int, file: Path, where: str, exc: Exception) -> None:
    raw = ds.get_item(tag)
    if not isinstance(raw, RawDataElement) or raw.value is None:
        raise CorruptDicomError(f"{file}: {where}{format_tag(tag)}: cannot decode "
                                f"({plain_reason(exc)})") from exc  # fmt: skip
    creator = _creator_of(ds, tag)
    ds[tag] = DataElement(tag, "UN", bytes(raw.value))
    name = format_tag(tag, creator=creator)
    warnings.warn(
        f"{file}: {where}{name}: kept as {len(raw.value)} raw bytes (UN): {plain_reason(exc)}",
        DicomlensWarning,
        stacklevel=2,
    )


def _creator_of(ds: Dataset, tag: int) -> str | None:
    """The private creator of a private element's block, if the data set names it."""
    if not tag >> 16 & 1 or tag & 0xFFFF < 0x1000:
        return None
    element = ds.get(tag & 0xFFFF0000 | (tag >> 8 & 0xFF))
    return str(element.value) if element is not None else None


_CONFIG_ADVICE: Final = re.compile(
    r"\s*(To replace this error|This occurred while|Please see|Set )[^.]*\.?"
)


def plain_reason(exc: BaseException) -> str:
    """A decoding error in plain words on one line, without pydicom's advice about its
    own configuration, at most ~160 characters."""
    if isinstance(exc, BytesLengthException):
        found = re.search(r"length (\d+) and struct format '(\w)'.*?bytes per value of (\d+)",
                          str(exc))  # fmt: skip
        if found:
            length, _, size = found.groups()
            return f"{length} bytes are not a whole number of {size}-byte values"
    text = " ".join(_CONFIG_ADVICE.sub("", str(exc)).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
