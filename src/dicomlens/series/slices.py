"""One :class:`SliceInfo` per 2-D image, read out of a (header-only) data set.

A slice is one 2-D image: a single-frame file, or one frame of an enhanced
multi-frame file. Coordinates are DICOM patient coordinates (LPS, millimetres).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomlens import vendors

__all__ = [
    "HEADER_TAGS",
    "NativePixels",
    "SliceInfo",
    "Values",
    "number_or_none",
    "precise_values",
    "read_by_slice_infos",
    "slice_infos",
]

_HEADER_KEYWORDS: Final = (
    "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns",
    "SeriesNumber", "SeriesDescription", "Modality", "InstanceNumber", "AcquisitionTime",
    "ImageType", "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient",
    "PixelSpacing", "SliceThickness", "EchoNumbers", "EchoTime", "TemporalPositionIdentifier",
    "RescaleSlope", "RescaleIntercept", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence", "AcquisitionNumber", "TriggerTime", "DiffusionBValue",
    "DiffusionGradientOrientation", "MRDiffusionSequence", "Manufacturer", "ImagerPixelSpacing",
    "NominalScannedPixelSpacing", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "SamplesPerPixel", "InPlanePhaseEncodingDirection", "ComplexImageComponent",
    "AcquisitionDateTime",
)  # fmt: skip
_PIXEL_DATA: Final = 0x7FE00010
_SHARED_GROUPS: Final = 0x52009229  # Shared Functional Groups Sequence
_PER_FRAME_GROUPS: Final = 0x52009230  # Per-Frame Functional Groups Sequence
_NATIVE_LE: Final = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
HEADER_TAGS: Final = frozenset(tag_for_keyword(keyword) or 0 for keyword in _HEADER_KEYWORDS)
"""The top-level elements :func:`slice_infos` reads (to decode only those when scanning)."""



def read_by_slice_infos(tag: int) -> bool:
    """Whether :func:`slice_infos` may read this top-level element: one of
    :data:`HEADER_TAGS`, the pixel data, or an element of a private group that
    :mod:`dicomlens.vendors` reads for the geometry (its creators included)."""
    if tag in HEADER_TAGS or tag == _PIXEL_DATA:
        return True
    group, element = tag >> 16, tag & 0xFFFF
    if group not in vendors.SLICE_FIELDS:
        return False
    offsets = vendors.SLICE_FIELDS[group]
    return offsets is None or 0x10 <= element <= 0xFF or (element & 0xFF) in offsets


class NativePixels(NamedTuple):
    """Where uncompressed little-endian pixels of a one-frame image lie in its file."""

    offset: int
    dtype: str
    unused_bits: int


@dataclass(frozen=True)
class SliceInfo:
    """What grouping, sorting and loading need to know about one 2-D image."""

    path: Path
    frame: int | None
    sop_instance_uid: str
    series_instance_uid: str
    rows: int
    columns: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None = None
    instance_number: int | None = None
    acquisition_time: str | None = None
    echo_number: int | None = None
    echo_time: float | None = None
    temporal_position: int | None = None
    image_type: tuple[str, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0
    series_number: int | None = None
    series_description: str = ""
    modality: str = ""
    study_instance_uid: str = ""
    mosaic: bool = False
    native_pixels: NativePixels | None = None
    acquisition_number: int | None = None
    trigger_time: float | None = None
    b_value: float | None = None
    gradient: tuple[float, float, float] | None = None
    """Diffusion gradient direction in patient (LPS) coordinates."""
    volume_order: tuple[float, ...] = ()
    """A vendor's own order of the volumes of a 4-D series (Philips)."""
    mosaic_slices: int | None = None
    mosaic_rows: int | None = None
    """Rows of tiles of a mosaic that is not square (UIH's grids fill only the rows
    they need); None for Siemens', as many rows as columns."""
    frame_time: str | None = None
    """FrameAcquisitionDateTime of an enhanced frame (for slice timing)."""
    imager_pixel_spacing: tuple[float, float] | None = None
    """ImagerPixelSpacing (or NominalScannedPixelSpacing) of a projection image."""
    rows_reversed: bool = False
    """Stored upside down: GE's epi_pepolar images of reversed phase encoding."""
    component: str = ""
    """The complex component (MAGNITUDE, PHASE, REAL, IMAGINARY, or FIELDMAPHZ for a
    GE B0 map's field map) where the header says it apart from ImageType."""
    time_after_start: float | None = None
    """Siemens XA's time from the start of the acquisition to this image (s)."""
    scale_slope: float | None = None
    """Philips' private scale slope SS: the image's floating-point values are
    ``(stored * slope + intercept) / (slope * SS)`` (:func:`precise_values`)."""

    @property
    def time_acquired(self) -> str | None:
        """When the image was acquired (TM): an enhanced frame's FrameAcquisitionDateTime
        without its date, else AcquisitionTime."""
        return self.frame_time[8:] if self.frame_time else self.acquisition_time

    @property
    def normal(self) -> NDArray[np.float64] | None:
        """Unit vector perpendicular to the slice (row cosine x column cosine)."""
        if self.orientation is None:
            return None
        row, col = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        normal = np.cross(row, col)
        length = float(np.linalg.norm(normal))
        return normal / length if length > 0 else None



def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def number_or_none(value: Any, kind: type = float) -> Any:
    """A header value as ``kind`` (a number), None when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _item(ds: Dataset | None, sequence: str | int) -> Dataset | None:
    if ds is None or sequence not in ds or not ds[sequence].value:
        return None
    item: Dataset = ds[sequence].value[0]
    return item


def _first(keyword: str, *places: Dataset | None) -> Any:
    for place in places:
        if place is not None and keyword in place:
            return place[keyword].value
    return None


Values = Callable[..., Any]
"""A top-level element's value by keyword, with a default: ``Dataset.get`` or alike."""


def slice_infos(
    ds: Dataset,
    path: Path,
    values: Values | None = None,
    *,
    pixel_data: RawDataElement | DataElement | None = None,
    private: Callable[[int, str, int], Any] | None = None,
) -> list[SliceInfo]:
    """One :class:`SliceInfo` per image in a (header-only) dataset: one for a
    classic file, one per frame for an enhanced multi-frame file.

    ``values`` gives top-level values by keyword (``ds.get`` by default), and
    ``pixel_data`` the Pixel Data element as read (``ds``'s by default), for callers
    that have already read them, and ``private(group, creator, offset)`` private values;
    sequences and the file meta are read from ``ds``.
    """
    get = values or ds.get
    fields = vendors.Fields(get, private or vendors.PrivateLookup(ds))
    frames = number_or_none(get("NumberOfFrames"), int) or 1
    common: dict[str, Any] = {
        "path": path,
        "sop_instance_uid": _text(get("SOPInstanceUID")),
        "series_instance_uid": _text(get("SeriesInstanceUID")),
        "study_instance_uid": _text(get("StudyInstanceUID")),
        "rows": number_or_none(get("Rows"), int) or 0,
        "columns": number_or_none(get("Columns"), int) or 0,
        "series_number": number_or_none(get("SeriesNumber"), int),
        "series_description": _text(get("SeriesDescription")),
        "modality": _text(get("Modality")),
        "instance_number": number_or_none(get("InstanceNumber"), int),
        "acquisition_time": _text(get("AcquisitionTime"))
        or _text(get("AcquisitionDateTime"))[8:]  # enhanced files give the date and time
        or None,
        "image_type": _texts(get("ImageType")),
        "acquisition_number": number_or_none(get("AcquisitionNumber"), int),
        "trigger_time": number_or_none(get("TriggerTime")),
    }
    common["mosaic"] = "MOSAIC" in common["image_type"]
    vendor = _text(get("Manufacturer")).upper()
    if common["mosaic"]:
        common["mosaic_slices"] = vendors.mosaic_slices(fields, ds)
    magnetic = common["modality"] == "MR"  # diffusion and vendor volume orders: MR only
    grid = vendors.uih_grid(fields) if "UIH" in vendor and magnetic else None
    if grid:  # UIH's mosaic: its rows of tiles, and its first tile's position
        columns = math.ceil(math.sqrt(grid))
        common.update(mosaic=True, mosaic_slices=grid, mosaic_rows=math.ceil(grid / columns))
    siemens = "SIEMENS" in vendor and magnetic
    philips = "PHILIPS" in vendor and magnetic
    if "GE" in vendor and magnetic:
        common["rows_reversed"] = vendors.ge_reversed_polarity(fields)
    common["component"] = _text(get("ComplexImageComponent")) or (
        vendors.ge_b0map_component(fields) or "" if "GE" in vendor and magnetic else ""
    )
    if philips:
        common["volume_order"] = vendors.philips_volume_order(fields)
        common["scale_slope"] = vendors.philips_scale_slope(fields)
    if pixel_data is None and _PIXEL_DATA in ds:
        pixel_data = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    common["native_pixels"] = _native_pixels(ds, pixel_data, get) if frames == 1 else None
    shared_groups = _item(ds, _SHARED_GROUPS)
    per_frame = ds[_PER_FRAME_GROUPS].value if _PER_FRAME_GROUPS in ds else None
    if per_frame is None or (frames == 1 and shared_groups is None):
        if siemens:
            common["time_after_start"] = vendors.siemens_time_after_start(fields)
        b_value, gradient = vendors.diffusion(fields) if magnetic else (None, None)
        geometry = {**common, **_classic_geometry(get), "b_value": b_value, "gradient": gradient}
        if siemens and geometry["echo_number"] is None:  # XA's classic files may lack it
            geometry["echo_number"] = vendors.siemens_echo(fields)
        if grid and geometry["position"] is None and (tiles := vendors.uih_tile_positions(ds)):
            geometry["position"] = tiles[0]
        if grid and geometry["acquisition_time"] is None:  # its first tile's
            stamps = [_text(item.get("AcquisitionTime")) for item in vendors.uih_tiles(ds)]
            geometry["acquisition_time"] = min(filter(None, stamps), default=None)
        if frames == 1 or not _plausible_frames(frames, pixel_data, get):
            return [SliceInfo(frame=None, **geometry)]
        # a multi-frame image without functional groups (a cine, a nuclear medicine set):
        # every frame a slice of the file's geometry, in frame order
        return [SliceInfo(frame=index, **geometry) for index in range(frames)]
    infos = []
    for index, frame in enumerate(per_frame[:frames]):
        geometry = _frame_geometry(frame, shared_groups, ds, fields)
        if siemens:
            geometry["time_after_start"] = vendors.siemens_time_after_start(fields, frame)
            geometry["echo_number"] = vendors.siemens_echo(fields, frame)
        if philips:  # a frame's own scale slope, else the file's
            frame_slope = vendors.philips_frame_scale_slope(frame)
            geometry["scale_slope"] = frame_slope or common["scale_slope"]
        infos.append(SliceInfo(frame=index, **{**common, **geometry}))
    return infos


def precise_values(info: SliceInfo) -> SliceInfo:
    """The slice with the rescale that gives Philips' floating-point values (FP, as
    dcm2niix writes them by default) instead of the display values; the slice itself
    when it has no scale slope."""
    if not info.scale_slope or not info.slope:
        return info
    scale = info.slope * info.scale_slope
    return replace(info, slope=1.0 / info.scale_slope, intercept=info.intercept / scale)


_MOST_FRAMES: Final = 10_000
"""Frames of a multi-frame file without functional groups listed one by one, at most
(a file declaring more is one slice: loading it then checks the declared size)."""


def _plausible_frames(frames: int, pixel_data: Any, get: Values) -> bool:
    """Whether a file's frames can be listed: not absurdly many, and, for native pixel
    data, no more than its bytes hold."""
    if frames > _MOST_FRAMES:
        return False
    length = getattr(pixel_data, "length", None)
    if length is None or length == 0xFFFFFFFF:  # encapsulated: the decoder will tell
        return True
    rows, columns = number_or_none(get("Rows"), int) or 0, number_or_none(get("Columns"), int) or 0
    samples = number_or_none(get("SamplesPerPixel"), int) or 1
    bits = number_or_none(get("BitsAllocated"), int) or 8
    frame_bytes = rows * columns * samples * max(bits, 8) // 8
    return bool(frame_bytes) and frames * frame_bytes <= int(length)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _texts(value: Any) -> tuple[str, ...]:
    """A multi-valued string's values (a single value comes as a plain string)."""
    if value is None or value == "":
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _native_pixels(
    ds: Dataset, raw: RawDataElement | DataElement | None, get: Values
) -> NativePixels | None:
    """The file position of plain pixel data left in the file by a deferred read."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not isinstance(raw, RawDataElement) or raw.value is not None or syntax not in _NATIVE_LE:
        return None
    bits = number_or_none(get("BitsAllocated"), int)
    stored = number_or_none(get("BitsStored"), int) or bits
    samples = number_or_none(get("SamplesPerPixel"), int) or 1
    rows, columns = number_or_none(get("Rows"), int) or 0, number_or_none(get("Columns"), int) or 0
    if bits not in (8, 16) or samples != 1 or not 0 < stored <= bits:
        return None
    if raw.length != rows * columns * bits // 8:
        return None  # odd layouts and damaged data go through pydicom
    kind = "i" if get("PixelRepresentation") == 1 else "u"
    return NativePixels(raw.value_tell, f"<{kind}{bits // 8}", bits - stored)


def _classic_geometry(get: Values) -> dict[str, Any]:
    return {
        "position": _floats(get("ImagePositionPatient"), 3),
        "orientation": _floats(get("ImageOrientationPatient"), 6),
        "pixel_spacing": _floats(get("PixelSpacing"), 2),
        "imager_pixel_spacing": _floats(
            get("ImagerPixelSpacing") or get("NominalScannedPixelSpacing"), 2
        ),
        "slice_thickness": number_or_none(get("SliceThickness")),
        "echo_number": number_or_none(get("EchoNumbers"), int),
        "echo_time": number_or_none(get("EchoTime")),
        "temporal_position": number_or_none(get("TemporalPositionIdentifier"), int),
        "slope": number_or_none(get("RescaleSlope")) or 1.0,
        "intercept": number_or_none(get("RescaleIntercept")) or 0.0,
    }


def _frame_geometry(
    frame: Dataset, shared: Dataset | None, ds: Dataset, fields: vendors.Fields
) -> dict[str, Any]:
    def macro(sequence: str) -> list[Dataset | None]:
        return [_item(frame, sequence), _item(shared, sequence)]

    measures = macro("PixelMeasuresSequence")
    transform = macro("PixelValueTransformationSequence")
    content = macro("FrameContentSequence")
    frame_type = macro("MRImageFrameTypeSequence")
    echo = macro("MREchoSequence")
    b_value, gradient = vendors.diffusion(fields, *macro("MRDiffusionSequence"))
    return {
        "b_value": b_value,
        "gradient": gradient,
        "frame_time": _text(_first("FrameAcquisitionDateTime", *content)) or None,
        "position": _floats(_first("ImagePositionPatient", *macro("PlanePositionSequence")), 3),
        "orientation": _floats(
            _first("ImageOrientationPatient", *macro("PlaneOrientationSequence")), 6
        ),
        "pixel_spacing": _floats(_first("PixelSpacing", *measures), 2),
        "slice_thickness": number_or_none(_first("SliceThickness", *measures)),
        "echo_time": number_or_none(_first("EffectiveEchoTime", *echo)),
        "echo_number": None,
        "temporal_position": number_or_none(_first("TemporalPositionIndex", *content), int),
        "component": _text(_first("ComplexImageComponent", *frame_type, ds)),
        "slope": number_or_none(_first("RescaleSlope", *transform, ds)) or 1.0,
        "intercept": number_or_none(_first("RescaleIntercept", *transform, ds)) or 0.0,
    }
