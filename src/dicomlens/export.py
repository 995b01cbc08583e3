"""Write volumes (NIfTI, NumPy) with a JSON sidecar, and slices as PNG pictures.

Every file goes through :func:`dicomlens.editing.atomic_output`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomlens.editing import atomic_output
from dicomlens.errors import UsageError
from dicomlens.volume import Volume

__all__ = ["VOLUME_SUFFIXES", "montage", "save_png", "save_volume", "sidecar_path"]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".npz", ".npy")


def sidecar_path(target: Path) -> Path:
    """``ct.nii.gz`` -> ``ct.json``, as dcm2niix names its sidecars."""
    name = target.name
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return target.with_name(name[: -len(suffix)] + ".json")
    return target.with_suffix(".json")


def save_volume(
    volume: Volume, target: str | os.PathLike[str], *, info: dict[str, Any] | None = None
) -> Path:
    """Write the volume (format from the suffix) and its JSON sidecar; returns the sidecar.

    NIfTI files get the RAS affine as both qform and sform (code 1, scanner);
    ``.npz`` holds ``array``, ``affine_lps``, ``affine_ras`` and ``spacing``;
    ``.npy`` holds the array alone (the affines are in the sidecar).
    """
    target = Path(target)
    if not target.name.endswith(VOLUME_SUFFIXES):
        raise UsageError(f"{target}: the output must end with one of {', '.join(VOLUME_SUFFIXES)}")
    with atomic_output(target) as temporary:
        if target.name.endswith((".nii", ".nii.gz")):
            _save_nifti(volume, temporary)
        elif target.suffix == ".npz":
            np.savez_compressed(
                temporary,
                array=volume.array,
                affine_lps=volume.affine_lps,
                affine_ras=volume.affine_ras,
                spacing=np.array(volume.spacing),
            )
        else:
            np.save(temporary, volume.array)
    sidecar = sidecar_path(target)
    payload = {
        **(info or {}),
        "axes": "i, j, k = column, row, slice",
        "shape": list(volume.array.shape),
        "dtype": str(volume.array.dtype),
        "modality_values": volume.rescaled,
        "spacing_mm": list(volume.spacing),
        "affine_lps": volume.affine_lps.round(6).tolist(),
        "affine_ras": volume.affine_ras.round(6).tolist(),
        "geometry": volume.report.to_dict(),
        "slices": volume.slices,
    }
    with atomic_output(sidecar) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return sidecar


def _save_nifti(volume: Volume, path: Path) -> None:
    import nibabel as nib  # heavy: only when writing NIfTI

    image = nib.Nifti1Image(volume.array, volume.affine_ras)  # type: ignore[no-untyped-call]
    image.set_qform(volume.affine_ras, code=1)  # type: ignore[no-untyped-call]
    image.set_sform(volume.affine_ras, code=1)  # type: ignore[no-untyped-call]
    image.header.set_xyzt_units("mm")  # type: ignore[no-untyped-call]
    nib.save(image, path)


def montage(
    images: Sequence[NDArray[np.uint8]], *, columns: int | None = None
) -> NDArray[np.uint8]:
    """Tile equally sized 2-D images into one, row by row (black where none is left)."""
    count = len(images)
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    height, width = images[0].shape[:2]
    sheet = np.zeros((rows * height, columns * width, *images[0].shape[2:]), dtype=np.uint8)
    for number, image in enumerate(images):
        row, column = divmod(number, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return sheet


def save_png(image: NDArray[np.uint8], target: str | os.PathLike[str]) -> None:
    """Write an 8-bit grey (rows x columns) or RGB (rows x columns x 3) image as PNG."""
    from PIL import Image  # only when rendering

    with atomic_output(target) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
