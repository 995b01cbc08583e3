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
from dicomlens.volume.acquisition import (
    ct_fields,
    mr_fields,
    phase_direction,
    siemens_protocol_fields,
)
from dicomlens.volume.model import Volume
from dicomlens.volume.timing import (
    measured_repetition,
    multiband_factor,
    repetition_time_ms,
    slice_timing,
)

__all__ = ["bids_sidecar"]

_MANUFACTURERS: Final = (
    ("SIEMENS", "Siemens"), ("GE", "GE"), ("PHILIPS", "Philips"), ("CANON", "Canon"),
    ("TOSHIBA", "Toshiba"), ("HITACHI", "Hitachi"), ("UIH", "UIH"), ("BRUKER", "Bruker"),
)  # fmt: skip
_TEXT_FIELDS: Final = (
    "Modality", "MagneticFieldStrength", "ImagingFrequency", "Manufacturer",
    "ManufacturerModelName", "InstitutionName", "InstitutionalDepartmentName",
    "InstitutionAddress", "DeviceSerialNumber", "StationName", "BodyPartExamined",
    "PatientPosition", "PerformedProcedureStepDescription", "StudyDescription",
    "SoftwareVersions", "MRAcquisitionType", "SeriesDescription", "ProtocolName",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "SequenceName", "PulseSequenceName",
    "ParallelAcquisitionTechnique", "ImageType", "ImageComments", "SeriesNumber",
)  # fmt: skip
_MS: Final = 1e-3
_BIDS_NAMES: Final = {
    "ManufacturerModelName": "ManufacturersModelName",
    "PerformedProcedureStepDescription": "ProcedureStepDescription",
}
_COMPONENTS: Final = {"MAGNITUDE": "M", "PHASE": "P", "REAL": "R", "IMAGINARY": "I"}
"""Complex components, in the order dcm2niix appends them, and their short names."""
_SDS_TEXT: Final = {"ScanningSequence": 0x5A, "SequenceVariant": 0x5B, "ScanOptions": 0x5C}
"""Siemens XA's enhanced files keep these classic fields only as (0021,xxNN)[SDS]."""


def bids_sidecar(
    header: Dataset,
    volume: Volume,
    slices: Sequence[SliceInfo],
    affine_ras: NDArray[np.float64],
    *,
    multi_echo: bool = False,
) -> dict[str, Any]:
    """The BIDS fields of a series (``header`` is its first image's header, ``slices``
    its sorted slices) for the array written with ``affine_ras``; ``multi_echo`` for
    one echo of a series that holds several (its EchoNumber is written even when 1)."""
    find, private = _finders(header)
    fields = vendors.Fields(find, private)
    sidecar: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = _plain(find(name))
        if value is None and name in _SDS_TEXT:
            value = _plain(private(0x0021, vendors.SIEMENS_XA_SERIES, _SDS_TEXT[name]))
        if isinstance(value, list) and name != "ImageType":
            value = "\\".join(map(str, value))  # as stored: "SE\\EP", like dcm2niix
        if value not in (None, "", []):
            sidecar[_BIDS_NAMES.get(name, name)] = value
    if "SequenceName" not in sidecar and "PulseSequenceName" in sidecar:
        sidecar["SequenceName"] = sidecar["PulseSequenceName"]  # enhanced files' name for it
    # Siemens XA: the ImageType of the classic files
    text = _plain(private(0x0021, vendors.SIEMENS_XA_IMAGE, 0x75))
    if text:
        sidecar["ImageTypeText"] = _image_type(text, fields, with_components=False)
    if "ImageType" in sidecar:
        component = slices[0].component if slices else ""
        sidecar["ImageType"] = _image_type(sidecar["ImageType"], fields, component=component)
        if "FIELDMAPHZ" in sidecar["ImageType"]:
            sidecar["Units"] = "Hz"
        sidecar.update(_image_flags([*sidecar["ImageType"], *sidecar.get("ImageTypeText", [])]))
    if "ImagingFrequency" not in sidecar and (frequency := _float(find("TransmitterFrequency"))):
        sidecar["ImagingFrequency"] = frequency  # enhanced files name it so
    if "Manufacturer" in sidecar:
        sidecar["Manufacturer"] = _manufacturer(str(sidecar["Manufacturer"]))
    vendor = str(sidecar.get("Manufacturer", ""))
    if vendor == "GE" and (sequence := vendors.ge_protocol(header).get("PSEQ")):
        described = sidecar.get("ProcedureStepDescription", "")
        sidecar["ProcedureStepDescription"] = described + sequence  # as dcm2niix joins them
    if "BodyPartExamined" in sidecar:
        sidecar["BodyPart"] = sidecar["BodyPartExamined"]  # dcm2niix's name since 2024
    sidecar["AcquisitionTime"] = _acquisition_time(slices)
    for name in ("AcquisitionNumber", "SliceThickness", "SpacingBetweenSlices"):
        if (value := _plain(find(name))) is not None:
            sidecar[name] = value
    echo_time = _float(find("EchoTime")) or _float(find("EffectiveEchoTime"))
    if echo_time is not None:
        sidecar["EchoTime"] = echo_time * _MS
    echo = (slices[0].echo_number if slices else None) or _float(find("EchoNumbers"))
    if echo is not None and echo >= (1 if multi_echo else 2):
        sidecar["EchoNumber"] = int(echo)
    if (repetition := repetition_time_ms(vendor, header, fields)) is not None:
        sidecar["RepetitionTime"] = repetition * _MS
    reported = sidecar.get("RepetitionTime")
    sidecar.update(measured_repetition(vendor, fields, slices, volume, reported))
    if (flip := _float(find("FlipAngle"))) is not None:
        sidecar["FlipAngle"] = flip
    sidecar.update(_philips_scaling(slices, volume))
    csa = vendors.siemens_csa(header) if vendor == "Siemens" else {}
    protocol = vendors.siemens_protocol(header, fields) if vendor == "Siemens" else {}
    if sidecar.get("Modality") == "MR":
        reverse = bool(slices) and slices[0].rows_reversed
        sidecar.update(mr_fields(fields, vendor, csa, protocol, volume.array.shape, affine_ras,
                                 reversed_polarity=reverse))  # fmt: skip
        if reverse and vendors.ge_epi_modes(fields) and "SeriesNumber" in sidecar:
            sidecar["SeriesNumber"] += 1000  # its reversed part, as dcm2niix numbers it
        phase = bool({"P", "PHASE"} & set(sidecar.get("ImageType", ())))
        weighted = volume.bvals is not None or any((s.b_value or 0) > 0 for s in slices)
        sidecar.update(siemens_protocol_fields(protocol, diffusion=weighted, phase=phase))
        if coil := _coil_string(fields, vendor):
            sidecar["CoilString"] = coil
    elif sidecar.get("Modality") in ("CT", "CR", "DX", "XA", "RF", "MG", "PX"):
        sidecar.update(ct_fields(find))
    if vendor == "GE" and (flipped := vendors.ge_phase_flipped(fields)) is not None:
        sidecar["PhaseEncodingPolarityGE"] = "Flipped" if flipped else "Unflipped"
    timing = slice_timing(header, fields, vendor, csa, protocol, slices, volume)
    if timing is not None:
        sidecar["SliceTiming"] = timing
    factor = multiband_factor(vendor, header, fields, protocol, timing)
    if factor > 1 and sidecar.get("Modality") == "MR":
        sidecar["MultibandAccelerationFactor"] = factor
    orientation = find("ImageOrientationPatient")
    if orientation is not None:
        sidecar["ImageOrientationPatientDICOM"] = [float(v) for v in orientation]
    if direction := phase_direction(find):
        sidecar["InPlanePhaseEncodingDirectionDICOM"] = direction
    sidecar["ConversionSoftware"] = "dicomlens"
    sidecar["ConversionSoftwareVersion"] = __version__
    return sidecar


def _finders(header: Dataset) -> tuple[Any, Any]:
    """Lookups by keyword and of private values: the top level, then the items of the
    shared and first per-frame functional groups of an enhanced file, and the items
    nested one level in those (Siemens XA keeps its private fields there)."""
    places = [header]
    philips = vendors.private_value(header, 0x2005, vendors.PHILIPS_MR_5, 0x0F)
    if isinstance(philips, Sequence) and philips and isinstance(philips[0], Dataset):
        places.append(philips[0])  # Philips' classic files: enhanced attributes in here
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


def _image_type(
    values: Any, fields: vendors.Fields, *, with_components: bool = True, component: str = ""
) -> list[str]:
    """ImageType as dcm2niix lists it: values split at underscores, then each complex
    component the image holds (MAGNITUDE, PHASE, REAL, IMAGINARY) that its values do
    not name, as dcm2niix detects them: inner values M, P, R, I (or spelled out, or
    PHASE anywhere), ComplexImageComponent, GE's image type (0043,xx2F); FIELDMAPHZ
    for a B0 map held as real values."""
    parts = [part for value in (values if isinstance(values, list) else [values])
             for part in str(value).split("_") if part]  # fmt: skip
    if fields.public("Modality") != "MR" or not with_components:
        return parts
    inner = set(parts[1:-1])
    held = {name for name, short in _COMPONENTS.items() if {name, short} & inner}
    if any("PHASE" in part for part in parts):
        held.add("PHASE")
    stated = str(fields.public("ComplexImageComponent") or "").upper()
    held |= {name for name in _COMPONENTS if stated.startswith(name[:2])}
    ge_type = vendors.numbers(fields.private(0x0043, vendors.GE_PARAMETERS, 0x2F))
    if ge_type and int(ge_type[0]) in range(4):
        held.add(("MAGNITUDE", "PHASE", "REAL", "IMAGINARY")[int(ge_type[0])])
    if component == "FIELDMAPHZ":  # a GE B0 map's field map
        return parts if "FIELDMAPHZ" in inner else [*parts, "FIELDMAPHZ"]
    if component in _COMPONENTS:  # the series' part is of this one (GE's may say MAGNITUDE)
        held = {component}
    joined = "_".join(parts)
    if "REAL" in held and "B0" in joined and "MAP" in joined:
        return parts if "FIELDMAPHZ" in inner else [*parts, "FIELDMAPHZ"]
    return parts + [name for name in _COMPONENTS if name in held and name not in inner]


def _image_flags(parts: list[str]) -> dict[str, Any]:
    """What ImageType says of the image, as dcm2niix reports it: distortion-corrected
    (Siemens' DIS2D/DIS3D) or not (ND), and derived (not a raw image)."""
    flags: dict[str, Any] = {}
    if {"DIS2D", "DIS3D"} & set(parts):
        flags["NonlinearGradientCorrection"] = True
    elif "ND" in parts:
        flags["NonlinearGradientCorrection"] = False
    if parts and parts[0] == "DERIVED":
        flags["RawImage"] = False
    return flags


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


def _coil_string(fields: vendors.Fields, vendor: str) -> str:
    """The receive coil as the scanner names it: Siemens (0051,xx0F), else
    ReceiveCoilName."""
    if vendor == "Siemens":
        siemens = fields.private(0x0051, vendors.SIEMENS_MR, 0x0F)
        if isinstance(siemens, str) and siemens.strip():
            return siemens.strip()
    return str(fields.public("ReceiveCoilName") or "").strip()


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
    """The AcquisitionTime of the image numbered first (InstanceNumber), as dcm2niix
    gives it (``HH:MM:S.ffffff``); the earliest where images have no number (an
    enhanced file's own AcquisitionTime, not its frames')."""
    stamped = [s for s in slices if s.acquisition_time or s.time_acquired]
    if not stamped:
        return None
    numbered = [s for s in stamped if s.instance_number is not None]
    if numbered:
        found = min(numbered, key=lambda s: s.instance_number or 0)
        stamp = found.acquisition_time or found.time_acquired
    else:
        stamp = min((s.acquisition_time or s.time_acquired or "" for s in stamped),
                    key=seconds_of_day)  # fmt: skip
    if not stamp:
        return None
    first = seconds_of_day(stamp)
    hours, rest = divmod(first, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:f}"
