"""3-D acquisitions written the way dcm2niix writes them: turned to the voxel axes
closest to RAS, the origin at the left-posterior-inferior corner (its nii_setOrtho),
instead of only having their rows flipped.

dcm2niix does this for MR volumes acquired in 3-D (MRAcquisitionType 3D) that are not
EPI, have more than one slice, equidistant ones, and one volume: so that a T1 or
FLAIR opens upright in any viewer. The voxels and the affine still describe the same
image; only the order in which the voxels are stored changes.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicomlens import vendors
from dicomlens.series import GeometryReport

__all__ = ["closest_to_ras", "turned_to_ras"]

_PERMUTATIONS: Final = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
"""Output axis of input axes 0, 1 and 2, in the order dcm2niix tries them."""


def turned_to_ras(header: Dataset, report: GeometryReport, depth: int) -> bool:
    """Whether dcm2niix turns this volume to RAS: an MR 3-D acquisition, not EPI, of
    one volume of several equidistant slices."""
    acquisition = str(header.get("MRAcquisitionType") or "")
    scanning = header.get("ScanningSequence") or ""
    sequence = "\\".join(scanning) if not isinstance(scanning, str) else scanning
    echo_planar = "EP" in sequence or _says_echo_planar(header)
    return (
        header.get("Modality") == "MR"
        and acquisition.upper().startswith("3D")
        and not echo_planar
        and report.volumes == 1
        and depth > 1
        and report.uniform
    )


def _says_echo_planar(header: Dataset) -> bool:
    """EchoPlanarPulseSequence YES at the top level, in Philips' private item of
    enhanced attributes (2005,xx0F), or in an enhanced file's shared functional groups."""
    places = [header]
    philips = vendors.private_value(header, 0x2005, vendors.PHILIPS_MR_5, 0x0F)
    shared = header.get("SharedFunctionalGroupsSequence")
    for group in (philips, shared):
        if group and isinstance(group[0], Dataset):
            places.append(group[0])
            places.extend(item for element in group[0] if element.VR == "SQ"
                          for item in element.value[:1])  # fmt: skip
    return any(str(place.get("EchoPlanarPulseSequence", "")) == "YES" for place in places)


def closest_to_ras(
    array: NDArray[Any], affine_ras: NDArray[np.float64]
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """``array`` (i, j, k[, ...]) with its three first axes permuted and reversed to lie
    closest to R, A and S, and its affine: dcm2niix's choice, the flips from the
    corner nearest the lowest (left, posterior, inferior) point, then the permutation
    that best aligns the axes with x, y and z. A view: nothing is copied."""
    rotation = affine_ras[:3, :3]
    if np.all(np.diag(rotation) > 0) and not np.any(rotation - np.diag(np.diag(rotation))):
        return array, affine_ras  # already RAS: dcm2niix leaves it as it is
    shape = np.array(array.shape[:3])
    flips, corners = [], []
    for bits in range(8):  # dcm2niix's corner order: x flip in bit 0, y in 1, z in 2
        flip = [-1 if bits >> axis & 1 else 1 for axis in range(3)]
        index = np.where(np.array(flip) < 0, shape - 1, 0)
        flips.append(flip)
        corners.append(affine_ras[:3, :3] @ index + affine_ras[:3, 3])
    lowest = np.min(corners, axis=0)
    nearest = min(range(8), key=lambda n: (float(np.linalg.norm(corners[n] - lowest)), n))
    flip = flips[nearest]
    best, chosen = 0.0, _PERMUTATIONS[0]
    for permutation in _PERMUTATIONS:
        fit = sum(rotation[out, axis] * flip[axis] for axis, out in enumerate(permutation))
        if fit > best:
            best, chosen = fit, permutation
    order = [chosen.index(out) for out in range(3)]  # input axis of each output axis
    if order == [0, 1, 2] and flip == [1, 1, 1]:
        return array, affine_ras
    turned = array.transpose(*order, *range(3, array.ndim))
    turned = turned[tuple(slice(None, None, flip[axis]) for axis in order)]
    affine = np.eye(4)
    affine[:3, :3] = rotation[:, order] * np.array([flip[axis] for axis in order])
    affine[:3, 3] = corners[nearest]
    return turned, affine
