"""Write volumes (NIfTI, NumPy) with a JSON sidecar, and slices as PNG pictures.

NIfTI files are laid out as dcm2niix lays them out (image rows flipped, so that
the first row stored is the bottom one); NumPy files keep the volume's own axes.
The sidecar's BIDS fields, ``.bval`` and ``.bvec`` describe the array as written.
Every file goes through :func:`dicomlens.editing.atomic_output` (no partial file is
ever at the target), unsynced: exports can be made again from the DICOM files. A
``.nii`` can be filled in place (:func:`nifti_in_place`): the voxels are read straight
into the file, with no copy of the volume in memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from dicomlens.editing import atomic_output
from dicomlens.errors import UsageError
from dicomlens.reading import read
from dicomlens.scanning import Series
from dicomlens.series import lps_to_ras
from dicomlens.volume import Volume
from dicomlens.volume.diffusion import fsl_bvecs, fsl_text
from dicomlens.volume.orientation import closest_to_ras, turned_to_ras
from dicomlens.volume.pixels import dtype_name
from dicomlens.volume.sidecar import bids_sidecar

__all__ = [
    "VOLUME_SUFFIXES",
    "NiftiInPlace",
    "montage",
    "nifti_in_place",
    "nifti_layout",
    "save_png",
    "save_volume",
    "sidecar_path",
    "split_paths",
]

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".npz", ".npy")
_NIFTI_DATA_OFFSET = 352  # a NIfTI-1 header (348 bytes) and an empty extension flag


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
    in_place: NiftiInPlace | None = None,
) -> list[Path]:
    """Write the volume (format from the suffix) with its JSON sidecar, and ``.bval`` /
    ``.bvec`` for a diffusion series; returns the files written.

    NIfTI files get the RAS affine as both qform and sform (code 1, scanner) and,
    for a 4-D volume, the repetition time as the 4th voxel size in seconds;
    ``.npz`` holds ``array``, ``affine_lps``, ``affine_ras`` and ``spacing``;
    ``.npy`` holds the array alone (the affines are in the sidecar). With
    ``series``, the sidecar carries the BIDS fields dcm2niix writes; with ``split``
    a 4-D volume is written as one 3-D file per volume (``OUT_0001.nii.gz`` ...).
    With ``in_place`` (from :func:`nifti_in_place` for ``target``), the image is
    that file, its voxels already there when the volume was loaded into it.
    """
    target = Path(target)
    if not target.name.endswith(VOLUME_SUFFIXES):
        raise UsageError(f"{target}: the output must end with one of {', '.join(VOLUME_SUFFIXES)}")
    nifti = target.name.endswith((".nii", ".nii.gz"))
    header = read(series.first.path, stop_before_pixels=True) if series is not None else None
    to_ras = header is not None and turned_to_ras(header, volume.report, volume.array.shape[2])
    if nifti:
        array, affine_ras = nifti_layout(volume, to_ras=to_ras)
    else:
        array, affine_ras = volume.array, volume.affine_ras
    bids = {}
    if series is not None and header is not None:
        bids = bids_sidecar(header, volume, series.slices, affine_ras,
                            multi_echo=series.split_by("echo"))  # fmt: skip
    space = NiftiSpace(affine_ras, bids.get("RepetitionTime"), 1 if volume.report.located else 0)
    written: list[Path] = []
    parts = split_paths(target, volume.volumes) if split and volume.volumes > 1 else [target]
    for number, path in enumerate(parts):
        part = array[..., number] if len(parts) > 1 else array
        if in_place is not None:
            in_place.finish(part, space)
        else:
            _save_array(volume, part, space, path)
        sidecar = sidecar_path(path)
        payload = {
            **bids,
            **(info or {}),
            **({"volume": number} if len(parts) > 1 else {}),
            "axes": _axes(nifti, to_ras),
            "shape": list(part.shape),
            "dtype": dtype_name(part.dtype),
            "modality_values": volume.rescaled,
            "spacing_mm": list(volume.spacing),
            "affine_lps": lps_to_ras(affine_ras).round(6).tolist(),  # the same flip back
            "affine_ras": affine_ras.round(6).tolist(),
            "geometry": volume.report.to_dict(),
            "slices": volume.slices,
        }
        with atomic_output(sidecar, durable=False) as temporary:
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
            with atomic_output(path, durable=False) as temporary:
                temporary.write_text(text)
            written.append(path)
    return written


def nifti_layout(
    volume: Volume, *, to_ras: bool = False
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """The array and RAS affine as NIfTI files store them, as dcm2niix lays them out
    (so that voxel axes, bvecs and phase-encoding signs agree with its files): rows
    flipped, or with ``to_ras`` (a 3-D acquisition, :func:`turned_to_ras`) the axes
    turned closest to RAS."""
    if to_ras:
        return closest_to_ras(volume.array, volume.affine_ras)
    rows = volume.array.shape[1]
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1.0, rows - 1
    return volume.array[:, ::-1], volume.affine_ras @ flip


def _axes(nifti: bool, to_ras: bool) -> str:
    if nifti and to_ras:
        return "i, j, k closest to R, A, S (a 3-D acquisition, turned as dcm2niix turns it)"
    if nifti:
        return "i, j, k = column, row (bottom to top), slice"
    return "i, j, k = column, row, slice"


def split_paths(target: Path, count: int) -> list[Path]:
    """``bold.nii.gz`` -> ``bold_0001.nii.gz`` ... ``bold_<count>.nii.gz``."""
    name = target.name
    suffix = next(s for s in VOLUME_SUFFIXES if name.endswith(s))
    stem = name[: -len(suffix)]
    return [target.with_name(f"{stem}_{n:04d}{suffix}") for n in range(1, count + 1)]


class NiftiSpace(NamedTuple):
    """Where a NIfTI image lies: its RAS affine, the repetition time (s) as the 4th
    voxel size, and the qform/sform code: 1 (scanner), or 0 (unknown) for 2-D images
    that give no place in the patient (as dcm2niix writes them)."""

    affine_ras: NDArray[np.float64]
    repetition: float | None
    code: int


def _save_array(volume: Volume, array: NDArray[Any], space: NiftiSpace, path: Path) -> None:
    with atomic_output(path, durable=False) as temporary:
        if path.name.endswith((".nii", ".nii.gz")):
            _save_nifti(array, space, temporary)
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


def _save_nifti(array: NDArray[Any], space: NiftiSpace, path: Path) -> None:
    import nibabel as nib  # heavy: only when writing NIfTI

    nib.save(_nifti_image(array, space), path)


def _nifti_image(array: NDArray[Any], space: NiftiSpace) -> Any:
    import nibabel as nib

    image = nib.Nifti1Image(np.asarray(array), space.affine_ras)  # type: ignore[no-untyped-call]
    image.set_qform(space.affine_ras, code=space.code)  # type: ignore[no-untyped-call]
    image.set_sform(space.affine_ras, code=space.code)  # type: ignore[no-untyped-call]
    if array.ndim == 4:
        zooms = image.header.get_zooms()  # type: ignore[no-untyped-call]
        image.header.set_zooms((*zooms[:3], space.repetition or 1.0))  # type: ignore[no-untyped-call]
    image.header.set_xyzt_units("mm", "sec")  # type: ignore[no-untyped-call]
    return image


class NiftiInPlace:
    """A ``.nii`` being written whose voxels the loader reads straight into it.

    :meth:`allocate` (a :data:`~dicomlens.volume.pixels.Allocator`) maps the file's
    data as the loader's planes, rows flipped as :func:`nifti_layout` stores them;
    :meth:`finish` then writes the header, or the whole file when the volume is not
    in the map after all (a rescale that changed the type, say). The loaded volume's
    array is then a view of the file: changing it changes the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: np.memmap[Any, Any] | None = None

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
        try:
            with self.path.open("r+b") as file:  # zeros until written (a sparse file)
                file.truncate(_NIFTI_DATA_OFFSET + math.prod(shape) * dtype.itemsize)
            self._data = np.memmap(self.path, dtype=dtype, mode="r+",
                                   offset=_NIFTI_DATA_OFFSET, shape=shape)  # fmt: skip
        except OSError:  # a file system that cannot map files: in memory, written after
            return np.zeros(shape, dtype=dtype)
        return self._data[:, ::-1]

    def holds(self, array: NDArray[Any]) -> bool:
        """Whether ``array`` (as NIfTI stores it, F-ordered) is the mapped data."""
        data = self._data
        return (
            data is not None
            and array.dtype == data.dtype
            and array.nbytes == data.nbytes
            and array.flags.f_contiguous
            and array.__array_interface__["data"][0] == data.__array_interface__["data"][0]
        )

    def finish(self, array: NDArray[Any], space: NiftiSpace) -> None:
        """Write the header of ``array`` (the whole file if it is not the mapped data)."""
        if not self.holds(array):
            self._data = None
            _save_nifti(array, space, self.path)
            return
        image = _nifti_image(array, space)
        image.update_header()
        header = image.header
        header["vox_offset"] = _NIFTI_DATA_OFFSET
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0  # as written: no scaling
        with self.path.open("r+b") as file:
            file.write(header.binaryblock + bytes(4))  # no extensions


@contextlib.contextmanager
def nifti_in_place(target: str | os.PathLike[str]) -> Iterator[NiftiInPlace]:
    """A ``.nii`` to load a volume into and pass to :func:`save_volume`; it replaces
    ``target`` when the block ends, and nothing is left of it if the block fails."""
    target = Path(target)
    if not target.name.endswith(".nii"):
        raise UsageError(f"{target}: only an uncompressed .nii is filled in place")
    with atomic_output(target, durable=False) as temporary:
        yield NiftiInPlace(temporary)


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

    with atomic_output(target, durable=False) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
