"""Pixel volumes: stack sorted slices into a 3-D array with its affine.

Axis order is ``(i, j, k)`` = (column, row, slice), the order of the affine and
of NIfTI: ``volume.array[i, j, k]`` is the voxel at
``volume.affine_lps @ (i, j, k, 1)``. One 2-D slice as rows x columns is
``volume.array[:, :, k].T``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_windowing

from dicomlens.errors import FileError, SeriesError
from dicomlens.reading import read
from dicomlens.series import GeometryReport, SliceInfo, affine_lps, lps_to_ras, slice_step

__all__ = [
    "PRESETS",
    "Volume",
    "Window",
    "file_windows",
    "full_range_window",
    "load_volume",
    "window_to_uint8",
]

_INT16: Final = np.iinfo(np.int16)


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
    ordered: Sequence[SliceInfo], report: GeometryReport, *, rescale: bool = True
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

    Raises
    ------
    SeriesError
        A slice cannot be read or decoded, slices at one position differ, the
        series is a Siemens mosaic or holds colour images.
    """
    if not ordered:
        raise SeriesError("no slices to load")
    if ordered[0].mosaic:
        if len({s.path for s in ordered}) != 1:
            raise SeriesError(
                f"{ordered[0].path.parent}: each Siemens mosaic file is a volume of its own; "
                "load the files one at a time"
            )
        return _mosaic_volume(ordered[0], report, rescale=rescale)
    positions = _slice_indexes(ordered, report)
    depth = max(positions) + 1
    stored = _read_pixels(ordered)
    first = stored[0]
    if first.ndim != 2:
        raise SeriesError(f"{ordered[0].path}: colour or multi-sample images do not form a volume")
    slopes = np.array([s.slope for s in ordered])
    intercepts = np.array([s.intercept for s in ordered])
    dtype = _output_dtype(stored, slopes, intercepts) if rescale else first.dtype
    array = np.zeros((first.shape[1], first.shape[0], depth), dtype=dtype)
    filled: dict[int, int] = {}
    for number, (index, pixels) in enumerate(zip(positions, stored, strict=True)):
        if pixels.shape != first.shape:
            raise SeriesError(
                f"{ordered[number].path}: image size {pixels.shape} differs from {first.shape}"
            )
        values = pixels * slopes[number] + intercepts[number] if rescale else pixels
        if index in filled:
            _check_duplicate(array[:, :, index], values.T, ordered[filled[index]], ordered[number])
            continue
        array[:, :, index] = values.T
        filled[index] = number
    missing = depth - len(filled)
    if missing:
        report.notes.append(f"{missing} missing slice(s) left as zeros so that the affine holds")
    table = [_row(s, index) for s, index in zip(ordered, positions, strict=True)]
    return Volume(array, affine_lps(ordered), report, rescale, table)


def _mosaic_volume(info: SliceInfo, report: GeometryReport, *, rescale: bool) -> Volume:
    """Unpack a Siemens mosaic with nibabel's DICOM wrappers (CSA header parsing)."""
    with warnings.catch_warnings():  # nibabel calls its readers experimental on import;
        warnings.simplefilter("ignore")  # the unpacking is checked against dcm2niix in our tests
        from nibabel.nicom import dicomwrappers  # heavy: only for mosaics

    ds = _read_full(info.path)
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


def _read_full(path: Path) -> Any:
    try:
        return read(path)
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


def _read_pixels(ordered: Sequence[SliceInfo]) -> list[NDArray[Any]]:
    frames: dict[Path, NDArray[Any]] = {}
    out = []
    for info in ordered:
        if info.path not in frames:
            frames[info.path] = _decode(info.path)
        pixels = frames[info.path]
        out.append(pixels[info.frame] if info.frame is not None and pixels.ndim == 3 else pixels)
    return out


def _decode(path: Path) -> NDArray[Any]:
    ds = _read_full(path)
    if "PixelData" not in ds:
        raise SeriesError(f"{path}: no pixel data")
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom's decoders raise many types for damaged data
        raise SeriesError(f"{path}: cannot decode pixel data ({exc})") from exc


def _output_dtype(
    stored: Sequence[NDArray[Any]], slopes: NDArray[np.float64], intercepts: NDArray[np.float64]
) -> np.dtype[Any]:
    integral = np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts))
    if not integral or stored[0].dtype.kind == "f":
        return np.dtype(np.float32)
    lows = [float(p.min()) * s + i for p, s, i in zip(stored, slopes, intercepts, strict=True)]
    highs = [float(p.max()) * s + i for p, s, i in zip(stored, slopes, intercepts, strict=True)]
    extremes = lows + highs
    if _INT16.min <= min(extremes) and max(extremes) <= _INT16.max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


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


def full_range_window(values: NDArray[Any]) -> Window:
    """A window spanning the values' whole range (when the file names none)."""
    low, high = float(np.min(values)), float(np.max(values))
    return Window((low + high) / 2, max(high - low, 1.0), "full range")
