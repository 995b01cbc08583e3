"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3): consumer images.

An image is rendered in its modality values through a window (the request's
``window=center,width[,function]``, else the file's first window, else the full
range), MONOCHROME1 inverted, colour as it is; fitted into ``viewport=w,h``
(never enlarged) and encoded as JPEG (the default) or PNG.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from dicomlens.dicomweb.media import MediaRange
from dicomlens.dicomweb.problems import BadRequest, NotAcceptable, NotFound
from dicomlens.dicomweb.retrieve import Stored, slice_of, stored_values
from dicomlens.errors import DicomlensError
from dicomlens.reading import read
from dicomlens.volume import (
    Window,
    colour_to_uint8,
    file_windows,
    full_range_window,
    window_to_uint8,
)

__all__ = ["THUMBNAIL_SIZE", "picture_type", "render", "thumbnail_of"]

THUMBNAIL_SIZE: Final = 128
_FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG"}


def picture_type(ranges: list[MediaRange]) -> str:
    """The picture type to answer with: the first of JPEG and PNG the client accepts."""
    for choice in ranges:
        for media_type in _FORMATS:
            if choice.matches(media_type):
                return media_type
    raise NotAcceptable("rendered images are image/jpeg or image/png")


def render(stored: Stored, number: int, parameters: Mapping[str, str], media_type: str) -> bytes:
    """Frame ``number`` (from 1) of an instance as a JPEG or PNG picture."""
    stored.check()
    info = slice_of(stored, number)
    try:
        values = stored_values(info, rescale=True)
        header = read(stored.path, stop_before_pixels=True)
    except DicomlensError:
        raise NotFound(f"instance {stored.sop}: its file cannot be read") from None
    if values.ndim == 3:
        picture = colour_to_uint8(values)
    else:
        picture = window_to_uint8(values, _window(parameters.get("window"), header, values))
        if header.get("PhotometricInterpretation") == "MONOCHROME1":
            picture = 255 - picture
    return _encoded(picture, parameters, media_type)


def thumbnail_of(instances: list[Stored], parameters: Mapping[str, str], media_type: str) -> bytes:
    """The middle image of the middle instance holding one (a study: of its first series)."""
    with_images = [s for s in instances if s.slices not in ("", "[]")]
    if not with_images:
        raise NotFound("no image to make a thumbnail of")
    first_series = [s for s in with_images if s.series == with_images[0].series]
    shown = first_series[len(first_series) // 2]
    wanted = {"viewport": f"{THUMBNAIL_SIZE},{THUMBNAIL_SIZE}", **parameters}
    return render(shown, max(1, (shown.frames + 1) // 2), wanted, media_type)


def _window(text: str | None, header: Any, values: NDArray[Any]) -> Window:
    if text:
        try:
            center, width, *function = text.split(",")
            window = Window(float(center), float(width), "requested")
        except ValueError:
            raise BadRequest(f"window is CENTER,WIDTH[,FUNCTION], not {text!r}") from None
        if function and function[0].strip().upper() not in ("LINEAR", "LINEAR_EXACT", ""):
            raise BadRequest(f"window function {function[0]!r} is not supported (LINEAR)")
        if window.width <= 0:
            raise BadRequest("window width must be positive")
        return window
    windows = file_windows(header)
    return windows[0] if windows else full_range_window(values)


def _encoded(picture: NDArray[np.uint8], parameters: Mapping[str, str], media_type: str) -> bytes:
    image = Image.fromarray(picture)
    viewport = parameters.get("viewport")
    if viewport:
        try:
            width, height = (int(v) for v in viewport.split(",")[:2])
        except ValueError:
            raise BadRequest(f"viewport is WIDTH,HEIGHT, not {viewport!r}") from None
        if not (0 < width <= 8192 and 0 < height <= 8192):
            raise BadRequest("viewport sizes are 1 to 8192 pixels")
        image.thumbnail((width, height))
    out = io.BytesIO()
    if _FORMATS[media_type] == "JPEG":
        quality = parameters.get("quality", "90")
        if not quality.isdigit() or not 1 <= int(quality) <= 100:
            raise BadRequest(f"quality is 1 to 100, not {quality!r}")
        image.save(out, format="JPEG", quality=int(quality))
    else:
        image.save(out, format="PNG")
    return out.getvalue()
