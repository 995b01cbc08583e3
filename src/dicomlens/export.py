"""Write volumes (NIfTI, NumPy) with a JSON sidecar, and slices as PNG pictures.

NIfTI files are laid out as dcm2niix lays them out (image rows flipped, so that
the first row stored is the bottom one); NumPy files keep the volume's own axes.
The sidecar's BIDS fields, ``.bval`` and ``.bvec`` describe the array as written.
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
from dicomlens.reading import read
from dicomlens.scanning import Series
from dicomlens.series import lps_to_ras
from dicomlens.volume import Volume
from dicomlens.volume.diffusion import fsl_bvecs, fsl_text
from dicomlens.volume.sidecar import bids_sidecar

__all__ = [
    "VOLUME_SUFFIXES",
    "montage",
    "nifti_layout",
    "save_png",
    "save_volume",
    "sidecar_path",
    "split_paths",
]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".npz", ".npy")


def sidecar_path(target: Path) -> Path:
    """``ct.nii.gz`` -> ``ct.json``, as dcm2niix names its sidecars."""
    name = target.name
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return target.with_name(name[: -len(suffix)] + ".json")
    return target.with_suffix(".json")


def save_volume(
    volume: Volume,
    target: str | os.PathLike[str],
    *,
    info: dict[str, Any] | None = None,
    series: Series | None = None,
    split: bool = False,
) -> list[Path]:
    """Write the volume (format from the suffix) with its JSON sidecar, and ``.bval`` /
    ``.bvec`` for a diffusion series; returns the files written.

    NIfTI files get the RAS affine as both qform and sform (code 1, scanner) and,
    for a 4-D volume, the repetition time as the 4th voxel size in seconds;
    ``.npz`` holds ``array``, ``affine_lps``, ``affine_ras`` and ``spacing``;
    ``.npy`` holds the array alone (the affines are in the sidecar). With
    ``series``, the sidecar carries the BIDS fields dcm2niix writes; with ``split``
    a 4-D volume is written as one 3-D file per volume (``OUT_0001.nii.gz`` ...).
    """
    target = Path(target)
    if not target.name.endswith(VOLUME_SUFFIXES):
        raise UsageError(f"{target}: the output must end with one of {', '.join(VOLUME_SUFFIXES)}")
    nifti = target.name.endswith((".nii", ".nii.gz"))
    array, affine_ras = nifti_layout(volume) if nifti else (volume.array, volume.affine_ras)
    bids = {}
    if series is not None:
        header = read(series.first.path, stop_before_pixels=True)
        bids = bids_sidecar(header, volume, series.slices, affine_ras)
    written: list[Path] = []
    parts = split_paths(target, volume.volumes) if split and volume.volumes > 1 else [target]
    for number, path in enumerate(parts):
        part = array[..., number] if len(parts) > 1 else array
        _save_array(volume, part, affine_ras, path, bids.get("RepetitionTime"))
        sidecar = sidecar_path(path)
        payload = {
            **bids,
            **(info or {}),
            **({"volume": number} if len(parts) > 1 else {}),
            "axes": "i, j, k = column, row (bottom to top), slice"
            if nifti
            else "i, j, k = column, row, slice",
            "shape": list(part.shape),
            "dtype": str(part.dtype),
            "modality_values": volume.rescaled,
            "spacing_mm": list(volume.spacing),
            "affine_lps": lps_to_ras(affine_ras).round(6).tolist(),  # the same flip back
            "affine_ras": affine_ras.round(6).tolist(),
            "geometry": volume.report.to_dict(),
            "slices": volume.slices,
        }
        with atomic_output(sidecar) as temporary:
            temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        written += [path, sidecar]
    if volume.bvals is not None:
        stem = sidecar_path(target).with_suffix("")
        written += _save_fsl(volume.bvals, volume.gradients, affine_ras, stem)
    return written


def _save_fsl(
    bvals: NDArray[np.float64],
    gradients: NDArray[np.float64] | None,
    affine_ras: NDArray[np.float64],
    stem: Path,
) -> list[Path]:
    """``stem.bval`` and, when every weighted volume has a direction, ``stem.bvec``."""
    vectors = None if gradients is None else fsl_bvecs(gradients, affine_ras)
    bval, bvec = fsl_text(bvals, vectors)
    written = []
    for suffix, text in ((".bval", bval), (".bvec", bvec)):
        if text is not None:
            path = stem.with_name(stem.name + suffix)
            with atomic_output(path) as temporary:
                temporary.write_text(text)
            written.append(path)
    return written


def nifti_layout(volume: Volume) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """The array and RAS affine as NIfTI files store them: rows flipped (dcm2niix's
    layout, so that voxel axes, bvecs and phase-encoding signs agree with its files)."""
    rows = volume.array.shape[1]
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1.0, rows - 1
    return volume.array[:, ::-1], volume.affine_ras @ flip


def split_paths(target: Path, count: int) -> list[Path]:
    """``bold.nii.gz`` -> ``bold_0001.nii.gz`` ... ``bold_<count>.nii.gz``."""
    name = target.name
    suffix = next(s for s in VOLUME_SUFFIXES if name.endswith(s))
    stem = name[: -len(suffix)]
    return [target.with_name(f"{stem}_{n:04d}{suffix}") for n in range(1, count + 1)]


def _save_array(
    volume: Volume,
    array: NDArray[Any],
    affine_ras: NDArray[np.float64],
    path: Path,
    repetition_time: float | None,
) -> None:
    with atomic_output(path) as temporary:
        if path.name.endswith((".nii", ".nii.gz")):
            _save_nifti(array, affine_ras, temporary, repetition_time)
        elif path.suffix == ".npz":
            np.savez_compressed(
                temporary,
                array=array,
                affine_lps=volume.affine_lps,
                affine_ras=volume.affine_ras,
                spacing=np.array(volume.spacing),
            )
        else:
            np.save(temporary, array)


def _save_nifti(
    array: NDArray[Any], affine_ras: NDArray[np.float64], path: Path, repetition: float | None
) -> None:
    import nibabel as nib  # heavy: only when writing NIfTI

    image = nib.Nifti1Image(np.asarray(array), affine_ras)  # type: ignore[no-untyped-call]
    image.set_qform(affine_ras, code=1)  # type: ignore[no-untyped-call]
    image.set_sform(affine_ras, code=1)  # type: ignore[no-untyped-call]
    if array.ndim == 4:
        zooms = image.header.get_zooms()  # type: ignore[no-untyped-call]
        image.header.set_zooms((*zooms[:3], repetition or 1.0))  # type: ignore[no-untyped-call]
    image.header.set_xyzt_units("mm", "sec")  # type: ignore[no-untyped-call]
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
