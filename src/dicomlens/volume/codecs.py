"""Which of pydicom's decoder plugins decodes each compressed transfer syntax.

pydicom decodes through plugins (pylibjpeg, GDCM, pyjpegls, Pillow, its own RLE
decoder). For each syntax we try the fastest plugin that decoded the shared test
set correctly in ``bench/codecs.py`` first, then every other available one, so
that one plugin refusing a file (an unusual marker, a precision it lacks) does not
make the file unreadable. 12-bit JPEG Extended (process 4) images go to GDCM's own
image reader first: pydicom's GDCM plugin declines that precision, pylibjpeg
refuses some such files and rounds others differently, while GDCM's reader gives
DCMTK's pixels exactly.
"""

from __future__ import annotations

import os
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder

__all__ = ["PREFERRED_PLUGINS", "decode_pixel_data", "plugins_for"]

PREFERRED_PLUGINS: Final[dict[str, tuple[str, ...]]] = {
    uid.JPEGLossless: ("gdcm", "pylibjpeg"),
    uid.JPEGLosslessSV1: ("gdcm", "pylibjpeg"),
    uid.JPEGLSLossless: ("pyjpegls", "gdcm", "pylibjpeg"),
    uid.JPEGLSNearLossless: ("pyjpegls", "gdcm", "pylibjpeg"),
    uid.JPEG2000Lossless: ("gdcm", "pylibjpeg", "pillow"),
    uid.JPEG2000: ("gdcm", "pylibjpeg", "pillow"),
    uid.RLELossless: ("pylibjpeg", "pydicom"),
}
"""Fastest first, as measured by ``bench/codecs.py`` (see bench/README.md)."""


def plugins_for(syntax: str) -> list[str]:
    """The decoder plugins to try for a transfer syntax, in order: the preferred ones
    that are installed, then the other installed ones."""
    available = list(get_decoder(syntax).available_plugins)
    preferred = [p for p in PREFERRED_PLUGINS.get(syntax, ()) if p in available]
    return preferred + [p for p in available if p not in preferred]


_GDCM_TYPES: Final = {
    "UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16,
    "UINT32": np.uint32, "INT32": np.int32,
}  # fmt: skip


def decode_pixel_data(ds: Dataset, path: str | os.PathLike[str] | None = None) -> NDArray[Any]:
    """All frames of a data set's pixel data, as ``Dataset.pixel_array`` gives them
    (``path``, the file it was read from, lets GDCM's reader decode 12-bit JPEG).

    Raises
    ------
    ValueError
        No installed plugin decodes it; the message gives each plugin's reason.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None or not uid.UID(syntax).is_compressed:
        return np.asarray(ds.pixel_array)
    reasons = []
    if path is not None and _is_twelve_bit_jpeg(ds, syntax):
        try:
            return _gdcm_image(ds, path)
        except (ImportError, ValueError) as exc:
            reasons.append(f"GDCM's reader: {exc}")
    decoder = get_decoder(syntax)
    for plugin in plugins_for(syntax):
        try:
            pixels, _ = decoder.as_array(ds, decoding_plugin=plugin)
        except Exception as exc:  # each plugin raises its own types
            reason = " ".join(str(exc).split("available plugins:")[-1].split())
            reasons.append(reason if reason.startswith(f"{plugin}:") else f"{plugin}: {reason}")
            continue
        return np.asarray(pixels)
    raise ValueError("; ".join(reasons) or f"no decoder plugin for {uid.UID(syntax).name}")


def _is_twelve_bit_jpeg(ds: Dataset, syntax: str) -> bool:
    return bool(
        syntax == uid.JPEGExtended12Bit
        and int(ds.get("BitsStored") or 8) > 8
        and int(ds.get("SamplesPerPixel") or 1) == 1
    )


def _gdcm_image(ds: Dataset, path: str | os.PathLike[str]) -> NDArray[Any]:
    """The frames of a grey-scale file as GDCM's image reader decodes them."""
    import gdcm  # heavy: only for 12-bit JPEG

    reader = gdcm.ImageReader()
    reader.SetFileName(os.fspath(path))
    if not reader.Read():
        raise ValueError("cannot read the file")
    image = reader.GetImage()
    kind = image.GetPixelFormat().GetScalarTypeAsString()
    if kind not in _GDCM_TYPES:
        raise ValueError(f"pixel type {kind} not handled")
    buffer = image.GetBuffer()
    if buffer is None:
        raise ValueError("no pixel data decoded")
    frames = int(ds.get("NumberOfFrames") or 1)
    shape = (frames, int(ds.Rows), int(ds.Columns)) if frames > 1 else (ds.Rows, ds.Columns)
    data = np.frombuffer(buffer.encode("utf-8", "surrogateescape"), dtype=_GDCM_TYPES[kind])
    if data.size != np.prod(shape):
        raise ValueError(f"decoded {data.size} pixels, the header declares {np.prod(shape)}")
    return data.reshape(shape).copy()
