"""Resample a sheared or irregularly spaced volume onto equidistant slices normal to
the image plane (dcm2niix's ``_Tilt_Eq`` output).

Each output slice lies on the slice normal through the first slice, one smallest
step apart (at most twice as many slices as acquired, as dcm2niix does). Its value
at a pixel is interpolated linearly in patient space: in-plane between the pixels
of the two acquired slices it lies between (their planes are parallel to it, only
shifted), then along the normal between those two slices. The output plane grows
to hold every acquired slice (a tilt moves each one aside of the first, as dcm2niix's
output grows its rows), the space no slice covers filled with the lowest value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomlens.errors import SeriesError
from dicomlens.volume.model import Volume

__all__ = ["resample_equidistant"]

_SAME_MM: Final = 1e-2
_SAME_PIXEL: Final = 1e-3
_SHEARED_NOTE: Final = "gantry tilt"
"""The start of the note that a tilted series' affine is sheared (no longer true)."""


def resample_equidistant(volume: Volume) -> Volume:
    """The volume on equidistant slices along the slice normal, tilt removed.

    Raises
    ------
    SeriesError
        The slices have no positions, or fewer than two distinct ones.
    """
    positions = _positions(volume)
    axes = volume.affine_lps[:3, :3]
    row_step, column_step = axes[:, 0], axes[:, 1]
    normal = np.cross(row_step, column_step)
    normal /= np.linalg.norm(normal)
    depths = positions @ normal
    steps = np.diff(depths)
    if len(depths) < 2 or not np.all(steps > _SAME_MM):
        raise SeriesError("resampling needs slices at two or more distinct, sorted positions")
    spacing = float(steps.min())
    extent = float(depths[-1] - depths[0])
    count = round(extent / spacing) + 1
    if count > 2 * len(depths):
        count = 2 * len(depths)
        spacing = extent / (count - 1)
    in_plane = np.linalg.pinv(np.stack([row_step, column_step], axis=1))  # mm -> (i, j)
    # where each acquired slice lies in the plane of the first (pixels): the output
    # plane grows to hold them all, so that nothing the tilt moved aside is cut off
    offsets = np.array([in_plane @ (p - positions[0] - (d - depths[0]) * normal)
                        for p, d in zip(positions, depths, strict=True)])  # fmt: skip
    low = np.floor(np.minimum(offsets.min(axis=0), 0.0) + _SAME_PIXEL).astype(int)
    high = np.ceil(np.maximum(offsets.max(axis=0), 0.0) - _SAME_PIXEL).astype(int)
    origin = positions[0] + low[0] * row_step + low[1] * column_step
    data = volume.array if volume.array.ndim == 4 else volume.array[..., np.newaxis]
    plane_shape = (data.shape[0] + high[0] - low[0], data.shape[1] + high[1] - low[1])
    fill = data.min()
    out = np.empty((*plane_shape, count, data.shape[3]), dtype=np.float64)
    table = []
    for target in range(count):
        depth = depths[0] + target * spacing
        centre = origin + (depth - depths[0]) * normal
        upper = int(np.clip(np.searchsorted(depths, depth - 1e-9), 1, len(depths) - 1))
        lower = upper - 1
        weight = (depth - depths[lower]) / (depths[upper] - depths[lower])
        for source, share in ((lower, 1.0 - weight), (upper, weight)):
            shift = in_plane @ (centre - positions[source])
            plane = _shifted(data[:, :, source], shift, fill, plane_shape)
            if source == lower:
                out[:, :, target] = share * plane
            else:
                out[:, :, target] += share * plane
        table.append({"k": target, "position": [round(float(v), 6) for v in centre]})
    array = out if volume.array.ndim == 4 else out[..., 0]
    if volume.array.dtype.kind in "iu":
        info = np.iinfo(volume.array.dtype)
        array = np.clip(np.round(array), info.min, info.max).astype(volume.array.dtype)
    else:
        array = array.astype(volume.array.dtype)
    affine = volume.affine_lps.copy()
    affine[:3, 2] = normal * spacing
    affine[:3, 3] = origin
    notes = [n for n in volume.report.notes if not n.startswith(_SHEARED_NOTE)]
    report = dataclasses.replace(volume.report, notes=notes)
    grown = "" if plane_shape == data.shape[:2] else (
        f"; the plane grown to {plane_shape[0]} x {plane_shape[1]} to keep what the tilt moved"
    )
    report.notes.append(
        f"resampled to {count} equidistant slices {spacing:.4g} mm apart along the slice normal "
        f"(tilt {volume.report.tilt_degrees:g} degrees removed; linear interpolation{grown})"
    )
    return dataclasses.replace(volume, array=array, affine_lps=affine, report=report, slices=table)


def _positions(volume: Volume) -> NDArray[np.float64]:
    """The position of each k of the first volume, from the slice table."""
    found: dict[int, list[float]] = {}
    for row in volume.slices:
        if row.get("volume", 0) == 0 and row.get("position") is not None:
            found.setdefault(int(row["k"]), row["position"])
    depth = volume.array.shape[2]
    if sorted(found) != list(range(depth)):
        raise SeriesError("resampling needs the position of every slice (some are missing)")
    return np.array([found[k] for k in range(depth)], dtype=np.float64)


def _shifted(
    plane: NDArray[Any], shift: NDArray[np.float64], fill: Any, shape: tuple[int, int]
) -> NDArray[np.float64]:
    """A ``shape`` plane (i, j[, t]) of ``plane`` sampled at (i + shift[0], j + shift[1]),
    bilinearly; ``fill`` outside it."""
    whole = np.floor(shift).astype(int)
    part = shift - whole
    result = np.zeros((*shape, *plane.shape[2:]), dtype=np.float64)
    for di, wi in ((0, 1.0 - part[0]), (1, part[0])):
        for dj, wj in ((0, 1.0 - part[1]), (1, part[1])):
            if wi * wj > 0:
                moved = _translated(plane, whole[0] + di, whole[1] + dj, fill, shape)
                result += wi * wj * moved
    return result


def _translated(
    plane: NDArray[Any], di: int, dj: int, fill: Any, shape: tuple[int, int]
) -> NDArray[np.float64]:
    """A ``shape`` plane of ``plane`` read at (i + di, j + dj), ``fill`` where that falls
    outside it."""
    out = np.full((*shape, *plane.shape[2:]), float(fill), dtype=np.float64)
    rows, columns = plane.shape[0], plane.shape[1]
    i_from, i_to = max(0, -di), min(shape[0], rows - di)
    j_from, j_to = max(0, -dj), min(shape[1], columns - dj)
    if i_from < i_to and j_from < j_to:
        out[i_from:i_to, j_from:j_to] = plane[i_from + di : i_to + di, j_from + dj : j_to + dj]
    return out
