"""Mosaics (Siemens mosaics, UIH grids): each file is one volume whose slices are tiles
of one image.

The number of tiles and the geometry come from the first file: a Siemens mosaic's CSA
header through nibabel's DICOM wrappers, a UIH grid's own list of tile positions; every
file is unpacked with numpy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomlens import vendors
from dicomlens.errors import SeriesError
from dicomlens.reading import plain_reason
from dicomlens.series import GeometryReport, SliceInfo
from dicomlens.volume.diffusion import volume_gradients
from dicomlens.volume.model import Volume, slice_row
from dicomlens.volume.pixels import (
    Allocator,
    Decoder,
    check_declared_size,
    read_full,
    rescale_planes,
)

__all__ = ["load_mosaics", "mosaic_geometry", "mosaic_grid", "mosaic_side", "unpack_mosaic"]

_READ_THREADS: Final = 4


def load_mosaics(
    ordered: Sequence[SliceInfo],
    report: GeometryReport,
    *,
    rescale: bool,
    into: np.dtype[Any] | None,
    max_image_bytes: int,
    allocate: Allocator,
) -> Volume:
    """One volume per mosaic file, in the given order: 3-D for one file, 4-D for more.
    The slices are in protocol order: tiles saved head to foot (H>>F) are reversed,
    as dcm2niix reverses them."""
    first = ordered[0]
    affine, count, reverse = mosaic_geometry(first, max_image_bytes)
    decoder = Decoder(max_image_bytes)
    head = unpack_mosaic(decoder.pixels(first), count, first, reverse=reverse)
    shape = head.shape[1:]
    planes = allocate((len(ordered) * count, *shape), head.dtype)
    planes[:count] = head

    def fill(number: int) -> None:
        info = ordered[number]
        if info.mosaic_slices not in (None, count):
            raise SeriesError(
                f"{info.path}: a mosaic of {info.mosaic_slices} slices among mosaics of {count}"
            )
        tiles = unpack_mosaic(decoder.pixels(info), count, info, reverse=reverse)
        if tiles.shape[1:] != shape or tiles.dtype != head.dtype:
            raise SeriesError(f"{info.path}: mosaic {tiles.shape} {tiles.dtype} differs from "
                              f"{head.shape} {head.dtype}")  # fmt: skip
        planes[number * count : (number + 1) * count] = tiles

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        for job in [pool.submit(fill, number) for number in range(1, len(ordered))]:
            job.result()
    by_plane = {n: ordered[n // count] for n in range(planes.shape[0])}
    if rescale:
        planes = rescale_planes(planes, by_plane)
        if into is not None:
            planes = planes.astype(into, copy=False)
    elif into is not None:
        planes = planes.astype(into)
    report.slices = count
    report.notes.append(f"mosaic of {count} slices unpacked")
    if reverse:
        report.notes.append("mosaic saved H>>F: its slices reversed into protocol order")
    if len(ordered) > 1:
        array = planes.reshape(len(ordered), count, *shape).transpose(3, 2, 1, 0)
    else:
        array = planes.transpose(2, 1, 0)
    table = [slice_row(info, 0, number) for number, info in enumerate(ordered)]
    bvals, gradients = volume_gradients(ordered, range(len(ordered)), len(ordered), report)
    return Volume(array, affine, report, rescale, table, bvals, gradients)


def mosaic_side(count: int) -> int:
    """Tiles along each side of a mosaic of ``count`` slices (Siemens fills a square)."""
    return math.ceil(math.sqrt(count))


def mosaic_grid(info: SliceInfo, count: int | None = None) -> tuple[int, int]:
    """Rows and columns of tiles of a mosaic: a square for Siemens, only the rows it
    needs for UIH (:attr:`~dicomlens.series.SliceInfo.mosaic_rows`)."""
    side = mosaic_side(count or info.mosaic_slices or 1)
    return (info.mosaic_rows or side), side


def unpack_mosaic(
    plane: NDArray[Any], count: int, info: SliceInfo, *, reverse: bool = False
) -> NDArray[Any]:
    """The ``count`` tiles of a mosaic image as (slice, row, column), row by row, or
    from the last tile with ``reverse`` (a view of the image: nothing is copied)."""
    across, side = mosaic_grid(info, count)
    rows, columns = plane.shape[0] // across, plane.shape[1] // side
    if plane.ndim != 2 or rows * across != plane.shape[0] or columns * side != plane.shape[1]:
        raise SeriesError(
            f"{info.path}: a {plane.shape} image cannot hold a mosaic of {count} slices"
        )
    grid = plane.reshape(across, rows, side, columns).swapaxes(1, 2)
    tiles = grid.reshape(across * side, rows, columns)[:count]
    return tiles[::-1] if reverse else tiles


def mosaic_geometry(info: SliceInfo, limit: int) -> tuple[NDArray[np.float64], int, bool]:
    """The affine (column, row, slice to LPS) of a mosaic file's slices in protocol
    order, their count, and whether that order reverses the tiles
    (:func:`dicomlens.vendors.mosaic_head_first`)."""
    if info.mosaic_rows is not None:
        return _grid_geometry(info, limit)
    with warnings.catch_warnings():  # nibabel calls its readers experimental on import;
        warnings.simplefilter("ignore")  # the unpacking is checked against dcm2niix in our tests
        from nibabel.nicom import dicomwrappers  # heavy: only for mosaics

        ds = read_full(info.path)
        check_declared_size(ds, info.path, limit)
        try:
            wrapper = dicomwrappers.wrapper_from_data(ds)  # type: ignore[no-untyped-call]
            affine = np.array(wrapper.affine, dtype=float)
            count = int(wrapper.n_mosaic)
        except Exception as exc:  # nibabel raises many types for odd CSA headers
            raise SeriesError(
                f"{info.path}: cannot unpack the mosaic ({plain_reason(exc)})"
            ) from exc
    expected = np.array(info.orientation[:3]) * info.pixel_spacing[1]  # type: ignore[index]
    if not np.allclose(affine[:3, 0], expected, atol=1e-3):  # nibabel gave (row, column, slice)
        affine[:, [0, 1]] = affine[:, [1, 0]]
    reverse = vendors.mosaic_head_first(vendors.siemens_csa(ds))
    if reverse:  # the last tile first: its position is the origin, the step turned round
        affine[:3, 3] = affine[:3, :] @ np.array([0.0, 0.0, count - 1.0, 1.0])
        affine[:3, 2] = -affine[:3, 2]
    return affine, count, reverse


def _grid_geometry(info: SliceInfo, limit: int) -> tuple[NDArray[np.float64], int, bool]:
    """A UIH grid's affine: its tiles' own positions (0065,xx51), first to last."""
    ds = read_full(info.path)
    check_declared_size(ds, info.path, limit)
    positions = vendors.uih_tile_positions(ds)
    if len(positions) != info.mosaic_slices or info.orientation is None or len(positions) < 2:
        raise SeriesError(f"{info.path}: the grid's tiles do not all give their position")
    spacing = info.pixel_spacing or (1.0, 1.0)
    affine = np.eye(4)
    affine[:3, 0] = np.array(info.orientation[:3]) * spacing[1]
    affine[:3, 1] = np.array(info.orientation[3:]) * spacing[0]
    affine[:3, 2] = (np.array(positions[-1]) - positions[0]) / (len(positions) - 1)
    affine[:3, 3] = positions[0]
    return affine, len(positions), False
