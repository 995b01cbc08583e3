"""Render slices of a series as 8-bit pictures with a window (``dicomlens render``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dicomlens.errors import UsageError
from dicomlens.reading import read
from dicomlens.scanning import Series
from dicomlens.series import number_or_none
from dicomlens.volume import (
    MAX_IMAGE_BYTES,
    PRESETS,
    Window,
    colour_to_uint8,
    file_windows,
    full_range_window,
    window_to_uint8,
)
from dicomlens.volume.pixels import decode

__all__ = ["choose_window", "render_series"]


def choose_window(
    series: Series, values: NDArray[Any], *, window: tuple[float, float] | None, preset: str | None
) -> Window:
    """The window to use: explicit, a named preset, a window of the file (by its
    number or explanation), or the full range of the values."""
    if window is not None:
        return Window(window[0], window[1], "explicit")
    header = read(series.first.path, stop_before_pixels=True)
    windows = file_windows(header)
    if preset is None:
        return windows[0] if windows else full_range_window(values)
    key = preset.lower()
    if key in PRESETS:
        center, width = PRESETS[key]
        return Window(center, width, key)
    for number, candidate in enumerate(windows, start=1):
        if key in (str(number), candidate.name.lower()):
            return candidate
    names = sorted(PRESETS) + [w.name for w in windows]
    raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(names)}")


def render_series(
    series: Series,
    *,
    index: int | None = None,
    all_slices: bool = False,
    window: tuple[float, float] | None = None,
    preset: str | None = None,
    frame: int | None = None,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> list[NDArray[np.uint8]]:
    """Windowed 8-bit images (rows x columns) of one slice (the middle one by default)
    or of every slice; colour images are returned as they are (rows x columns x 3).
    ``frame`` picks a frame of a multi-frame image (a cine, a nuclear medicine set)
    or, in a 4-D series, the volume whose slices are shown (the first by default)."""
    header = read(series.first.path, stop_before_pixels=True)
    frames = number_or_none(header.get("NumberOfFrames"), int) or 1
    count = max(frames, series.report.volumes)
    if frame is not None and not 0 <= frame < count:
        what = "volumes" if series.report.volumes > 1 else "frames"
        raise UsageError(
            f"frame {frame} out of range: the series has {count} {what} (0 to {count - 1})"
        )
    if frame is not None and series.report.sorted_by == "frame order":
        index, frame = frame, None  # the frames of one file are its slices
    if (number_or_none(header.get("SamplesPerPixel"), int) or 1) > 1:
        return [_colour(series, index)]
    shown = series.one_volume(frame or 0)  # a 4-D series: only the volume shown is read
    # display values: the file's windows are given in them
    volume = shown.volume(rescale=True, max_image_bytes=max_image_bytes, philips_precise=False)
    array = volume.array[..., frame or 0] if volume.array.ndim == 4 else volume.array
    depth = array.shape[2]
    if index is not None and not -depth <= index < depth:
        raise UsageError(
            f"slice {index} out of range: the series has {depth} slices (0 to {depth - 1})"
        )
    chosen = range(depth) if all_slices else [depth // 2 if index is None else index % depth]
    return _windowed(
        series, header, [array[:, :, k].T for k in chosen], window=window, preset=preset
    )


def _windowed(
    series: Series,
    header: Any,
    slices: list[NDArray[Any]],
    *,
    window: tuple[float, float] | None,
    preset: str | None,
) -> list[NDArray[np.uint8]]:
    """8-bit pictures of modality values; MONOCHROME1 inverted."""
    shown = np.stack(slices)
    voi = choose_window(series, shown, window=window, preset=preset)
    images = [window_to_uint8(values, voi) for values in slices]
    if header.get("PhotometricInterpretation") == "MONOCHROME1":
        images = [255 - image for image in images]
    return images


def _colour(series: Series, index: int | None) -> NDArray[np.uint8]:
    info = series.slices[len(series.slices) // 2 if index is None else index]
    pixels = decode(info.path)
    if pixels.ndim == 4:
        pixels = pixels[info.frame or 0]
    return colour_to_uint8(pixels)
