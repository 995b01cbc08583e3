"""Group slices into series: by Series Instance UID, split where the images differ."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from dicomlens.series.slices import SliceInfo

__all__ = ["ORIENTATION_ATOL", "Split", "group_slices", "same_value"]

ORIENTATION_ATOL: Final = 1e-4
"""Largest difference between direction cosines that still counts as the same orientation."""

_WEIGHTED_B: Final = 50.0
"""b-values (s/mm2) above which an image is diffusion weighted (as dcm2niix counts them)."""
_SPLIT_FIELDS: Final = (
    ("image size", lambda s: (s.rows, s.columns)),
    ("orientation", lambda s: s.orientation),
    ("pixel spacing", lambda s: s.pixel_spacing),
    ("echo", lambda s: (s.echo_number, s.echo_time)),
    ("image type", lambda s: s.image_type[:3]),
    ("image component", lambda s: s.component),
    ("phase-encoding polarity", lambda s: s.rows_reversed),
)


class Split(NamedTuple):
    """Which part of a split series this is, and the fields its parts differ by."""

    fields: tuple[str, ...]
    part: int
    parts: int

    @property
    def why(self) -> str:
        """``split by echo, image type``."""
        return f"split by {', '.join(self.fields)}"

    def __str__(self) -> str:
        return f"{self.why}: part {self.part} of {self.parts}"


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= ORIENTATION_ATOL
    return bool(a == b)


def group_slices(slices: Iterable[SliceInfo]) -> list[tuple[list[SliceInfo], Split | None]]:
    """Group slices by Series Instance UID, then split each group where image size,
    orientation, pixel spacing, echo, temporal position or image type differ.

    Returns ``(slices, split)`` pairs, ``split`` None for an unsplit series and saying
    which fields differ otherwise. Order follows the first slice seen.
    """
    by_uid: dict[str, list[SliceInfo]] = {}
    for info in slices:
        by_uid.setdefault(info.series_instance_uid, []).append(info)
    groups: list[tuple[list[SliceInfo], Split | None]] = []
    for members in by_uid.values():
        parts: list[list[SliceInfo]] = []
        for info in members:
            for part in parts:
                if all(same_value(key(part[0]), key(info)) for _, key in _SPLIT_FIELDS):
                    part.append(info)
                    break
            else:
                parts.append([info])
        pieces = [piece for part in parts for piece in _isotropic_apart(part)]
        isotropic = len(pieces) > len(parts)
        for number, part in enumerate(pieces, start=1):
            split = _split(pieces, number, isotropic) if len(pieces) > 1 else None
            groups.append((part, split))
    return groups


def _isotropic_apart(part: list[SliceInfo]) -> list[list[SliceInfo]]:
    """A diffusion series' isotropic images (weighted, with no direction: the trace or
    ADC Philips and GE add to a DTI series) as a part of their own, as dcm2niix writes
    them apart; a series of b = 0 and trace images alone stays whole."""
    isotropic = [s for s in part if (s.b_value or 0.0) > _WEIGHTED_B and s.gradient is None]
    if not isotropic or not any((s.b_value or 0.0) > _WEIGHTED_B and s.gradient for s in part):
        return [part]
    apart = {id(s) for s in isotropic}
    return [[s for s in part if id(s) not in apart], isotropic]


def _split(parts: list[list[SliceInfo]], number: int, isotropic: bool) -> Split:
    firsts = [part[0] for part in parts]
    differing = [
        name
        for name, key in _SPLIT_FIELDS
        if any(not same_value(key(firsts[0]), key(other)) for other in firsts[1:])
    ]
    if isotropic:
        differing.append("isotropic diffusion images")
    return Split(tuple(differing), number, len(parts))
