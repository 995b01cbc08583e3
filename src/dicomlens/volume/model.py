"""The volume type: voxels, their affine, and how they were assembled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomlens.series import GeometryReport, SliceInfo, lps_to_ras
from dicomlens.volume.diffusion import fsl_bvecs

__all__ = ["Volume", "slice_row"]


@dataclass
class Volume:
    """A 3-D or 4-D image: voxels, where they are, and how they were assembled.

    ``bvals`` and ``gradients`` (patient LPS unit vectors, zero for b = 0) are set for
    diffusion series, one per volume in acquisition order.
    """

    array: NDArray[Any]
    affine_lps: NDArray[np.float64]
    report: GeometryReport
    rescaled: bool
    slices: list[dict[str, Any]] = field(default_factory=list)
    bvals: NDArray[np.float64] | None = None
    gradients: NDArray[np.float64] | None = None
    precise: bool = False
    """Philips' floating-point values rather than the display values (``rescaled``)."""

    @property
    def affine_ras(self) -> NDArray[np.float64]:
        """The affine in RAS (NIfTI) coordinates."""
        return lps_to_ras(self.affine_lps)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j and k in mm."""
        lengths = np.linalg.norm(self.affine_lps[:3, :3], axis=0)
        return (float(lengths[0]), float(lengths[1]), float(lengths[2]))

    @property
    def volumes(self) -> int:
        """Volumes along the 4th axis (1 for a 3-D volume)."""
        return int(self.array.shape[3]) if self.array.ndim == 4 else 1

    @property
    def bvecs(self) -> NDArray[np.float64] | None:
        """Gradient directions in this array's voxel axes, FSL's convention (3 x volumes)."""
        if self.gradients is None:
            return None
        return fsl_bvecs(self.gradients, self.affine_ras)


def slice_row(info: SliceInfo, index: int, volume: int = 0) -> dict[str, Any]:
    """One row of the per-slice table kept with a volume."""
    return {
        "k": index,
        "volume": volume,
        "file": str(info.path),
        "frame": info.frame,
        "position": list(info.position) if info.position else None,
        "instance_number": info.instance_number,
        "acquisition_time": info.acquisition_time,
        "rescale_slope": info.slope,
        "rescale_intercept": info.intercept,
    }
