"""Vendor fields the standard leaves to private elements, found by their creator.

Private elements are looked up through their private creator block (as pydicom's
``Dataset.private_block`` does), never by a bare element number: the block a
vendor's fields land in changes from file to file. Siemens CSA headers are parsed
with nibabel's ``csareader``. Every function returns ``None`` (or an empty result)
for a field that is absent or unreadable: callers decide what that means.
"""

from __future__ import annotations

import math
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from pydicom.dataset import Dataset

__all__ = [
    "GE_ACQUISITION",
    "GE_PARAMETERS",
    "PHILIPS_IMAGING",
    "SIEMENS_CSA",
    "SIEMENS_MR",
    "SIEMENS_XA_IMAGE",
    "SIEMENS_XA_SERIES",
    "SLICE_FIELDS",
    "UIH_IMAGE",
    "Fields",
    "GeEpi",
    "PrivateLookup",
    "diffusion",
    "ge_b0map_component",
    "ge_epi_modes",
    "ge_epi_sequence",
    "ge_multiband",
    "ge_phase_flipped",
    "ge_protocol",
    "ge_reversed_polarity",
    "ge_software_version",
    "mosaic_head_first",
    "mosaic_slices",
    "numbers",
    "philips_frame_scale_slope",
    "philips_scale_slope",
    "philips_volume_order",
    "private_value",
    "protocol_code",
    "siemens_csa",
    "siemens_echo",
    "siemens_protocol",
    "siemens_time_after_start",
    "uih_grid",
    "uih_tile_positions",
    "uih_tiles",
]

SIEMENS_MR: Final = "SIEMENS MR HEADER"
SIEMENS_CSA: Final = "SIEMENS CSA HEADER"
SIEMENS_XA_SERIES: Final = "SIEMENS MR SDS 01"
GE_ACQUISITION: Final = "GEMS_ACQU_01"
GE_PARAMETERS: Final = "GEMS_PARM_01"
GE_RELATIONS: Final = "GEMS_RELA_01"
GE_SERIES: Final = "GEMS_SERS_01"
PHILIPS_IMAGING: Final = "Philips Imaging DD 001"
PHILIPS_MR: Final = "Philips MR Imaging DD 001"
PHILIPS_MR_5: Final = "Philips MR Imaging DD 005"
PHILIPS_MR_6: Final = "Philips MR Imaging DD 006"

Gradient = tuple[float, float, float]

SLICE_FIELDS: Final[dict[int, frozenset[int] | None]] = {
    0x0019: None,  # Siemens MR header, GE acquisition: diffusion, mosaics, EPI
    0x0021: frozenset({0x04, 0x06, 0x4F}),  # Siemens XA time after start, echo; GE locations
    0x0029: frozenset({0x10}),  # Siemens CSA image header: mosaics without (0019,xx0A)
    0x0043: None,  # GE parameters: diffusion, image type
    0x0065: frozenset({0x09, 0x37, 0x50, 0x51}),  # UIH diffusion and grids
    0x2001: None,  # Philips imaging: diffusion
    0x2005: None,  # Philips MR imaging: volume order, scale slope
}
"""The private groups whose fields the slice geometry reads, with the element offsets
(the low byte, the block aside) read where not all are: :func:`diffusion`,
:func:`philips_volume_order`, :func:`mosaic_slices`, :func:`siemens_time_after_start`,
:func:`siemens_echo`, :func:`ge_b0map_component`, :func:`uih_grid`."""
SIEMENS_XA_IMAGE: Final = "SIEMENS MR SDI 02"
UIH_IMAGE: Final = "Image Private Header"


@dataclass(frozen=True)
class Fields:
    """How to read a header: ``public(keyword, default)`` for top-level values and
    ``private(group, creator, offset)`` for private ones (a catalog row answers both
    without the file)."""

    public: Callable[..., Any]
    private: Callable[[int, str, int], Any]


def private_value(ds: Dataset, group: int, creator: str, offset: int) -> Any:
    """The value of the private element ``(group, xx<offset>)`` of ``creator``'s block,
    or None. Values pydicom could not type (UN in implicit files) come as bytes."""
    return PrivateLookup(ds)(group, creator, offset)


class PrivateLookup:
    """Private values of one data set by creator: its creator elements are found in
    one pass over its tags (as plain numbers), on the first question."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._blocks: dict[tuple[int, str], int] | None = None

    def __call__(self, group: int, creator: str, offset: int) -> Any:
        if self._blocks is None:
            self._blocks = _creator_blocks(self.ds)
        block = self._blocks.get((group, creator))
        if block is None:
            return None
        tag = group << 16 | block << 8 | offset
        try:
            return self.ds[tag].value if tag in self.ds else None
        except Exception:  # a value that does not decode: as good as absent here
            return None


def _creator_blocks(ds: Dataset) -> dict[tuple[int, str], int]:
    """``{(group, creator): block}`` for every private creator element of ``ds``."""
    blocks: dict[tuple[int, str], int] = {}
    for tag in [int(tag) for tag in ds.keys()]:  # noqa: SIM118 (plain ints compare fast)
        if not (tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF):
            continue
        try:
            found = ds[tag].value
        except Exception:  # a creator that does not decode names nobody
            continue
        name = found.decode("latin-1") if isinstance(found, bytes) else str(found)
        blocks.setdefault((tag >> 16, name.strip()), tag & 0xFF)
    return blocks


def numbers(value: Any) -> list[float]:
    """The numbers in a value (one number, several, a DS/IS string or raw text bytes)."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        value = value.decode("ascii", "replace").strip("\x00 ").split("\\")
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value]
    found = []
    for item in value:
        try:
            number = float(item)
        except (TypeError, ValueError):
            return []
        found.append(number)
    return found


def _number(value: Any) -> float | None:
    found = numbers(value)
    return found[0] if found else None


def _gradient(values: Sequence[float]) -> Gradient | None:
    """Three finite numbers not all zero, as a direction; None otherwise."""
    if len(values) != 3 or not all(math.isfinite(v) for v in values) or not any(values):
        return None
    return (float(values[0]), float(values[1]), float(values[2]))


def diffusion(fields: Fields, *groups: Dataset | None) -> tuple[float | None, Gradient | None]:
    """The b-value (s/mm2) and gradient direction (patient LPS, unit or zero) of an
    image, from the standard MR Diffusion macro (in ``groups``, the per-frame and
    shared functional groups of a frame, or at the top level), else from the Siemens
    or Philips private fields. ``(None, None)`` when the image says nothing."""
    for place in groups:
        if place is None:
            continue
        item = _first_item(place, "MRDiffusionSequence") or place
        b_value = _number(item.get("DiffusionBValue"))
        if b_value is None:
            continue
        orientation = _first_item(item, "DiffusionGradientDirectionSequence") or item
        return b_value, _gradient(numbers(orientation.get("DiffusionGradientOrientation")))
    standard = _number(fields.public("DiffusionBValue"))
    if standard is not None:
        gradient = _gradient(numbers(fields.public("DiffusionGradientOrientation")))
        vendor = _private_diffusion(fields)
        if gradient is not None or standard <= 0 or vendor[0] is None:
            return standard, gradient
        return vendor  # GE writes the b-value as a standard element, the direction not
    return _private_diffusion(fields)


def _private_diffusion(fields: Fields) -> tuple[float | None, Gradient | None]:
    """The b-value and direction from Siemens', Philips' or GE's private fields."""
    b_value = _number(fields.private(0x0019, SIEMENS_MR, 0x0C))
    if b_value is not None:
        return b_value, _gradient(numbers(fields.private(0x0019, SIEMENS_MR, 0x0E)))
    b_value = _number(fields.private(0x2001, PHILIPS_IMAGING, 0x03))
    if b_value is not None:  # Philips: (RL, AP, FH), the patient axes x, y, z
        parts = [_number(fields.private(0x2005, PHILIPS_MR, o)) for o in (0xB0, 0xB1, 0xB2)]
        return b_value, _gradient([p for p in parts if p is not None])
    b_value = _number(fields.private(0x0065, UIH_IMAGE, 0x09))
    if b_value is not None:  # UIH: the direction along the image's rows, columns, normal
        local = numbers(fields.private(0x0065, UIH_IMAGE, 0x37))
        return b_value, _image_to_patient(local, fields) if len(local) == 3 else None
    b_value = _number(fields.private(0x0043, GE_PARAMETERS, 0x39))
    if b_value is not None:  # GE adds 10^9 to flag some b-values
        parts = [_number(fields.private(0x0019, GE_ACQUISITION, o)) for o in (0xBB, 0xBC, 0xBD)]
        found = [p for p in parts if p is not None]
        gradient = _ge_gradient(found, fields) if len(found) == 3 else None
        directions = _number(fields.private(0x0019, GE_ACQUISITION, 0xE0))
        if gradient is None and directions != 0:  # a DTI's b = 0 image, as dcm2niix reads it
            return 0.0, None
        return b_value % 1e9, gradient
    return None, None


def _ge_gradient(logical: list[float], fields: Fields) -> Gradient | None:
    """GE's gradient (0019,xxBB-BD)[GEMS_ACQU_01] in patient LPS.

    GE gives it in the image's logical frame (x along the rows, y along the columns,
    z along the slice normal), with signs that depend on the slice plane, as
    dcm2niix's validated conversion (from dicm2nii) for column phase encoding has it:
    axial and sagittal ``-x r - y c + z n``, coronal ``-x r + y c + z n`` (a direction
    and its negative being the same). Row phase encoding is untested anywhere: None.
    """
    axes = _image_axes(fields)
    if axes is None or str(fields.public("InPlanePhaseEncodingDirection")) != "COL":
        return None
    coronal = max(range(3), key=lambda axis: abs(axes[2][axis])) == 1
    x, y, z = logical
    return _along_axes([-x, y if coronal else -y, z], axes)


def _image_to_patient(local: list[float], fields: Fields) -> Gradient | None:
    """A direction given along an image's row, column and normal, in patient LPS."""
    axes = _image_axes(fields)
    return None if axes is None else _along_axes(local, axes)


def _image_axes(fields: Fields) -> tuple[list[float], list[float], list[float]] | None:
    """The image's row and column directions (ImageOrientationPatient) and the slice
    normal, their cross product; None without a usable orientation."""
    orientation = numbers(fields.public("ImageOrientationPatient"))
    if len(orientation) != 6:
        return None
    row, column = orientation[:3], orientation[3:]
    normal = [
        row[1] * column[2] - row[2] * column[1],
        row[2] * column[0] - row[0] * column[2],
        row[0] * column[1] - row[1] * column[0],
    ]
    return row, column, normal


def _along_axes(
    local: list[float], axes: tuple[list[float], list[float], list[float]]
) -> Gradient | None:
    """``local`` (along the row, the column and the normal) in patient LPS."""
    return _gradient([sum(v * axis[i] for v, axis in zip(local, axes, strict=True))
                      for i in range(3)])  # fmt: skip


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    sequence = ds.get(keyword)
    if not sequence:
        return None
    item: Dataset = sequence[0]
    return item


def philips_volume_order(fields: Fields) -> tuple[float, ...]:
    """How Philips orders the volumes of a classic 4-D series: the diffusion order
    (2005,xx96)[Philips MR Imaging DD 006] where the software writes it (some write 0
    throughout), then the b-value number and gradient number (2005,xx12/13)[Philips MR
    Imaging DD 005]."""
    order = _number(fields.private(0x2005, PHILIPS_MR_6, 0x96))
    pair = [_number(fields.private(0x2005, PHILIPS_MR_5, o)) for o in (0x12, 0x13)]
    numbers = tuple(p for p in pair if p is not None) if None not in pair else ()
    return numbers if order is None else (order, *numbers)


def philips_scale_slope(fields: Fields) -> float | None:
    """Philips' scale slope SS (2005,xx0E)[Philips MR Imaging DD 001]: the stored
    values over SS (with the rescale) are its floating-point values."""
    value = _number(fields.private(0x2005, PHILIPS_MR, 0x0E))
    return value if value and math.isfinite(value) else None


def philips_frame_scale_slope(frame: Dataset) -> float | None:
    """The scale slope of an enhanced frame: in the item of its Philips functional
    group (2005,xx0F)[Philips MR Imaging DD 005]."""
    item = _private_item(frame, 0x2005, PHILIPS_MR_5, 0x0F)
    return philips_scale_slope(Fields(item.get, PrivateLookup(item))) if item is not None else None


def siemens_time_after_start(fields: Fields, frame: Dataset | None = None) -> float | None:
    """Siemens XA's time (s) from the start of the acquisition to this image (0021,xx04)
    [SIEMENS MR SDI 02], or to this frame of an enhanced file: XA's slice timing,
    finer than its acquisition times."""
    return _number(_siemens_image_value(fields, 0x04, frame))


def siemens_echo(fields: Fields, frame: Dataset | None = None) -> int | None:
    """The echo of a Siemens XA image or enhanced frame: the second field of its ICE
    dimensions (0021,xx06)[SIEMENS MR SDI 02], ``X_2_1_...`` for echo 2 (enhanced files
    have no EchoNumbers)."""
    dims = _siemens_image_value(fields, 0x06, frame)
    if isinstance(dims, bytes | bytearray):
        dims = dims.decode("ascii", "replace")
    parts = str(dims or "").strip().split("_")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) > 0 else None


def _siemens_image_value(fields: Fields, offset: int, frame: Dataset | None) -> Any:
    """An element of Siemens XA's per-image block [SIEMENS MR SDI 02]: the image's, or a
    frame's (in the item of the frame's (0021,xxFE) group)."""
    if frame is None:
        return fields.private(0x0021, SIEMENS_XA_IMAGE, offset)
    item = _private_item(frame, 0x0021, SIEMENS_XA_IMAGE, 0xFE)
    return private_value(item, 0x0021, SIEMENS_XA_IMAGE, offset) if item is not None else None


def _private_item(ds: Dataset, group: int, creator: str, offset: int) -> Dataset | None:
    """The first item of a private sequence (a vendor's functional group in a frame);
    None when it is absent or not a sequence."""
    sequence = private_value(ds, group, creator, offset)
    try:
        item = sequence[0]
    except (TypeError, IndexError, KeyError):
        return None
    return item if isinstance(item, Dataset) else None


def ge_b0map_component(fields: Fields) -> str | None:
    """A GE B0 map's image: its first volume (InstanceNumber up to the locations in the
    acquisition (0021,xx4F)[GEMS_RELA_01]) is the field map in Hz, the second the
    magnitude, as dcm2niix tells them; None for other sequences."""
    names = (fields.private(0x0019, GE_ACQUISITION, o) for o in (0x9C, 0x9E))
    if not any("b0map" in str(name or "").lower() for name in names):
        return None
    locations = _number(fields.private(0x0021, GE_RELATIONS, 0x4F))
    instance = _number(fields.public("InstanceNumber"))
    if not locations or instance is None:
        return None
    return "FIELDMAPHZ" if instance <= locations else "MAGNITUDE"


def uih_grid(fields: Fields) -> int | None:
    """The images in a UIH grid, UIH's mosaic: (0065,xx50)[Image Private Header]."""
    count = _number(fields.private(0x0065, UIH_IMAGE, 0x50))
    return int(count) if count and count > 1 else None


def uih_tiles(ds: Dataset) -> list[Dataset]:
    """The items of a UIH grid's (0065,xx51)[Image Private Header], one per tile."""
    items = private_value(ds, 0x0065, UIH_IMAGE, 0x51)
    if not isinstance(items, Sequence):
        return []
    return [item for item in items if isinstance(item, Dataset)]


def uih_tile_positions(ds: Dataset) -> list[tuple[float, float, float]]:
    """The ImagePositionPatient of each tile of a UIH grid, from the items of
    (0065,xx51)[Image Private Header]; empty when they are not all there."""
    positions = []
    for item in uih_tiles(ds):
        found = numbers(item.get("ImagePositionPatient"))
        if len(found) != 3:
            return []
        positions.append((found[0], found[1], found[2]))
    return positions


def ge_reversed_polarity(fields: Fields) -> bool:
    """Whether an image of GE's epi_pepolar sequence was acquired with reversed phase
    encoding: its UserData12 (0019,xxB3)[GEMS_ACQU_01] mode is 1 (all reversed), 2
    (reversed then forward: odd temporal positions) or 3 (forward then reversed: even
    ones). GE stores these images upside down, saying nothing else (dcm2niix's rule)."""
    mode = _pepolar_mode(fields)
    if mode is None:
        return False
    position = _number(fields.public("TemporalPositionIdentifier")) or 0
    if mode == 1:
        return True
    if mode == 2:
        return position > 0 and position % 2 == 1
    if mode == 3:
        return position > 0 and position % 2 == 0
    return False


def ge_epi_modes(fields: Fields) -> bool:
    """Whether a GE epi_pepolar series holds both polarities (modes 2 and 3)."""
    return _pepolar_mode(fields) in (2, 3)


def _pepolar_mode(fields: Fields) -> float | None:
    name = str(fields.private(0x0019, GE_ACQUISITION, 0x9C) or "")
    return _number(fields.private(0x0019, GE_ACQUISITION, 0xB3)) if "epi_pepolar" in name else None


def mosaic_slices(fields: Fields, ds: Dataset | None = None) -> int | None:
    """The number of images in a Siemens mosaic: (0019,xx0A)[SIEMENS MR HEADER], else
    (older software, VB12 among them) the CSA image header's NumberOfImagesInMosaic of
    ``ds``."""
    count = _number(fields.private(0x0019, SIEMENS_MR, 0x0A))
    if not count and ds is not None:
        count = _number(siemens_csa(ds).get("NumberOfImagesInMosaic"))
    return int(count) if count and count > 0 else None


def siemens_csa(ds: Dataset, which: str = "image") -> dict[str, Any]:
    """The Siemens CSA ``image`` or ``series`` header as ``{name: value}`` (a list for
    several values, a scalar for one); empty when the file has none or it is damaged."""
    with warnings.catch_warnings():  # nibabel calls its DICOM readers experimental
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader  # heavy: only for Siemens files

        try:
            header = csareader.get_csa_header(ds, which)  # type: ignore[no-untyped-call]
        except Exception:  # nibabel raises many types for damaged headers
            return {}
    if not header:
        return {}
    fields: dict[str, Any] = {}
    for name, tag in header["tags"].items():
        items = tag["items"]
        if items:
            fields[name] = items[0] if len(items) == 1 else list(items)
    return fields


def mosaic_head_first(csa: dict[str, Any]) -> bool:
    """Whether a mosaic's tiles run from the last protocol slice to the first (saved
    with Siemens' H>>F image numbering): its CSA image header's ProtocolSliceNumber,
    that of the first tile, is then past 1 (dcm2niix's test)."""
    number = _number(csa.get("ProtocolSliceNumber"))
    return number is not None and number > 1


_PROTOCOL_LINE: Final = re.compile(r"^([A-Za-z_][\w.\[\]]*)\s*=\s*(.*?)\s*$")


def siemens_protocol(ds: Dataset, fields: Fields | None = None) -> dict[str, str]:
    """The ASCII protocol (``### ASCCONV BEGIN`` ... ``END``) of the CSA series header,
    or of Siemens XA's (0021,xx19)[SIEMENS MR SDS 01] (found through ``fields``, as
    enhanced files keep it in a functional group): ``{"sSliceArray.lSize": "25", ...}``."""
    series = siemens_csa(ds, "series")
    text = series.get("MrPhoenixProtocol") or series.get("MrProtocol")  # the latter up to VB12
    if not isinstance(text, str) and fields is not None:
        blob = fields.private(0x0021, SIEMENS_XA_SERIES, 0x19)
        text = blob.decode("latin-1", "replace") if isinstance(blob, bytes | bytearray) else None
    if not isinstance(text, str):
        return {}
    start, end = text.find("### ASCCONV BEGIN"), text.find("### ASCCONV END")
    if start < 0:
        return {}
    found = {}
    for line in text[start:end].splitlines()[1:]:
        match = _PROTOCOL_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip('"')
    return found


def protocol_code(text: str | None) -> int | None:
    """A Siemens protocol value (``0x10``, ``2``) as a number; None when it is not one."""
    try:
        return int(text, 0) if text else None
    except ValueError:
        return None


def ge_phase_flipped(fields: Fields) -> bool | None:
    """Whether a GE EPI's phase encoding is flipped, from its user defined data block
    (0043,xx2A)[GEMS_PARM_01], as dicm2nii and dcm2niix read it: at the header offset
    (a little-endian uint16 at byte 24) a float32 version, then (shifted by 0x4C from
    version 25.002 on) the EPI flag (bit 0x800 at 0x3A), the polarity flag (bit 0x4 at
    0x30) and the view order at 0x394 (0x308 from 25.002; 2 = bottom up, which turns
    the polarity around). None when the block is absent, too short or not an EPI's."""
    block = fields.private(0x0043, GE_PARAMETERS, 0x2A)
    if not isinstance(block, bytes | bytearray) or len(block) < 916:
        return None
    start = struct.unpack_from("<H", block, 24)[0]
    if len(block) < start + 916:
        return None
    (version,) = struct.unpack_from("<f", block, start)
    if not 5.0 <= version <= 40.0:
        return None
    header, view_order = start, 0x394
    if version >= 25.002:
        header, view_order = start + 0x4C, 0x394 - 0x8C
    epi, polarity, order = (struct.unpack_from("<H", block, header + at)[0]
                            for at in (0x3A, 0x30, view_order))  # fmt: skip
    if not epi & 0x800:
        return None
    flipped = bool(polarity & 0x4)
    return not flipped if order == 2 else flipped


class GeEpi(NamedTuple):
    """What a GE sequence is, for its slice timing: ``kind`` is ``epiRT`` (fMRI),
    ``epi`` (multi-phase), ``epi2`` (spin echo, diffusion), ``pepolar`` or empty."""

    kind: str
    group_delay_ms: float


def ge_epi_sequence(fields: Fields) -> GeEpi:
    """GE's pulse sequence (0019,xx9C) and internal name (0019,xx9E)[GEMS_ACQU_01] and
    the fMRI group delay (0043,xx7C)[GEMS_PARM_01], whose presence makes it epiRT
    (dcm2niix's reading)."""
    name = str(fields.private(0x0019, GE_ACQUISITION, 0x9C) or "")
    internal = str(fields.private(0x0019, GE_ACQUISITION, 0x9E) or "").strip()
    kind = ""
    for marker, found in (("epi_pepolar", "pepolar"), ("epi2", "epi2"), ("epiRT", "epiRT"),
                          ("epi", "epi")):  # fmt: skip
        if marker in name:
            kind = found
            break
    if internal == "EPI" and kind not in ("pepolar", "epiRT"):
        kind = "epi"
    if internal == "EPI2" and not kind:
        kind = "epi2"
    delay = _number(fields.private(0x0043, GE_PARAMETERS, 0x7C))
    if delay is not None:
        return GeEpi("epiRT", delay * 1000.0)
    return GeEpi(kind, 0.0)


def ge_multiband(fields: Fields) -> int:
    """GE's multiband factor, the first value of (0043,xxB6)[GEMS_PARM_01]; 1 if absent."""
    found = numbers(fields.private(0x0043, GE_PARAMETERS, 0xB6))
    return max(int(found[0]), 1) if found and math.isfinite(found[0]) else 1


_GE_VERSION: Final = re.compile(r"^..(\d+)\.(\d+)_(..)(\d*)")


def ge_software_version(software: str) -> tuple[float, bool] | None:
    """GE's software version from SoftwareVersions (``27\\LX\\MR Software
    release:RX27.0_R02_1831.a``, ``28\\LX\\MR29.1_EA_2039.g``, ``...SIGNA_LX1.MR30.0_R01``):
    the major version (27.0) and whether it is release 27.0 R03 or later, as dcm2niix
    reads it: (0.0, False) for a text of another form (``14.0_M4_0629.a`` of LX 14);
    None when it is too short to be one (under 10 characters)."""
    if len(software) < 10:
        return None
    for marker in ("SIGNA_LX1", "MR Software release"):
        at = software.find(marker)
        if at >= 0:
            tail = software[at + len(marker) + 1 :]
            break
    else:
        tail = software.rsplit("\\", 1)[-1]
    match = _GE_VERSION.match(tail)
    if match is None:
        return 0.0, False
    major, minor = int(match.group(1)), int(match.group(2))
    release = 0 if match.group(3).upper() == "EA" or not match.group(4) else int(match.group(4))
    version = major + 0.1 * minor
    return version, version >= 27.1 or (major == 27 and release >= 3)


_GE_LINE: Final = re.compile(r'^(\w+) "(.*)"$')
_GE_PROTOCOL_MOST: Final = 1 << 20
"""Bytes a GE protocol block may inflate to (real ones hold a few kB of text)."""


def ge_protocol(ds: Dataset) -> dict[str, str]:
    """GE's protocol data block (0025,xx1B)[GEMS_SERS_01]: a length, then gzip'd
    ``KEY "value"`` lines; empty when absent or unreadable."""
    block = private_value(ds, 0x0025, GE_SERIES, 0x1B)
    if not isinstance(block, bytes | bytearray) or len(block) < 8:
        return {}
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        text = inflate.decompress(bytes(block[4:]), _GE_PROTOCOL_MOST).decode("latin-1")
    except zlib.error:
        return {}
    if inflate.unconsumed_tail:
        return {}  # inflates beyond any real protocol: not read
    return {m.group(1): m.group(2) for m in map(_GE_LINE.match, text.splitlines()) if m}
