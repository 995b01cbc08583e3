"""Diffusion: b-values and gradient directions per volume, and FSL's bvec convention.

Gradient directions are kept in patient coordinates (LPS, unit vectors, zero for
b = 0). :func:`fsl_bvecs` expresses them in the voxel axes of an image, as FSL
expects ``.bvec`` files (and dcm2niix writes them): the x component is negated
when the voxel-to-world matrix has a positive determinant (FSL assumes
radiological storage).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dicomlens.errors import SeriesError
from dicomlens.series import GeometryReport, SliceInfo

__all__ = ["B_ZERO", "fsl_bvecs", "fsl_text", "volume_gradients"]

B_ZERO: Final = 0.0
"""b-values up to this (s/mm2) count as b = 0: no direction (dcm2niix keeps the
direction of any b above 0, such as Philips' b = 0.001 volumes)."""
_DERIVED: Final = frozenset({"DERIVED", "ADC", "TRACEW", "TRACE", "FA"})
"""ImageType values of diffusion maps (dcm2niix's test for derived images)."""
_LOW_B: Final = 50.0
"""b-values (s/mm2) up to which an image with no direction is taken as b = 0, as dcm2niix
takes them (UIH writes b = 1.25, Philips b = 0.001 for them)."""
_SAME_B: Final = 1.0
_SAME_DIRECTION: Final = 1e-3
_LPS_TO_RAS: Final = np.array([-1.0, -1.0, 1.0])


def volume_gradients(
    ordered: Sequence[SliceInfo],
    volume_numbers: Sequence[int],
    volumes: int,
    report: GeometryReport,
) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """The b-value and direction (LPS) of each volume: ``(None, None)`` when no volume
    is diffusion weighted (GE writes b = 0 in every fMRI image), ``(bvals, None)``
    when some weighted volume has no known direction (said in ``report``'s notes).

    Raises
    ------
    SeriesError
        The slices of one volume disagree about their b-value or direction.
    """
    if not any((s.b_value or 0.0) > B_ZERO for s in ordered):
        return None, None
    derived = _DERIVED & {part for value in ordered[0].image_type for part in value.split("_")}
    if derived:  # maps computed from a DWI: their b-values are not a scheme to fit
        report.notes.append(
            f"derived diffusion images ({', '.join(sorted(derived))}): no b-values or directions"
        )
        return None, None
    bvals = np.full(volumes, np.nan)
    directions = np.zeros((volumes, 3))
    for info, number in zip(ordered, volume_numbers, strict=True):
        b_value = info.b_value or 0.0
        direction = _unit(info.gradient) if b_value > B_ZERO else np.zeros(3)
        if np.isnan(bvals[number]):
            bvals[number], directions[number] = b_value, direction
        elif (
            abs(bvals[number] - b_value) > _SAME_B
            or np.abs(directions[number] - direction).max() > _SAME_DIRECTION
        ):
            raise SeriesError(
                f"{info.path}: volume {number} mixes diffusion b-values or directions "
                f"(b={bvals[number]:g} and b={b_value:g}); the volumes cannot be told apart"
            )
    bvals = np.nan_to_num(bvals)
    weighted = bvals > _LOW_B  # lower b-values without a direction are b = 0 images
    unknown = np.flatnonzero(weighted & (np.linalg.norm(directions, axis=1) == 0))
    if unknown.size and volumes == 1:  # one isotropic image: no scheme to write
        report.notes.append("isotropic diffusion image: no b-values or directions written")
        return None, None
    if unknown.size:  # no bvec rather than a wrong one
        report.notes.append(
            f"diffusion direction unknown for volume(s) {', '.join(map(str, unknown[:5]))}"
            f"{' ...' if unknown.size > 5 else ''}: b-values kept, no gradient directions"
        )
        return bvals, None
    return bvals, directions


def _unit(gradient: tuple[float, float, float] | None) -> NDArray[np.float64]:
    vector = np.zeros(3) if gradient is None else np.array(gradient, dtype=float)
    length = float(np.linalg.norm(vector))
    return vector / length if length > 0 else vector


def fsl_bvecs(
    gradients: NDArray[np.float64], affine_ras: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Directions (volumes x 3, LPS) in the voxel axes of an image with this RAS affine,
    FSL's convention: 3 x volumes, x negated when the determinant is positive."""
    lengths = np.linalg.norm(affine_ras[:3, :3], axis=0)
    axes = affine_ras[:3, :3] / np.where(lengths > 0, lengths, 1.0)
    if not np.isfinite(axes).all() or abs(np.linalg.det(axes)) < 1e-6:
        raise SeriesError("the image axes are degenerate: no gradient directions in voxel axes")
    voxel = np.linalg.solve(axes, (gradients * _LPS_TO_RAS).T)
    lengths = np.linalg.norm(voxel, axis=0)
    voxel = np.divide(voxel, lengths, out=np.zeros_like(voxel), where=lengths > 0)
    if np.linalg.det(axes) > 0:
        voxel[0] = -voxel[0]
    result: NDArray[np.float64] = voxel + 0.0  # no negative zeros in the text
    return result


def fsl_text(
    bvals: NDArray[np.float64], bvecs: NDArray[np.float64] | None
) -> tuple[str, str | None]:
    """The text of a ``.bval`` file (one line) and a ``.bvec`` file (three lines)."""
    bval = " ".join(f"{b:g}" for b in np.round(bvals, 6)) + "\n"
    if bvecs is None:
        return bval, None
    bvec = "".join(" ".join(f"{v:.6g}" for v in row) + "\n" for row in np.round(bvecs, 6))
    return bval, bvec
