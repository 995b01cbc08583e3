"""Group slices into series, sort them in space and describe their geometry (pure).

Coordinates are DICOM patient coordinates (LPS, millimetres). A slice is one
2-D image: a single-frame file, or one frame of an enhanced multi-frame file.
The volume axes are ``(i, j, k)`` = (column, row, slice): ``affine_lps`` maps
an index ``(i, j, k, 1)`` to a point; see ``docs/coordinates.md``.

- :mod:`~dicomlens.series.slices`: what each image's header says (:class:`SliceInfo`);
- :mod:`~dicomlens.series.grouping`: slices into series, split where images differ;
- :mod:`~dicomlens.series.geometry`: spatial order, the geometry report, the affine.
"""

from dicomlens.series.geometry import (
    SPACING_ATOL,
    Gap,
    GeometryReport,
    affine_lps,
    lps_to_ras,
    orientation_label,
    planar_spacing,
    seconds_of_day,
    slice_step,
    sort_slices,
    volume_key,
)
from dicomlens.series.grouping import ORIENTATION_ATOL, Split, group_slices
from dicomlens.series.slices import (
    HEADER_TAGS,
    NativePixels,
    SliceInfo,
    number_or_none,
    precise_values,
    read_by_slice_infos,
    slice_infos,
)

__all__ = [
    "HEADER_TAGS",
    "ORIENTATION_ATOL",
    "SPACING_ATOL",
    "Gap",
    "GeometryReport",
    "NativePixels",
    "SliceInfo",
    "Split",
    "affine_lps",
    "group_slices",
    "lps_to_ras",
    "number_or_none",
    "orientation_label",
    "planar_spacing",
    "precise_values",
    "read_by_slice_infos",
    "seconds_of_day",
    "slice_infos",
    "slice_step",
    "sort_slices",
    "volume_key",
]
