"""Pixels of one image: read straight from the file when uncompressed, decoded by
pydicom otherwise, with the size checked before anything is allocated."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import tag_for_keyword

from dicomlens.errors import FileError, SeriesError
from dicomlens.isolation import run_isolated
from dicomlens.reading import plain_reason, read
from dicomlens.series import NativePixels, SliceInfo
from dicomlens.volume.codecs import decode_pixel_data

__all__ = [
    "MAX_IMAGE_BYTES",
    "RGB",
    "Allocator",
    "Decoder",
    "as_plane",
    "check_declared_size",
    "decode",
    "dtype_name",
    "frame_of",
    "load_slice",
    "place",
    "read_full",
    "read_native",
    "rescale_planes",
    "stored_frame",
    "zeros",
]

MAX_IMAGE_BYTES: Final = 4 << 30
"""Largest decoded image (all frames) loaded; bigger declarations are refused unread."""


_NATIVE_SYNTAXES: Final = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)


_PIXEL_KEYWORDS: Final = (
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames",
    "PixelData", "FloatPixelData", "DoubleFloatPixelData",
)  # fmt: skip


_PIXEL_TAGS: Final = frozenset(tag_for_keyword(keyword) or 0 for keyword in _PIXEL_KEYWORDS)


Allocator = Callable[[tuple[int, ...], np.dtype[Any]], NDArray[Any]]
"""Gives the zero-filled (slice, row, column) planes a volume is read into: a
memory map of the output file, say (:func:`dicomlens.export.nifti_in_place`)."""


def zeros(shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
    """The default :data:`Allocator`: planes in memory."""
    return np.zeros(shape, dtype=dtype)


RGB: Final = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
"""One colour voxel: what NIfTI calls RGB24 (nibabel's dtype for it)."""


def dtype_name(dtype: np.dtype[Any]) -> str:
    """A voxel type as people name it: ``int16``, ``float32``, ``rgb24``."""
    return "rgb24" if dtype == RGB else str(dtype)


def as_plane(pixels: NDArray[Any], info: SliceInfo) -> NDArray[Any]:
    """A decoded image as one plane of a volume: grey values as they are, 8-bit colour
    (rows x columns x 3, RGB as pydicom gives it) as :data:`RGB` voxels (a view)."""
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels).view(RGB)[..., 0]
    raise SeriesError(
        f"{info.path}: images of {pixels.shape[-1]} {pixels.dtype} samples per pixel do not "
        "form a volume (grey and 8-bit RGB ones do)"
    )


def place(plane: NDArray[Any], pixels: NDArray[Any], info: SliceInfo, *, rescale: bool) -> None:
    """Put one slice's stored values into its plane, rescaled on the way if asked."""
    if not rescale or (info.slope == 1 and info.intercept == 0):
        plane[...] = pixels
        return
    np.multiply(pixels, info.slope, out=plane, casting="unsafe")
    plane += plane.dtype.type(info.intercept)


@dataclass
class Decoder:
    """Stored values of slices: files decoded once each, and only when their declared
    image size is within ``limit`` bytes."""

    limit: int = MAX_IMAGE_BYTES
    decoded: dict[Path, NDArray[Any]] = field(default_factory=dict)

    def pixels(self, info: SliceInfo) -> NDArray[Any]:
        if info.native_pixels is not None:
            out = np.empty((info.rows, info.columns), dtype=info.native_pixels.dtype)
            read_native(info, info.native_pixels, out=out)
            return out
        if info.path not in self.decoded:
            self.decoded[info.path] = decode(info.path, self.limit)
        return frame_of(self.decoded[info.path], info)


def frame_of(pixels: NDArray[Any], info: SliceInfo) -> NDArray[Any]:
    """The slice's frame of a decoded file: pydicom gives frames first (frames x rows x
    columns, x samples for colour) and no frame axis for a single frame."""
    if info.frame is None:
        return pixels
    image = (info.rows, info.columns)
    framed = pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[1:] == image)
    return pixels[info.frame] if framed else pixels


def load_slice(
    info: SliceInfo,
    *,
    rescale: bool = True,
    isolated: bool = False,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> NDArray[Any]:
    """One image (rows x columns): modality values (float32 when the rescale is not
    integral), or the stored values with ``rescale=False``. With ``isolated``,
    compressed data is decoded in a child process limited in memory and time
    (:mod:`dicomlens.isolation`), for long-running callers such as the viewer.

    >>> from pydicom import dcmread
    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.series import slice_infos
    >>> path = get_testdata_file("CT_small.dcm")
    >>> (info,) = slice_infos(dcmread(path), Path(path))
    >>> load_slice(info).shape, int(load_slice(info).min())
    ((128, 128), -896)
    """
    if isolated and info.native_pixels is None:
        stored = run_isolated(stored_frame, info, max_image_bytes, what=str(info.path))
    else:
        stored = Decoder(max_image_bytes).pixels(info)
    if info.rows_reversed:  # GE's reversed-polarity images, stored upside down
        stored = stored[::-1]
    if not rescale or (info.slope == 1 and info.intercept == 0):
        return stored
    integral = float(info.slope).is_integer() and float(info.intercept).is_integer()
    plane = np.empty(stored.shape, dtype=np.int32 if integral else np.float32)
    place(plane, stored, info, rescale=True)
    return plane


def stored_frame(info: SliceInfo, limit: int) -> NDArray[Any]:
    return frame_of(decode(info.path, limit), info)


def read_full(path: Path, *, decode: frozenset[int] | None = None) -> Any:
    try:
        return read(path, decode=decode)
    except FileError as exc:
        raise SeriesError(f"volume needs every slice: {exc}") from exc


def read_native(info: SliceInfo, where: NativePixels, *, out: NDArray[Any]) -> None:
    """Uncompressed pixels straight from the file into ``out``, as pydicom would
    decode them (unused high bits cleared or sign-extended, its ``correct_unused_bits``)."""
    wanted = out.nbytes
    try:
        with info.path.open("rb") as fh:
            fh.seek(where.offset)
            got = fh.readinto(out.data.cast("B"))
    except OSError as exc:
        raise SeriesError(f"{info.path}: cannot read pixel data ({exc.strerror or exc})") from exc
    if got < wanted:
        raise SeriesError(
            f"{info.path}: cannot decode pixel data (Pixel Data shorter than declared: "
            f"{got} of {wanted} bytes)"
        )
    if where.unused_bits:
        np.left_shift(out, where.unused_bits, out=out)
        np.right_shift(out, where.unused_bits, out=out)


def decode(path: Path, limit: int = MAX_IMAGE_BYTES) -> NDArray[Any]:
    ds = read_full(path, decode=_PIXEL_TAGS)
    if "PixelData" not in ds:
        raise SeriesError(f"{path}: no pixel data")
    check_declared_size(ds, path, limit)
    try:
        with native_stderr_captured():
            return decode_pixel_data(ds, path)
    except Exception as exc:  # pydicom's decoders raise many types for damaged data
        raise SeriesError(f"{path}: cannot decode pixel data ({plain_reason(exc)})") from exc


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Keep what native decoders print on file descriptor 2 (openjpeg's complaints
    about damaged data) off the user's terminal: the exception says it."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_declared_size(ds: Any, path: Path, limit: int) -> None:
    """Refuse absurd image sizes before any decoder allocates them (RELIABILITY R21)."""
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        declared = (
            int(ds.Rows) * int(ds.Columns) * frames * int(ds.get("SamplesPerPixel") or 1)
            * max(int(ds.BitsAllocated), 8) // 8
        )  # fmt: skip
    except (AttributeError, TypeError, ValueError) as exc:
        raise SeriesError(f"{path}: cannot decode pixel data (image size unknown: {exc})") from None
    if declared > limit:
        raise SeriesError(
            f"{path}: declared image size {declared / 2**30:,.1f} GiB exceeds the limit "
            f"({limit / 2**30:g} GiB)"
        )
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    stored = len(ds.PixelData)
    if syntax in _NATIVE_SYNTAXES and stored < declared:
        raise SeriesError(
            f"{path}: pixel data holds {stored} bytes, the header declares {declared}"
        )


def rescale_planes(planes: NDArray[Any], slices: dict[int, SliceInfo]) -> NDArray[Any]:
    """Modality values, in place where the stored type can hold them: integer
    slopes and intercepts keep an integer type, others give float32."""
    pairs = {index: (info.slope, info.intercept) for index, info in slices.items()}
    if all(slope == 1 and intercept == 0 for slope, intercept in pairs.values()):
        return planes
    integral = all(float(v).is_integer() for pair in pairs.values() for v in pair)
    if integral and planes.dtype.kind in "iu":
        low, high = float(planes.min()), float(planes.max())
        ends = [
            end * slope + intercept for slope, intercept in pairs.values() for end in (low, high)
        ]
        fits = [
            t
            for t in (np.int16, np.int32)
            if np.iinfo(t).min <= min(ends) and max(ends) <= np.iinfo(t).max
        ]
        dtype = np.dtype(fits[0]) if fits else np.dtype(np.float64)
    else:
        dtype = np.dtype(np.float32)
    out = planes if planes.dtype == dtype else planes.astype(dtype)
    for index, (slope, intercept) in pairs.items():
        if slope != 1:
            out[index] *= dtype.type(slope)
        if intercept != 0:
            out[index] += dtype.type(intercept)
    return out
