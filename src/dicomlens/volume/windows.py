"""Window/level: named presets, the windows a file defines, and 8-bit pictures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_windowing

__all__ = [
    "PRESETS",
    "Window",
    "colour_to_uint8",
    "file_windows",
    "full_range_window",
    "window_to_uint8",
]

PRESETS: Final[dict[str, tuple[float, float]]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
}
"""Named CT windows as (center, width) in Hounsfield units."""


@dataclass(frozen=True)
class Window:
    """A VOI window: center and width in modality units, and where it came from."""

    center: float
    width: float
    name: str = ""
    function: str = "LINEAR"


def file_windows(ds: Any) -> list[Window]:
    """Every window a dataset defines (multi-valued WindowCenter/Width), named by
    WindowCenterWidthExplanation when present."""
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return []
    centers = list(centers) if isinstance(centers, Sequence | MultiValue) else [centers]
    widths = list(widths) if isinstance(widths, Sequence | MultiValue) else [widths]
    names = ds.get("WindowCenterWidthExplanation") or []
    names = [names] if isinstance(names, str) else list(names)
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
    return [
        Window(float(c), float(w), names[i] if i < len(names) else f"window {i + 1}", function)
        for i, (c, w) in enumerate(zip(centers, widths, strict=False))
    ]


def window_to_uint8(values: NDArray[Any], window: Window) -> NDArray[np.uint8]:
    """Apply a window to modality values, giving 0..255 grey levels.

    pydicom's :func:`~pydicom.pixels.apply_windowing` does the VOI function
    (LINEAR, LINEAR_EXACT, SIGMOID); we only ask it for an 8-bit output range.
    """
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8
    voi.PixelRepresentation = 0
    voi.WindowCenter = window.center
    voi.WindowWidth = max(window.width, 1.0)
    voi.VOILUTFunction = window.function
    out = apply_windowing(np.asarray(values, dtype=np.float64), voi)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def colour_to_uint8(pixels: NDArray[Any]) -> NDArray[np.uint8]:
    """Colour samples (RGB, as pydicom decodes them) as 0..255: 8-bit data as it is,
    deeper data scaled by its maximum."""
    if pixels.dtype == np.uint8:
        return pixels
    high = float(pixels.max()) or 1.0
    return np.round(pixels / high * 255).astype(np.uint8)


def full_range_window(values: NDArray[Any]) -> Window:
    """A window spanning the values' whole range (when the file names none)."""
    low, high = float(np.min(values)), float(np.max(values))
    return Window((low + high) / 2, max(high - low, 1.0), "full range")
