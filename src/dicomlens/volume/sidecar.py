"""BIDS sidecar fields, with the names and units dcm2niix writes.

Times are in seconds, angles in degrees. Fields that depend on the voxel axes
(PhaseEncodingDirection, SliceTiming) are given for the array as written, whose
RAS affine the caller passes. Vendor private fields are read by their creator
(:mod:`dicomlens.vendors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicomlens import vendors
from dicomlens._version import __version__
from dicomlens.series import SliceInfo, seconds_of_day
from dicomlens.volume.model import Volume
from dicomlens.volume.timing import multiband_factor, repetition_time_ms, slice_timing

__all__ = ["bids_sidecar"]

_MANUFACTURERS: Final = (
    ("SIEMENS", "Siemens"), ("GE", "GE"), ("PHILIPS", "Philips"), ("CANON", "Canon"),
    ("TOSHIBA", "Canon"), ("HITACHI", "Hitachi"), ("UIH", "UIH"), ("BRUKER", "Bruker"),
)  # fmt: skip
_TEXT_FIELDS: Final = (
    "Modality", "MagneticFieldStrength", "ImagingFrequency", "Manufacturer",
    "ManufacturerModelName", "InstitutionName", "DeviceSerialNumber", "StationName",
    "BodyPartExamined", "PatientPosition", "SoftwareVersions", "MRAcquisitionType",
    "SeriesDescription", "ProtocolName", "ScanningSequence", "SequenceVariant", "ScanOptions",
    "SequenceName", "ImageType", "SeriesNumber",
)  # fmt: skip
_MS: Final = 1e-3
_BIDS_NAMES: Final = {"ManufacturerModelName": "ManufacturersModelName"}
_COMPONENTS: Final = {"P": "PHASE", "PHASE": "PHASE", "R": "REAL", "REAL": "REAL",
                      "I": "IMAGINARY", "IMAGINARY": "IMAGINARY"}  # fmt: skip
_SDI: Final = "SIEMENS MR SDI 02"  # Siemens XA per-frame fields
_SDS: Final = "SIEMENS MR SDS 01"  # Siemens XA series fields (in a shared functional group)
_SDS_TEXT: Final = {"ScanningSequence": 0x5A, "SequenceVariant": 0x5B, "ScanOptions": 0x5C}
"""Siemens XA's enhanced files keep these classic fields only as (0021,xxNN)[SDS]."""


def bids_sidecar(
    header: Dataset, volume: Volume, slices: Sequence[SliceInfo], affine_ras: NDArray[np.float64]
) -> dict[str, Any]:
    """The BIDS fields of a series (``header`` is its first image's header, ``slices``
    its sorted slices) for the array written with ``affine_ras``."""
    find, private = _finders(header)
    fields = vendors.Fields(find, private)
    sidecar: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = _plain(find(name))
        if value is None and name in _SDS_TEXT:
            value = _plain(private(0x0021, _SDS, _SDS_TEXT[name]))
        if isinstance(value, list) and name != "ImageType":
            value = "\\".join(map(str, value))  # as stored: "SE\\EP", like dcm2niix
        if value not in (None, "", []):
            sidecar[_BIDS_NAMES.get(name, name)] = value
    if "ImageType" in sidecar:
        sidecar["ImageType"] = _image_type(sidecar["ImageType"], find)
    if "Manufacturer" in sidecar:
        sidecar["Manufacturer"] = _manufacturer(str(sidecar["Manufacturer"]))
    vendor = str(sidecar.get("Manufacturer", ""))
    sidecar["AcquisitionTime"] = _acquisition_time(slices)
    for name in ("AcquisitionNumber", "SliceThickness", "SpacingBetweenSlices"):
        if (value := _plain(find(name))) is not None:
            sidecar[name] = value
    echo_time = _float(find("EchoTime")) or _float(find("EffectiveEchoTime"))
    if echo_time is not None:
        sidecar["EchoTime"] = echo_time * _MS
    if (echo := _float(find("EchoNumbers"))) is not None and echo > 1:
        sidecar["EchoNumber"] = int(echo)
    if (repetition := repetition_time_ms(vendor, header, fields)) is not None:
        sidecar["RepetitionTime"] = repetition * _MS
    if (flip := _float(find("FlipAngle"))) is not None:
        sidecar["FlipAngle"] = flip
    sidecar.update(_philips_scaling(slices, volume))
    csa = vendors.siemens_csa(header) if vendor == "Siemens" else {}
    sidecar.update(_phase_encoding(fields, vendor, csa, volume, affine_ras))
    if vendor == "GE" and (flipped := vendors.ge_phase_flipped(fields)) is not None:
        sidecar["PhaseEncodingPolarityGE"] = "Flipped" if flipped else "Unflipped"
    timing = slice_timing(header, fields, vendor, csa, slices, volume)
    if timing is not None:
        sidecar["SliceTiming"] = timing
    factor = multiband_factor(vendor, header, fields, timing)
    if factor > 1 and sidecar.get("Modality") == "MR":
        sidecar["MultibandAccelerationFactor"] = factor
    orientation = find("ImageOrientationPatient")
    if orientation is not None:
        sidecar["ImageOrientationPatientDICOM"] = [float(v) for v in orientation]
    if direction := _phase_direction(find):
        sidecar["InPlanePhaseEncodingDirectionDICOM"] = direction
    sidecar["ConversionSoftware"] = "dicomlens"
    sidecar["ConversionSoftwareVersion"] = __version__
    return sidecar


def _finders(header: Dataset) -> tuple[Any, Any]:
    """Lookups by keyword and of private values: the top level, then the items of the
    shared and first per-frame functional groups of an enhanced file, and the items
    nested one level in those (Siemens XA keeps its private fields there)."""
    places = [header]
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = header.get(keyword)
        if groups:
            macros = [item for element in groups[0] if element.VR == "SQ"
                      for item in element.value[:1]]  # fmt: skip
            places.extend(macros)

    def find(keyword: str, default: Any = None) -> Any:
        for place in places:
            if keyword in place:
                return place[keyword].value
        return default

    lookups = [vendors.PrivateLookup(place) for place in places]

    def private(group: int, creator: str, offset: int) -> Any:
        for lookup in lookups:
            value = lookup(group, creator, offset)
            if value is not None:
                return value
        return None

    return find, private


def _image_type(values: Any, find: Any) -> list[str]:
    """ImageType as dcm2niix lists it: values split at underscores, then the complex
    component (MAGNITUDE, PHASE, ...) when the values do not name it."""
    parts = [part for value in (values if isinstance(values, list) else [values])
             for part in str(value).split("_") if part]  # fmt: skip
    if find("Modality") != "MR":
        return parts
    component = str(find("ComplexImageComponent") or "")
    if not component:
        named = [_COMPONENTS[p] for p in parts[2:] if p in _COMPONENTS]
        component = named[0] if named else "MAGNITUDE"
    return parts if component in parts else [*parts, component]


def _philips_scaling(slices: Sequence[SliceInfo], volume: Volume) -> dict[str, Any]:
    """Philips' rescale and scale slope, when one pair and slope hold for every slice,
    and whether the values written are its floating-point (1) or display (0) values."""
    scalings = {(s.slope, s.intercept, s.scale_slope) for s in slices}
    if len(scalings) != 1:
        return {}
    ((slope, intercept, scale_slope),) = scalings
    if not scale_slope:
        return {}
    return {
        "PhilipsRescaleSlope": _plain(slope),
        "PhilipsRescaleIntercept": _plain(intercept),
        "PhilipsScaleSlope": _plain(scale_slope),
        "UsePhilipsFloatNotDisplayScaling": int(volume.precise),
    }


def _plain(value: Any) -> Any:
    """A DICOM value as JSON: numbers as numbers, several values as a list."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        return str(value).strip() if isinstance(value, str) else None
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    if isinstance(value, float | int):
        number = float(value)
        return int(number) if number.is_integer() else number
    try:
        number = float(value)  # DSfloat, IS
    except (TypeError, ValueError):
        return str(value)
    return int(number) if number.is_integer() else number


def _float(value: Any) -> float | None:
    found = vendors.numbers(value)
    return found[0] if found else None


def _manufacturer(text: str) -> str:
    upper = text.upper()
    for prefix, name in _MANUFACTURERS:
        if upper.startswith(prefix):
            return name
    return text


def _acquisition_time(slices: Sequence[SliceInfo]) -> str | None:
    """The earliest acquisition time, as dcm2niix writes it (``HH:MM:S.ffffff``)."""
    times = [s.time_acquired for s in slices]
    seconds = [seconds_of_day(t) for t in times if t]
    if not seconds:
        return None
    first = min(seconds)
    hours, rest = divmod(first, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:f}"


def _phase_encoding(
    fields: vendors.Fields,
    vendor: str,
    csa: dict[str, Any],
    volume: Volume,
    affine_ras: NDArray[np.float64],
) -> dict[str, Any]:
    """PhaseEncodingDirection (or only the axis when the polarity is unknown), the
    effective echo spacing and the total readout time."""
    find = fields.public
    direction = _phase_direction(find)
    orientation = vendors.numbers(find("ImageOrientationPatient"))
    if direction not in ("ROW", "COL") or len(orientation) != 6:
        return {}
    acquisition = str(find("MRAcquisitionType") or "")
    if acquisition == "3D":
        return {}
    found: dict[str, Any] = {}
    positive = _polarity(fields, vendor, csa)
    cosine = np.array(orientation[:3] if direction == "ROW" else orientation[3:])
    world = cosine * (1.0 if positive is None else (1.0 if positive else -1.0))
    found_axis = _voxel_axis(world, affine_ras)
    if found_axis is None:
        return found
    axis, sign = found_axis
    if positive is None:
        found["PhaseEncodingAxis"] = axis
    else:
        found["PhaseEncodingDirection"] = axis + ("-" if sign < 0 else "")
    shape = volume.array.shape
    recon = int(shape[1] if direction == "COL" else shape[0])
    spacing = _echo_spacing(fields, vendor, csa, recon)
    if spacing is not None:
        found["EffectiveEchoSpacing"] = round(spacing, 9)
        found["TotalReadoutTime"] = round(spacing * (recon - 1), 7)
    return found


def _phase_direction(find: Any) -> str:
    """ROW or COL (enhanced files say ROW or COLUMN); empty when unknown."""
    text = str(find("InPlanePhaseEncodingDirection") or "").strip()
    return {"COLUMN": "COL"}.get(text, text) if text in ("ROW", "COL", "COLUMN") else ""


def _polarity(fields: vendors.Fields, vendor: str, csa: dict[str, Any]) -> bool | None:
    """Whether phase encoding runs along the row or column cosine (True) or against it."""
    if vendor == "Siemens":
        value = csa.get("PhaseEncodingDirectionPositive")
        if value is None:
            value = fields.private(0x0021, _SDI, 0x1C)
        found = vendors.numbers(value)
        return bool(found[0]) if found else None
    if vendor == "GE":
        reordering = str(fields.public("RectilinearPhaseEncodeReordering") or "")
        if reordering in ("LINEAR", "REVERSE_LINEAR"):
            return reordering == "REVERSE_LINEAR"
        flipped = vendors.ge_phase_flipped(fields)
        return None if flipped is None else not flipped
    return None


def _voxel_axis(
    world_lps: NDArray[np.float64], affine_ras: NDArray[np.float64]
) -> tuple[str, int] | None:
    """The voxel axis (``i``, ``j`` or ``k``) closest to a patient direction, and its
    sign; None when the image axes are degenerate."""
    lengths = np.linalg.norm(affine_ras[:3, :3], axis=0)
    axes = affine_ras[:3, :3] / np.where(lengths > 0, lengths, 1.0)
    if not np.isfinite(axes).all() or abs(np.linalg.det(axes)) < 1e-6:
        return None
    voxel = np.linalg.solve(axes, world_lps * np.array([-1.0, -1.0, 1.0]))
    index = int(np.argmax(np.abs(voxel)))
    return "ijk"[index], 1 if voxel[index] > 0 else -1


def _echo_spacing(
    fields: vendors.Fields, vendor: str, csa: dict[str, Any], recon: int
) -> float | None:
    """Effective echo spacing in seconds: Siemens from the bandwidth per pixel in the
    phase direction, GE from its effective echo spacing (microseconds)."""
    if vendor == "Siemens":
        bandwidth = _float(csa.get("BandwidthPerPixelPhaseEncode"))
        if bandwidth is None:
            bandwidth = _float(fields.private(0x0019, vendors.SIEMENS_MR, 0x28))
        if bandwidth is None:
            bandwidth = _float(fields.private(0x0021, _SDI, 0x53))
        return 1.0 / (bandwidth * recon) if bandwidth and recon else None
    if vendor == "GE":
        spacing = _float(fields.private(0x0043, vendors.GE_PARAMETERS, 0x2C))
        return spacing * 1e-6 if spacing and spacing > 0 else None
    return None
