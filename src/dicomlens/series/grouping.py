"""Group slices into series: by Series Instance UID, split where the images differ."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from dicomlens.series.slices import SliceInfo

__all__ = ["ORIENTATION_ATOL", "group_slices", "same_value"]

ORIENTATION_ATOL: Final = 1e-4
"""Largest difference between direction cosines that still counts as the same orientation."""

_SPLIT_FIELDS: Final = (
    ("image size", lambda s: (s.rows, s.columns)),
    ("orientation", lambda s: s.orientation),
    ("pixel spacing", lambda s: s.pixel_spacing),
    ("echo", lambda s: (s.echo_number, s.echo_time)),
    ("image type", lambda s: s.image_type[:3]),
)


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= ORIENTATION_ATOL
    return bool(a == b)


def group_slices(slices: Iterable[SliceInfo]) -> list[tuple[list[SliceInfo], str]]:
    """Group slices by Series Instance UID, then split each group where image size,
    orientation, pixel spacing, echo, temporal position or image type differ.

    Returns ``(slices, why)`` pairs, ``why`` being empty for an unsplit series and
    naming the differing field otherwise. Order follows the first slice seen.
    """
    by_uid: dict[str, list[SliceInfo]] = {}
    for info in slices:
        by_uid.setdefault(info.series_instance_uid, []).append(info)
    groups: list[tuple[list[SliceInfo], str]] = []
    for members in by_uid.values():
        parts: list[list[SliceInfo]] = []
        for info in members:
            for part in parts:
                if all(same_value(key(part[0]), key(info)) for _, key in _SPLIT_FIELDS):
                    part.append(info)
                    break
            else:
                parts.append([info])
        for number, part in enumerate(parts, start=1):
            groups.append((part, _split_reason(parts, number) if len(parts) > 1 else ""))
    return groups


def _split_reason(parts: list[list[SliceInfo]], number: int) -> str:
    firsts = [part[0] for part in parts]
    differing = [
        name
        for name, key in _SPLIT_FIELDS
        if any(not same_value(key(firsts[0]), key(other)) for other in firsts[1:])
    ]
    return f"split by {', '.join(differing)}: part {number} of {len(parts)}"
