"""Pixel volumes: 3-D and 4-D arrays with their affines, single images, windows.

A package of small modules, one job each: :mod:`~dicomlens.volume.assembly`
stacks sorted slices, :mod:`~dicomlens.volume.mosaic` unpacks mosaics,
:mod:`~dicomlens.volume.pixels` reads one image, :mod:`~dicomlens.volume.diffusion`
handles b-values and gradients, :mod:`~dicomlens.volume.windows` window/level.
"""

from dicomlens.volume.assembly import load_volume
from dicomlens.volume.model import Volume
from dicomlens.volume.pixels import MAX_IMAGE_BYTES, load_slice
from dicomlens.volume.windows import (
    PRESETS,
    Window,
    colour_to_uint8,
    file_windows,
    full_range_window,
    window_to_uint8,
)

__all__ = [
    "MAX_IMAGE_BYTES",
    "PRESETS",
    "Volume",
    "Window",
    "colour_to_uint8",
    "file_windows",
    "full_range_window",
    "load_slice",
    "load_volume",
    "window_to_uint8",
]
