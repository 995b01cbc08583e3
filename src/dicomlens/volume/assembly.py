"""Volumes: stack sorted slices into a 3-D or 4-D array with its affine.

Axis order is ``(i, j, k[, t])`` = (column, row, slice[, volume]), the order of the
affine and of NIfTI: ``volume.array[i, j, k]`` is the voxel at
``volume.affine_lps @ (i, j, k, 1)``. One 2-D slice as rows x columns is
``volume.array[:, :, k].T`` (``volume.array[:, :, k, t].T`` in a 4-D volume).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from dicomlens.errors import SeriesError
from dicomlens.series import (
    GeometryReport,
    NativePixels,
    SliceInfo,
    affine_lps,
    precise_values,
    slice_step,
)
from dicomlens.volume.diffusion import volume_gradients
from dicomlens.volume.model import Volume, slice_row
from dicomlens.volume.mosaic import load_mosaics
from dicomlens.volume.pixels import (
    MAX_IMAGE_BYTES,
    RGB,
    Allocator,
    Decoder,
    as_plane,
    place,
    read_native,
    rescale_planes,
    zeros,
)

__all__ = ["load_volume"]

_READ_THREADS: Final = 4


def load_volume(
    ordered: Sequence[SliceInfo],
    report: GeometryReport,
    *,
    rescale: bool = True,
    dtype: npt.DTypeLike | None = None,
    strict: bool = False,
    allow_incomplete: bool = False,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    allocate: Allocator | None = None,
    philips_precise: bool = True,
) -> Volume:
    """Read the pixels of sorted slices into a :class:`Volume`.

    Parameters
    ----------
    ordered
        Slices as :func:`dicomlens.series.sort_slices` ordered them (volume after
        volume for a 4-D series).
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
    allow_incomplete
        Convert a 4-D series some of whose positions lack a slice (left as zeros,
        and reported) or have one too many (left out, and reported).
    max_image_bytes
        Largest decoded image of one file (all its frames) accepted; larger
        declarations are refused before anything is decoded (4 GiB by default).
    philips_precise
        With ``rescale``, Philips MR images that carry a private scale slope give
        Philips' floating-point values, as dcm2niix writes them by default
        (:func:`dicomlens.series.precise_values`); False gives the display values.
    allocate
        Gives the zero-filled planes the pixels are read into (None: ``numpy.zeros``);
        the volume's array is a view of them unless a rescale changes the
        type.

    Raises
    ------
    SeriesError
        A slice cannot be read or decoded, slices at one position differ, a 4-D
        series is incomplete, or its images are neither grey nor 8-bit RGB (colour
        series load as :data:`~dicomlens.volume.pixels.RGB` voxels, not rescaled).
    """
    if not ordered:
        raise SeriesError("no slices to load")
    where = ordered[0].path.parent
    if strict and (report.gaps or report.duplicates or not report.uniform):
        found = [n for n in report.notes if n.startswith(("gap", "duplicate", "irregular"))]
        problem = (
            found[0] if found else f"irregular spacing (up to {report.max_deviation_mm} mm off)"
        )
        raise SeriesError(f"{where}: {problem} (strict)")
    if report.incomplete and not allow_incomplete:
        raise SeriesError(
            f"{where}: incomplete 4-D series: {report.incomplete[0]}"
            + (f" (and {len(report.incomplete) - 1} more)" if len(report.incomplete) > 1 else "")
            + "; --allow-incomplete converts it with the gaps left as zeros"
        )
    into = None if dtype is None else np.dtype(dtype)
    allocate = allocate or zeros
    precise = rescale and philips_precise and any(s.scale_slope for s in ordered)
    if precise:
        ordered = [precise_values(s) for s in ordered]
        report.notes.append(
            "Philips floating-point values: (stored x RescaleSlope + RescaleIntercept) / "
            "(RescaleSlope x scale slope (2005,xx0E)), as dcm2niix writes them"
        )
    if ordered[0].mosaic:
        return load_mosaics(ordered, report, rescale=rescale, into=into,
                            max_image_bytes=max_image_bytes, allocate=allocate)  # fmt: skip
    for problem in report.incomplete:  # allowed: said, never silent
        report.notes.append(f"incomplete: {problem}; missing slices are zeros, extra ones left out")
    volumes = report.volumes
    positions, volume_numbers = _slice_indexes(ordered, report)
    depth = max(positions) + 1
    indexes = [v * depth + k for k, v in zip(positions, volume_numbers, strict=True)]
    decoder = Decoder(max_image_bytes)
    planes, filled = _stack(ordered, indexes, volumes * depth, into=into, rescale=rescale,
                            decoder=decoder, allocate=allocate)  # fmt: skip
    missing = planes.shape[0] - len(filled)
    if missing:
        report.notes.append(f"{missing} missing slice(s) left as zeros so that the affine holds")
    if rescale and into is None and planes.dtype != RGB:
        planes = rescale_planes(
            planes, {index: ordered[number] for index, number in filled.items()}
        )
    table = [slice_row(s, k, v) for s, k, v in zip(ordered, positions, volume_numbers, strict=True)]
    first_volume = [s for s, v in zip(ordered, volume_numbers, strict=True) if v == 0]
    # The slices are contiguous rows x columns planes; the (i, j, k[, t]) view of that
    # memory is Fortran-ordered, as NIfTI stores it.
    if volumes > 1:
        array = planes.reshape(volumes, depth, *planes.shape[1:]).transpose(3, 2, 1, 0)
    else:
        array = planes.transpose(2, 1, 0)
    bvals, gradients = volume_gradients(ordered, volume_numbers, volumes, report)
    return Volume(array, affine_lps(first_volume), report, rescale, table, bvals, gradients,
                  precise)  # fmt: skip


def _stack(
    ordered: Sequence[SliceInfo],
    indexes: list[int],
    count: int,
    *,
    into: np.dtype[Any] | None,
    rescale: bool,
    decoder: Decoder,
    allocate: Allocator,
) -> tuple[NDArray[Any], dict[int, int]]:
    """Pixel values as ``count`` (slice, row, column) planes, each slice read once.

    Without ``into`` the planes hold stored values in their own type and
    uncompressed slices are read straight into their plane; with ``into`` each
    slice is converted (and rescaled, if asked) as it is placed. A few threads
    read the uncompressed slices (file reads release the GIL); pydicom decodes
    the others. Returns the planes and, per filled plane, the slice number in it.
    """
    first = as_plane(decoder.pixels(ordered[0]), ordered[0])
    colour = first.dtype == RGB
    if colour and into is not None:
        raise SeriesError(f"{ordered[0].path}: a colour series loads as RGB, not as {into}")
    planes = allocate((count, *first.shape), np.dtype(into or first.dtype))
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
        pixels = first if number == 0 else as_plane(decoder.pixels(info), info)
        if pixels.shape != first.shape or pixels.dtype.names != first.dtype.names:
            raise SeriesError(f"{info.path}: image size {pixels.shape} differs from {first.shape}")
        place(planes[index], pixels, info, rescale=convert)

    def read_direct(info: SliceInfo, native: NativePixels, index: int) -> None:
        plane = planes[index]
        if not convert and plane.dtype == native.dtype and plane.flags.c_contiguous:
            read_native(info, native, out=plane)  # straight in (not into a flipped map)
            return
        buffer = np.empty(first.shape, dtype=native.dtype)
        read_native(info, native, out=buffer)
        place(plane, buffer, info, rescale=convert)

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        for job in [pool.submit(read_direct, *task) for task in direct]:
            job.result()
    for index, number in filled.items():
        if ordered[number].rows_reversed:  # GE's reversed-polarity images, stored upside down
            planes[index] = planes[index][::-1].copy()
    for info, index in repeated:
        other = as_plane(decoder.pixels(info), info)
        if info.rows_reversed:
            other = other[::-1]
        _check_duplicate(planes[index], other, ordered[filled[index]], info)
    return planes, filled


def _slice_indexes(
    ordered: Sequence[SliceInfo], report: GeometryReport
) -> tuple[list[int], list[int]]:
    """Index along k and volume number of each slice.

    In a 3-D series gaps leave room (when every step is a whole multiple of the
    usual one) and duplicates share an index; irregular steps are taken as they
    come. In a 4-D series k is the rank of the slice's position and the volume
    number counts the slices met before at that position.
    """
    count = len(ordered)
    step = slice_step(ordered) if report.volumes == 1 else None
    normal = ordered[0].normal
    if report.sorted_by != "position" or normal is None:
        return list(range(count)), [0] * count
    distances = np.array([s.position for s in ordered], dtype=float) @ normal
    if report.volumes > 1:
        levels = _levels(np.sort(distances))
        positions = [int(np.argmin(np.abs(levels - d))) for d in distances]
        seen: dict[int, int] = {}
        numbers = []
        for k in positions:
            numbers.append(seen.get(k, 0))
            seen[k] = numbers[-1] + 1
        return positions, numbers
    if step is None:
        return [0] * count, [0] * count  # all at one position: duplicates
    if report.steps_mm:  # irregular: one index per distinct position, as acquired
        moves = np.diff(distances) > 1e-2
        return [0, *np.cumsum(moves).tolist()], [0] * count
    direction = step / float(np.dot(step, step))
    positions_mm = np.array([s.position for s in ordered], dtype=float)
    return [round(float(d)) for d in (positions_mm - positions_mm[0]) @ direction], [0] * count


def _levels(distances: NDArray[np.float64]) -> NDArray[np.float64]:
    """The distinct positions among sorted distances (closer than 0.01 mm: one)."""
    keep = np.concatenate(([True], np.diff(distances) > 1e-2))
    return distances[keep]


def _check_duplicate(kept: NDArray[Any], other: NDArray[Any], a: SliceInfo, b: SliceInfo) -> None:
    if not np.array_equal(kept, other):
        raise SeriesError(
            f"{a.path} and {b.path} lie at the same position but hold different pixels"
        )
