"""Checks before an output is written: identifiers left in its bytes, burned-in text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydicom.charset import encode_string
from pydicom.dataset import Dataset

from dicomlens.anonymization.deidentifying import Deidentified

__all__ = ["burned_in_reason", "find_leaks"]

_IN_PIXELS_SHORTEST: Final = 8  # only longer needles are looked for inside pixel data
_BURNED_IN_MODALITIES: Final = {
    "US": "ultrasound", "SC": "secondary capture", "XC": "external camera photography",
    "ES": "endoscopy", "OT": "other modality", "DOC": "document", "GM": "microscopy",
}  # fmt: skip
_SECONDARY_CAPTURE_CLASSES: Final = "1.2.840.10008.5.1.4.1.1.7"


def find_leaks(
    data: bytes,
    report: Deidentified,
    *,
    encodings: Sequence[str] = (),
    pixels_from: int | None = None,
) -> list[tuple[str, int]]:
    """Where original identifiers still appear in encoded output ``data``.

    Returns (source element, byte offset) pairs: the values themselves are never
    reported. Values found inside a value the profile keeps (an institution
    named like the manufacturer), and dates equal to a date the output holds
    (shifted dates may land on another original date), are not leaks. Inside the
    pixel data (from ``pixels_from``) only identifiers of 8 characters or more are
    looked for: shorter byte strings occur in images by chance, and descriptive
    text does not end up there.
    """
    kept = "\x00".join(report.kept_text)
    leaks = []
    for needle in {n.text: n for n in report.needles}.values():
        if needle.text in kept:
            continue
        if needle.text in report.output_dates:
            continue
        header_only = len(needle.text) < _IN_PIXELS_SHORTEST or not needle.strong
        end = pixels_from if pixels_from is not None and header_only else len(data)
        encoded = encode_string(needle.text, list(encodings) or ["iso8859"])
        at = data.find(encoded, 0, end)
        if at >= 0:
            leaks.append((needle.source, at))
    return sorted(leaks, key=lambda leak: leak[1])


def burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixel data may show identifying text, or None.

    >>> ds = Dataset(); ds.Modality = "US"
    >>> burned_in_reason(ds)
    'ultrasound images usually carry burned-in text (BurnedInAnnotation is not NO)'
    >>> ds.BurnedInAnnotation = "NO"; burned_in_reason(ds) is None
    True
    """
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "BurnedInAnnotation is YES"
    if flag == "NO":
        return None
    kind = _BURNED_IN_MODALITIES.get(str(ds.get("Modality", "")).upper())
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE_CLASSES):
        kind = "secondary capture"
    if kind is None:
        return None
    return f"{kind} images usually carry burned-in text (BurnedInAnnotation is not NO)"
