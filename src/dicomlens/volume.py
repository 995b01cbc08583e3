"""Pixel volumes: stack sorted slices into a 3-D array with its affine.

Axis order is ``(i, j, k)`` = (column, row, slice), the order of the affine and
of NIfTI: ``volume.array[i, j, k]`` is the voxel at
``volume.affine_lps @ (i, j, k, 1)``. One 2-D slice as rows x columns is
``volume.array[:, :, k].T``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_windowing

from dicomlens.errors import FileError, SeriesError
from dicomlens.isolation import run_isolated
from dicomlens.reading import read
from dicomlens.series import (
    GeometryReport,
    NativePixels,
    SliceInfo,
    affine_lps,
    lps_to_ras,
    slice_step,
)

__all__ = [
    "PRESETS",
    "Volume",
    "Window",
    "colour_to_uint8",
    "file_windows",
    "full_range_window",
    "load_slice",
    "load_volume",
    "window_to_uint8",
]

MAX_IMAGE_BYTES: Final = 4 << 30
"""Largest decoded image (all frames) loaded; bigger declarations are refused unread."""
_NATIVE_SYNTAXES: Final = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)

_PIXEL_KEYWORDS: Final = (
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames",
    "PixelData", "FloatPixelData", "DoubleFloatPixelData",
)  # fmt: skip
_READ_THREADS: Final = 4
_PIXEL_TAGS: Final = frozenset(tag_for_keyword(keyword) or 0 for keyword in _PIXEL_KEYWORDS)


@dataclass
class Volume:
    """A 3-D image: voxels, where they are, and how they were assembled."""

    array: NDArray[Any]
    affine_lps: NDArray[np.float64]
    report: GeometryReport
    rescaled: bool
    slices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def affine_ras(self) -> NDArray[np.float64]:
        """The affine in RAS (NIfTI) coordinates."""
        return lps_to_ras(self.affine_lps)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j and k in mm."""
        lengths = np.linalg.norm(self.affine_lps[:3, :3], axis=0)
        return (float(lengths[0]), float(lengths[1]), float(lengths[2]))


def load_volume(
    ordered: Sequence[SliceInfo],
    report: GeometryReport,
    *,
    rescale: bool = True,
    dtype: npt.DTypeLike | None = None,
    strict: bool = False,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> Volume:
    """Read the pixels of sorted slices into a :class:`Volume`.

    Parameters
    ----------
    ordered
        Slices as :func:`dicomlens.series.sort_slices` ordered them.
    report
        Their geometry report; notes about the loading are added to it.
    rescale
        Apply RescaleSlope/Intercept (modality values such as Hounsfield units);
        integer results stay integer, others become float32.
    dtype
        Build the volume in this type directly (e.g. ``numpy.float32``), each
        slice converted as it is read: faster and leaner than converting after.
    strict
        Refuse series with missing slices, duplicate positions or irregular
        spacing instead of noting them in the report.
    max_image_bytes
        Largest decoded image of one file (all its frames) accepted; larger
        declarations are refused before anything is decoded (4 GiB by default).

    Raises
    ------
    SeriesError
        A slice cannot be read or decoded, slices at one position differ, the
        series is a Siemens mosaic or holds colour images.
    """
    if not ordered:
        raise SeriesError("no slices to load")
    if strict and (report.gaps or report.duplicates or not report.uniform):
        found = [n for n in report.notes if n.startswith(("gap", "duplicate"))]
        problem = (
            found[0] if found else f"irregular spacing (up to {report.max_deviation_mm} mm off)"
        )
        raise SeriesError(f"{ordered[0].path.parent}: {problem} (strict)")
    if ordered[0].mosaic:
        if len({s.path for s in ordered}) != 1:
            raise SeriesError(
                f"{ordered[0].path.parent}: each Siemens mosaic file is a volume of its own; "
                "load the files one at a time"
            )
        return _mosaic_volume(ordered[0], report, rescale=rescale, limit=max_image_bytes)
    indexes = _slice_indexes(ordered, report)
    into = None if dtype is None else np.dtype(dtype)
    decoder = _Decoder(max_image_bytes)
    planes, filled = _stack(ordered, indexes, into=into, rescale=rescale, decoder=decoder)
    missing = planes.shape[0] - len(filled)
    if missing:
        report.notes.append(f"{missing} missing slice(s) left as zeros so that the affine holds")
    if rescale and into is None:
        planes = _rescale(planes, {index: ordered[number] for index, number in filled.items()})
    table = [_row(s, index) for s, index in zip(ordered, indexes, strict=True)]
    # The slices are contiguous rows x columns planes; the (i, j, k) view of that
    # memory is Fortran-ordered, as NIfTI stores it.
    return Volume(planes.transpose(2, 1, 0), affine_lps(ordered), report, rescale, table)


def _stack(
    ordered: Sequence[SliceInfo],
    indexes: list[int],
    *,
    into: np.dtype[Any] | None,
    rescale: bool,
    decoder: _Decoder,
) -> tuple[NDArray[Any], dict[int, int]]:
    """Pixel values as (slice, row, column) planes, each slice read once.

    Without ``into`` the planes hold stored values in their own type and
    uncompressed slices are read straight into their plane; with ``into`` each
    slice is converted (and rescaled, if asked) as it is placed. A few threads
    read the uncompressed slices (file reads release the GIL); pydicom decodes
    the others. Returns the planes and, per filled plane, the slice number in it.
    """
    first = decoder.pixels(ordered[0])
    if first.ndim != 2:
        raise SeriesError(f"{ordered[0].path}: colour or multi-sample images do not form a volume")
    planes = np.zeros((max(indexes) + 1, *first.shape), dtype=into or first.dtype)
    convert = rescale and into is not None
    filled: dict[int, int] = {}
    direct: list[tuple[SliceInfo, NativePixels, int]] = []
    repeated: list[tuple[SliceInfo, int]] = []
    for number, (info, index) in enumerate(zip(ordered, indexes, strict=True)):
        if index in filled:
            repeated.append((info, index))
            continue
        filled[index] = number
        if number and info.native_pixels is not None:
            direct.append((info, info.native_pixels, index))
            continue
        pixels = first if number == 0 else decoder.pixels(info)
        if pixels.shape != first.shape:
            raise SeriesError(f"{info.path}: image size {pixels.shape} differs from {first.shape}")
        _place(planes[index], pixels, info, rescale=convert)

    def read_direct(info: SliceInfo, native: NativePixels, index: int) -> None:
        if not convert and planes.dtype == native.dtype:
            _read_native(info, native, out=planes[index])
            return
        buffer = np.empty(first.shape, dtype=native.dtype)
        _read_native(info, native, out=buffer)
        _place(planes[index], buffer, info, rescale=convert)

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        for job in [pool.submit(read_direct, *task) for task in direct]:
            job.result()
    for info, index in repeated:
        _check_duplicate(planes[index], decoder.pixels(info), ordered[filled[index]], info)
    return planes, filled


def _place(plane: NDArray[Any], pixels: NDArray[Any], info: SliceInfo, *, rescale: bool) -> None:
    """Put one slice's stored values into its plane, rescaled on the way if asked."""
    if not rescale or (info.slope == 1 and info.intercept == 0):
        plane[...] = pixels
        return
    np.multiply(pixels, info.slope, out=plane, casting="unsafe")
    plane += plane.dtype.type(info.intercept)


@dataclass
class _Decoder:
    """Stored values of slices: files decoded once each, and only when their declared
    image size is within ``limit`` bytes."""

    limit: int = MAX_IMAGE_BYTES
    decoded: dict[Path, NDArray[Any]] = field(default_factory=dict)

    def pixels(self, info: SliceInfo) -> NDArray[Any]:
        if info.native_pixels is not None:
            out = np.empty((info.rows, info.columns), dtype=info.native_pixels.dtype)
            _read_native(info, info.native_pixels, out=out)
            return out
        if info.path not in self.decoded:
            self.decoded[info.path] = _decode(info.path, self.limit)
        return _frame_of(self.decoded[info.path], info)


def _frame_of(pixels: NDArray[Any], info: SliceInfo) -> NDArray[Any]:
    """The slice's frame of a decoded file: pydicom gives frames first (frames x rows x
    columns, x samples for colour) and no frame axis for a single frame."""
    if info.frame is None:
        return pixels
    image = (info.rows, info.columns)
    framed = pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[1:] == image)
    return pixels[info.frame] if framed else pixels


def load_slice(
    info: SliceInfo,
    *,
    rescale: bool = True,
    isolated: bool = False,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> NDArray[Any]:
    """One image (rows x columns): modality values (float32 when the rescale is not
    integral), or the stored values with ``rescale=False``. With ``isolated``,
    compressed data is decoded in a child process limited in memory and time
    (:mod:`dicomlens.isolation`), for long-running callers such as the viewer.

    >>> from pydicom import dcmread
    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.series import slice_infos
    >>> path = get_testdata_file("CT_small.dcm")
    >>> (info,) = slice_infos(dcmread(path), Path(path))
    >>> load_slice(info).shape, int(load_slice(info).min())
    ((128, 128), -896)
    """
    if isolated and info.native_pixels is None:
        stored = run_isolated(_stored_frame, info, max_image_bytes, what=str(info.path))
    else:
        stored = _Decoder(max_image_bytes).pixels(info)
    if not rescale or (info.slope == 1 and info.intercept == 0):
        return stored
    integral = float(info.slope).is_integer() and float(info.intercept).is_integer()
    plane = np.empty(stored.shape, dtype=np.int32 if integral else np.float32)
    _place(plane, stored, info, rescale=True)
    return plane


def _stored_frame(info: SliceInfo, limit: int) -> NDArray[Any]:
    return _frame_of(_decode(info.path, limit), info)


def _rescale(planes: NDArray[Any], slices: dict[int, SliceInfo]) -> NDArray[Any]:
    """Modality values, in place where the stored type can hold them: integer
    slopes and intercepts keep an integer type, others give float32."""
    pairs = {index: (info.slope, info.intercept) for index, info in slices.items()}
    if all(slope == 1 and intercept == 0 for slope, intercept in pairs.values()):
        return planes
    integral = all(float(v).is_integer() for pair in pairs.values() for v in pair)
    if integral and planes.dtype.kind in "iu":
        low, high = float(planes.min()), float(planes.max())
        ends = [
            end * slope + intercept for slope, intercept in pairs.values() for end in (low, high)
        ]
        fits = [
            t
            for t in (np.int16, np.int32)
            if np.iinfo(t).min <= min(ends) and max(ends) <= np.iinfo(t).max
        ]
        dtype = np.dtype(fits[0]) if fits else np.dtype(np.float64)
    else:
        dtype = np.dtype(np.float32)
    out = planes if planes.dtype == dtype else planes.astype(dtype)
    for index, (slope, intercept) in pairs.items():
        if slope != 1:
            out[index] *= dtype.type(slope)
        if intercept != 0:
            out[index] += dtype.type(intercept)
    return out


def _mosaic_volume(
    info: SliceInfo, report: GeometryReport, *, rescale: bool, limit: int
) -> Volume:
    """Unpack a Siemens mosaic with nibabel's DICOM wrappers (CSA header parsing)."""
    with warnings.catch_warnings():  # nibabel calls its readers experimental on import;
        warnings.simplefilter("ignore")  # the unpacking is checked against dcm2niix in our tests
        from nibabel.nicom import dicomwrappers  # heavy: only for mosaics

    ds = _read_full(info.path)
    _check_declared_size(ds, info.path, limit)
    try:
        wrapper = dicomwrappers.wrapper_from_data(ds)  # type: ignore[no-untyped-call]
        stored = np.asarray(wrapper.get_pixel_array())
        data = np.asarray(wrapper.get_data())
        affine = np.asarray(wrapper.affine, dtype=float)
    except Exception as exc:  # nibabel raises many types for odd CSA headers
        raise SeriesError(f"{info.path}: cannot unpack the mosaic ({exc})") from exc
    if not rescale:
        data = data.astype(stored.dtype) if info.slope == 1 and info.intercept == 0 else data
    expected = np.array(info.orientation[:3]) * info.pixel_spacing[1]  # type: ignore[index]
    if not np.allclose(affine[:3, 0], expected, atol=1e-3):  # nibabel gave (row, column, slice)
        data = data.swapaxes(0, 1)
        affine[:, [0, 1]] = affine[:, [1, 0]]
    report.notes.append(f"Siemens mosaic of {data.shape[2]} slices unpacked")
    report.slices = data.shape[2]
    return Volume(data, affine, report, rescale, [_row(info, 0)])


def _read_full(path: Path, *, decode: frozenset[int] | None = None) -> Any:
    try:
        return read(path, decode=decode)
    except FileError as exc:
        raise SeriesError(f"volume needs every slice: {exc}") from exc


def _slice_indexes(ordered: Sequence[SliceInfo], report: GeometryReport) -> list[int]:
    """Index along k of each slice: gaps leave room, duplicates share an index."""
    step = slice_step(ordered)
    if step is None or report.sorted_by != "position":
        return list(range(len(ordered)))
    direction = step / float(np.dot(step, step))
    positions = np.array([s.position for s in ordered], dtype=float)
    return [round(float(d)) for d in (positions - positions[0]) @ direction]


def _read_native(info: SliceInfo, where: NativePixels, *, out: NDArray[Any]) -> None:
    """Uncompressed pixels straight from the file into ``out``, as pydicom would
    decode them (unused high bits cleared or sign-extended, its ``correct_unused_bits``)."""
    wanted = out.nbytes
    try:
        with info.path.open("rb") as fh:
            fh.seek(where.offset)
            got = fh.readinto(out.data.cast("B"))
    except OSError as exc:
        raise SeriesError(f"{info.path}: cannot read pixel data ({exc.strerror or exc})") from exc
    if got < wanted:
        raise SeriesError(
            f"{info.path}: cannot decode pixel data (Pixel Data shorter than declared: "
            f"{got} of {wanted} bytes)"
        )
    if where.unused_bits:
        np.left_shift(out, where.unused_bits, out=out)
        np.right_shift(out, where.unused_bits, out=out)


def _decode(path: Path, limit: int = MAX_IMAGE_BYTES) -> NDArray[Any]:
    ds = _read_full(path, decode=_PIXEL_TAGS)
    if "PixelData" not in ds:
        raise SeriesError(f"{path}: no pixel data")
    _check_declared_size(ds, path, limit)
    try:
        with _native_stderr_captured():
            return np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom's decoders raise many types for damaged data
        reason = " ".join(str(exc).split())  # one line, whatever the plugins said
        raise SeriesError(f"{path}: cannot decode pixel data ({reason})") from exc


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Keep what native decoders print on file descriptor 2 (openjpeg's complaints
    about damaged data) off the user's terminal: the exception says it."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _check_declared_size(ds: Any, path: Path, limit: int) -> None:
    """Refuse absurd image sizes before any decoder allocates them (RELIABILITY R21)."""
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        declared = (
            int(ds.Rows) * int(ds.Columns) * frames * int(ds.get("SamplesPerPixel") or 1)
            * max(int(ds.BitsAllocated), 8) // 8
        )  # fmt: skip
    except (AttributeError, TypeError, ValueError) as exc:
        raise SeriesError(f"{path}: cannot decode pixel data (image size unknown: {exc})") from None
    if declared > limit:
        raise SeriesError(
            f"{path}: declared image size {declared / 2**30:,.1f} GiB exceeds the limit "
            f"({limit / 2**30:g} GiB)"
        )
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    stored = len(ds.PixelData)
    if syntax in _NATIVE_SYNTAXES and stored < declared:
        raise SeriesError(
            f"{path}: pixel data holds {stored} bytes, the header declares {declared}"
        )


def _check_duplicate(kept: NDArray[Any], other: NDArray[Any], a: SliceInfo, b: SliceInfo) -> None:
    if not np.array_equal(kept, other):
        raise SeriesError(
            f"{a.path} and {b.path} lie at the same position but hold different pixels"
        )


def _row(info: SliceInfo, index: int) -> dict[str, Any]:
    return {
        "k": index,
        "file": str(info.path),
        "frame": info.frame,
        "position": list(info.position) if info.position else None,
        "instance_number": info.instance_number,
        "acquisition_time": info.acquisition_time,
        "rescale_slope": info.slope,
        "rescale_intercept": info.intercept,
    }


# ---------------------------------------------------------------------------
# Window / level
# ---------------------------------------------------------------------------

PRESETS: Final[dict[str, tuple[float, float]]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
}
"""Named CT windows as (center, width) in Hounsfield units."""


@dataclass(frozen=True)
class Window:
    """A VOI window: center and width in modality units, and where it came from."""

    center: float
    width: float
    name: str = ""
    function: str = "LINEAR"


def file_windows(ds: Any) -> list[Window]:
    """Every window a dataset defines (multi-valued WindowCenter/Width), named by
    WindowCenterWidthExplanation when present."""
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return []
    centers = list(centers) if isinstance(centers, Sequence | MultiValue) else [centers]
    widths = list(widths) if isinstance(widths, Sequence | MultiValue) else [widths]
    names = ds.get("WindowCenterWidthExplanation") or []
    names = [names] if isinstance(names, str) else list(names)
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
    return [
        Window(float(c), float(w), names[i] if i < len(names) else f"window {i + 1}", function)
        for i, (c, w) in enumerate(zip(centers, widths, strict=False))
    ]


def window_to_uint8(values: NDArray[Any], window: Window) -> NDArray[np.uint8]:
    """Apply a window to modality values, giving 0..255 grey levels.

    pydicom's :func:`~pydicom.pixels.apply_windowing` does the VOI function
    (LINEAR, LINEAR_EXACT, SIGMOID); we only ask it for an 8-bit output range.
    """
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8
    voi.PixelRepresentation = 0
    voi.WindowCenter = window.center
    voi.WindowWidth = max(window.width, 1.0)
    voi.VOILUTFunction = window.function
    out = apply_windowing(np.asarray(values, dtype=np.float64), voi)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def colour_to_uint8(pixels: NDArray[Any]) -> NDArray[np.uint8]:
    """Colour samples (RGB, as pydicom decodes them) as 0..255: 8-bit data as it is,
    deeper data scaled by its maximum."""
    if pixels.dtype == np.uint8:
        return pixels
    high = float(pixels.max()) or 1.0
    return np.round(pixels / high * 255).astype(np.uint8)


def full_range_window(values: NDArray[Any]) -> Window:
    """A window spanning the values' whole range (when the file names none)."""
    low, high = float(np.min(values)), float(np.max(values))
    return Window((low + high) / 2, max(high - low, 1.0), "full range")
