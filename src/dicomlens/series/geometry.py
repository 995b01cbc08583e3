"""Sort slices in space, describe their geometry, and give the affine.

The volume axes are ``(i, j, k)`` = (column, row, slice): ``affine_lps`` maps an
index ``(i, j, k, 1)`` to a point in LPS millimetres; see ``docs/coordinates.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomlens.errors import DicomlensWarning
from dicomlens.series.grouping import same_value
from dicomlens.series.slices import SliceInfo

__all__ = [
    "SPACING_ATOL",
    "Gap",
    "GeometryReport",
    "affine_lps",
    "lps_to_ras",
    "orientation_label",
    "planar_spacing",
    "seconds_of_day",
    "slice_step",
    "sort_slices",
    "volume_key",
]

SPACING_ATOL: Final = 1e-2
"""Largest deviation from the regular slice spacing, in mm, still counted as regular."""
TILT_MIN_DEGREES: Final = 0.01
_GAP_FACTOR: Final = 1.5
_MULTIPLE_TOLERANCE: Final = 0.15
"""A step counts as missing slices only within this fraction of a whole multiple of the usual."""
_SAME_TRIGGER_MS: Final = 1.0
_HEART_BEAT_MS: Final = 3000.0
"""The longest cardiac cycle whose phases trigger times can span."""
_OBLIQUE_COSINE: Final = math.cos(math.radians(10))
_LPS_TO_RAS: Final = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Gap:
    """Missing slices between two neighbours."""

    after: str
    before: str
    expected_mm: float
    found_mm: float
    missing: int


@dataclass
class GeometryReport:
    """The geometry of one sorted series and what was done about each finding.

    ``verdict`` is ``"ok"`` or a short list of problems (``"gap, tilt"``).
    """

    slices: int
    orientation: str
    sorted_by: str
    spacing_mm: float | None = None
    spacing_min_mm: float | None = None
    spacing_max_mm: float | None = None
    spacing_std_mm: float | None = None
    max_deviation_mm: float | None = None
    uniform: bool = True
    gaps: list[Gap] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    tilt_degrees: float = 0.0
    mixed_rescale: bool = False
    notes: list[str] = field(default_factory=list)
    volumes: int = 1
    """Volumes of a 4-D series (1 for a 3-D one); slices are then volume after volume."""
    kind: str = "3-D"
    """``3-D``, ``2-D``, or for 4-D series ``fMRI``, ``DWI``, ``cardiac phases`` or ``4-D``."""
    incomplete: list[str] = field(default_factory=list)
    """Positions of a 4-D series with more or fewer slices than it has volumes."""
    steps_mm: list[float] = field(default_factory=list)
    """Every step between neighbouring slices, when they are not regular."""

    @property
    def located(self) -> bool:
        """Whether the images give their place in the patient (a ``2-D`` image without
        position and orientation does not: its affine only scales)."""
        return self.kind != "2-D"

    @property
    def verdict(self) -> str:
        problems = []
        if self.incomplete:
            problems.append("incomplete volumes")
        if self.gaps:
            problems.append("gap")
        if self.duplicates:
            problems.append("duplicates")
        if not self.uniform and not self.gaps:
            problems.append("irregular spacing")
        if self.tilt_degrees >= TILT_MIN_DEGREES:
            problems.append("tilt")
        if self.mixed_rescale:
            problems.append("mixed rescale")
        if self.sorted_by not in ("position", "frame order") and not (
            self.kind == "2-D" and self.slices == 1
        ):
            problems.append(f"sorted by {self.sorted_by}")
        return ", ".join(problems) or "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


def sort_slices(slices: Sequence[SliceInfo]) -> tuple[list[SliceInfo], GeometryReport]:
    """Order slices along their common normal and describe the geometry.

    Slices that repeat at the same positions form a 4-D series (time points,
    diffusion directions, cardiac phases): they are returned volume after volume,
    each volume in spatial order, and ``report.volumes`` says how many there are;
    the volumes are ordered as acquired (:func:`volume_key`). Each Siemens mosaic
    file is one volume. Falls back to InstanceNumber (with a warning) when
    positions or orientations are missing or the slices do not share one
    orientation. Slices with the same SOP Instance UID are kept once.
    """
    unique = _drop_repeated_uids(slices)
    notes = []
    if len(unique) < len(slices):
        notes.append(f"{len(slices) - len(unique)} repeated SOP Instance UID(s) kept once")
    if unique and unique[0].mosaic:
        return _sort_mosaics(unique, notes)
    normal = _common_normal(unique)
    if normal is None and len({s.path for s in unique}) == 1:  # the frames of one file
        ordered = sorted(unique, key=lambda s: s.frame or 0)
        report = GeometryReport(len(ordered), _label_of(unique), "frame order", notes=notes)
        if unique[0].position is None or unique[0].orientation is None:
            report.kind = "2-D"
            notes.append(_planar_note(unique[0]))
        return ordered, report
    if normal is None:
        ordered = sorted(unique, key=lambda s: (s.instance_number or 0, str(s.path), s.frame or 0))
        if len(unique) > 1:
            warnings.warn(
                f"{unique[0].path.parent}: slices lack a common position/orientation; "
                "sorted by InstanceNumber",
                DicomlensWarning,
                stacklevel=2,
            )
        report = GeometryReport(len(ordered), _label_of(unique), "instance number", notes=notes)
        if unique[0].position is None or unique[0].orientation is None:
            report.kind = "2-D"
            notes.append(_planar_note(unique[0]))
        return ordered, report
    distances = {id(s): float(np.dot(s.position, normal)) for s in unique}  # type: ignore[arg-type]
    stacks = _stacks(sorted(unique, key=lambda s: distances[id(s)]), distances)
    volumes = _volume_count([len(stack) for stack in stacks])
    if volumes == 1:
        ordered = [s for stack in stacks for s in sorted(stack, key=volume_key)]
        report = _geometry(ordered, [distances[id(s)] for s in ordered], normal, notes)
        return ordered, report
    first = [stack[0] for stack in stacks]
    report = _geometry(first, [distances[id(s)] for s in first], normal, notes)
    report.volumes = volumes
    report.kind = _kind_of(stacks)
    ordered = []
    for number in range(volumes):
        ordered.extend(stack[number] for stack in stacks if number < len(stack))
    for stack in stacks:
        if len(stack) != volumes:
            where = ", ".join(f"{v:g}" for v in stack[0].position or ())
            report.incomplete.append(
                f"position ({where}) has {len(stack)} slice(s), the other positions {volumes}"
            )
    report.notes.append(f"{volumes} volumes of {len(stacks)} slices ({report.kind})")
    return ordered, report


def volume_key(info: SliceInfo) -> tuple[Any, ...]:
    """Acquisition order of the slices at one position: temporal position, the
    vendor's volume order, acquisition number, trigger time, acquisition time,
    instance number, then the file."""
    return (
        info.temporal_position or 0,
        info.volume_order,
        info.acquisition_number or 0,
        info.trigger_time or 0.0,
        seconds_of_day(info.time_acquired),
        info.instance_number or 0,
        str(info.path),
        info.frame or 0,
    )


def seconds_of_day(time: str | None) -> float:
    """Seconds since midnight of a DICOM TM value (``HHMMSS.FFFFFF``; 0 when absent)."""
    if not time:
        return 0.0
    text = time.strip().replace(":", "")
    try:
        hours, minutes = int(text[:2] or 0), int(text[2:4] or 0)
        return hours * 3600 + minutes * 60 + float(text[4:] or 0)
    except ValueError:
        return 0.0


def _stacks(ordered: list[SliceInfo], distances: dict[int, float]) -> list[list[SliceInfo]]:
    """Slices sorted along the normal, gathered by position (within SPACING_ATOL)."""
    stacks: list[list[SliceInfo]] = []
    for info in ordered:
        if stacks and distances[id(info)] - distances[id(stacks[-1][0])] <= SPACING_ATOL:
            stacks[-1].append(info)
        else:
            stacks.append([info])
    for stack in stacks:
        stack.sort(key=volume_key)
    return stacks


def _volume_count(counts: list[int]) -> int:
    """Volumes of a series with ``counts`` slices per position: the usual count when
    positions repeat (a 4-D series), 1 when most positions hold one slice (a 3-D
    series, where a repeated position is a duplicate)."""
    usual = max(set(counts), key=lambda c: (counts.count(c), c))
    return usual if usual > 1 else 1


def _kind_of(stacks: Sequence[Sequence[SliceInfo]]) -> str:
    """What a 4-D series holds: diffusion directions, cardiac phases or time points.
    ``stacks`` are the slices at each position, in volume order. Cardiac phases
    have trigger times that differ from volume to volume but not from position to
    position within one (GE's EPI counts its TriggerTime from the series' start) and
    span one heart beat (Philips' fMRI counts it from the run's start)."""
    slices = [s for stack in stacks for s in stack]
    if any((s.b_value or 0.0) > 0 for s in slices):
        return "DWI"
    if any("DIFFUSION" in s.image_type for s in slices):
        return "DWI"
    if _cardiac(stacks):
        return "cardiac phases"
    return "fMRI" if slices[0].modality == "MR" else "4-D"


def _cardiac(stacks: Sequence[Sequence[SliceInfo]]) -> bool:
    if not any(len({s.trigger_time for s in stack}) > 1 for stack in stacks):
        return False
    times = [s.trigger_time or 0.0 for stack in stacks for s in stack]
    if max(times) - min(times) > _HEART_BEAT_MS:  # a run's clock (Philips fMRI), not a cycle
        return False
    depth = min(len(stack) for stack in stacks)
    for number in range(depth):
        times = [stack[number].trigger_time or 0.0 for stack in stacks]
        if max(times) - min(times) > _SAME_TRIGGER_MS:
            return False
    return True


def _sort_mosaics(
    unique: list[SliceInfo], notes: list[str]
) -> tuple[list[SliceInfo], GeometryReport]:
    """Mosaic files (Siemens mosaics, UIH grids): one volume each, in acquisition order."""
    ordered = sorted(unique, key=volume_key)
    report = GeometryReport(
        ordered[0].mosaic_slices or 0, _label_of(ordered), "position", notes=notes
    )
    report.volumes = len(ordered)
    if len(ordered) > 1:
        report.kind = _kind_of([ordered])  # the files of a mosaic series: one position
        notes.append(f"{len(ordered)} mosaic volumes ({report.kind})")
    return ordered, report


def _drop_repeated_uids(slices: Sequence[SliceInfo]) -> list[SliceInfo]:
    seen: set[tuple[str, int | None]] = set()
    unique = []
    for info in slices:
        key = (info.sop_instance_uid, info.frame)
        if info.sop_instance_uid and key in seen:
            continue
        seen.add(key)
        unique.append(info)
    return unique


def _common_normal(slices: Sequence[SliceInfo]) -> NDArray[np.float64] | None:
    if any(s.position is None or s.orientation is None for s in slices):
        return None
    first = slices[0].orientation
    if not all(same_value(s.orientation, first) for s in slices):
        return None
    return slices[0].normal


def _label_of(slices: Sequence[SliceInfo]) -> str:
    normal = slices[0].normal if slices else None
    return orientation_label(normal) if normal is not None else "unknown"


def orientation_label(normal: NDArray[np.float64]) -> str:
    """``sagittal``, ``coronal`` or ``axial`` for the patient axis the slice normal is
    closest to, ``oblique`` when it is more than 10 degrees from all three."""
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < _OBLIQUE_COSINE:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _geometry(
    ordered: list[SliceInfo], distances: list[float], normal: NDArray[np.float64], notes: list[str]
) -> GeometryReport:
    report = GeometryReport(len(ordered), orientation_label(normal), "position", notes=notes)
    report.mixed_rescale = len({(s.slope, s.intercept) for s in ordered}) > 1
    if report.mixed_rescale:
        notes.append("rescale slope/intercept differ between slices: applied per slice")
    if len(ordered) < 2:
        return report
    steps = np.diff(distances)
    names = [_name(s) for s in ordered]
    for index in np.flatnonzero(steps <= SPACING_ATOL):
        report.duplicates.append((names[index], names[index + 1]))
    regular = steps[steps > SPACING_ATOL]
    if regular.size == 0:
        notes.append("all slices at one position")
        return report
    expected = float(np.median(regular))
    multiples = regular / expected
    irregular = bool(np.any(np.abs(multiples - np.round(multiples)) > _MULTIPLE_TOLERANCE))
    for index in np.flatnonzero(steps > expected * _GAP_FACTOR):
        found = float(steps[index])
        if irregular:
            break  # steps that vary are not missing slices
        report.gaps.append(
            Gap(names[index], names[index + 1], round(expected, 4), round(found, 4),
                max(round(found / expected) - 1, 1))
        )  # fmt: skip
    deviation = float(np.max(np.abs(regular - expected)))
    if irregular:
        report.steps_mm = [round(float(step), 4) for step in steps]
        distinct = sorted({round(float(step), 2) for step in regular})
        shown = ", ".join(f"{step:g}" for step in distinct[:8]) + (
            " ..." if len(distinct) > 8 else ""
        )
        notes.append(
            f"irregular spacing: steps of {shown} mm; converted as acquired with the median "
            f"step {expected:.4g} mm in the affine (volume --resample makes it equidistant)"
        )
    report.spacing_mm = round(expected, 6)
    report.spacing_min_mm = round(float(regular.min()), 6)
    report.spacing_max_mm = round(float(regular.max()), 6)
    report.spacing_std_mm = round(float(regular.std()), 6)
    report.max_deviation_mm = round(deviation, 6)
    report.uniform = deviation <= SPACING_ATOL and not report.gaps
    report.tilt_degrees = round(_tilt(ordered, normal), 3)
    for gap in report.gaps:
        notes.append(
            f"gap: expected spacing {gap.expected_mm} mm, found {gap.found_mm} mm between "
            f"{gap.after} and {gap.before} ({gap.missing} slice(s) missing); not interpolated"
        )
    for a, b in report.duplicates:
        notes.append(f"duplicate position: {a} and {b}")
    if report.tilt_degrees >= TILT_MIN_DEGREES:
        notes.append(
            f"gantry tilt {report.tilt_degrees} degrees: the affine is sheared to follow "
            "the slice positions (no resampling)"
        )
    return report


def _name(info: SliceInfo) -> str:
    return info.path.name if info.frame is None else f"{info.path.name}#{info.frame}"


def _tilt(ordered: list[SliceInfo], normal: NDArray[np.float64]) -> float:
    """Angle between the line through the slice positions and the slice normal."""
    step = np.subtract(ordered[-1].position, ordered[0].position)  # type: ignore[arg-type]
    length = float(np.linalg.norm(step))
    if length == 0:
        return 0.0
    cosine = min(1.0, abs(float(np.dot(step / length, normal))))
    return math.degrees(math.acos(cosine))


def planar_spacing(info: SliceInfo) -> tuple[tuple[float, float], str]:
    """The pixel spacing (row, column) of an image and where it came from:
    PixelSpacing, else ImagerPixelSpacing (at the detector), else 1 mm."""
    for spacing, source in (
        (info.pixel_spacing, "PixelSpacing"),
        (info.imager_pixel_spacing, "ImagerPixelSpacing"),
    ):
        if spacing is not None and all(v > 0 for v in spacing):
            return spacing, source
    return (1.0, 1.0), "none (1 mm assumed)"


def _planar_note(info: SliceInfo) -> str:
    _, source = planar_spacing(info)
    return (
        "2-D image without patient position and orientation: rows and columns along the "
        f"patient axes x and y, pixel spacing from {source}"
    )


def affine_lps(ordered: Sequence[SliceInfo]) -> NDArray[np.float64]:
    """4x4 affine from voxel index ``(i, j, k)`` = (column, row, slice) to LPS mm.

    The third column is the typical (median) step between neighbouring slice
    positions: a gantry tilt gives a sheared affine rather than a wrong one,
    and a missing slice does not stretch the others (the volume leaves room for it).
    A 2-D image without position or orientation (a radiograph, an ultrasound, a
    secondary capture) gets the patient axes and :func:`planar_spacing`.
    """
    first = ordered[0]
    if first.position is None or first.orientation is None:
        spacing, _ = planar_spacing(first)
        affine = np.diag([spacing[1], spacing[0], first.slice_thickness or 1.0, 1.0])
        return affine
    row_cosine, column_cosine = np.array(first.orientation[:3]), np.array(first.orientation[3:])
    row_spacing, column_spacing = planar_spacing(first)[0]
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * column_spacing
    affine[:3, 1] = column_cosine * row_spacing
    step = slice_step(ordered)
    if step is not None:
        affine[:3, 2] = step
    else:
        normal = first.normal
        assert normal is not None
        affine[:3, 2] = normal * (first.slice_thickness or 1.0)
    affine[:3, 3] = first.position
    return affine


def slice_step(ordered: Sequence[SliceInfo]) -> NDArray[np.float64] | None:
    """The median vector from one slice position to the next (None for one slice)."""
    positions = np.array([s.position for s in ordered if s.position is not None], dtype=float)
    if len(positions) < 2:
        return None
    steps = np.diff(positions, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    moving = steps[lengths > SPACING_ATOL]
    if not len(moving):
        return None
    typical = float(np.median(np.linalg.norm(moving, axis=1)))
    regular = moving[
        np.abs(np.linalg.norm(moving, axis=1) - typical) <= max(SPACING_ATOL, typical * 0.1)
    ]
    return np.asarray(np.median(regular, axis=0), dtype=float)


def lps_to_ras(affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """The same affine in RAS (NIfTI) coordinates: x and y negated."""
    return _LPS_TO_RAS @ affine
