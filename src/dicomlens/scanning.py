"""Scan folders into series: read headers, group, sort, report.

>>> from pydicom.data import get_testdata_file
>>> [s.modality for s in scan([get_testdata_file("CT_small.dcm")])]
['CT']
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy.typing as npt
from pydicom.dataset import FileDataset

from dicomlens.errors import FileError, SeriesError
from dicomlens.reading import (
    Layout,
    ReadResult,
    decode_elements,
    in_processes,
    iter_files,
    read_with_layout,
)
from dicomlens.series import (
    HEADER_TAGS,
    GeometryReport,
    SliceInfo,
    Split,
    group_slices,
    planar_spacing,
    read_by_slice_infos,
    slice_infos,
    sort_slices,
)
from dicomlens.volume import MAX_IMAGE_BYTES, Volume, load_volume
from dicomlens.volume.mosaic import mosaic_grid
from dicomlens.volume.pixels import Allocator

_DEFER_BYTES = 16384

__all__ = ["ScanResult", "Series", "group_series", "scan", "scan_folder", "select_series"]


@dataclass
class Series:
    """One series (or one part of a split series), sorted, with its geometry report."""

    slices: list[SliceInfo]
    report: GeometryReport
    split: Split | None = None

    @property
    def split_reason(self) -> str:
        """``split by echo: part 1 of 2`` for a part of a split series, else empty."""
        return str(self.split) if self.split else ""

    def split_by(self, field: str) -> bool:
        """Whether this is a part of a series split where ``field`` ("echo", "image
        type", ...) differs."""
        return self.split is not None and field in self.split.fields

    @property
    def first(self) -> SliceInfo:
        return self.slices[0]

    @property
    def uid(self) -> str:
        return self.first.series_instance_uid

    @property
    def number(self) -> int | None:
        return self.first.series_number

    @property
    def description(self) -> str:
        return self.first.series_description

    @property
    def modality(self) -> str:
        return self.first.modality

    @property
    def files(self) -> int:
        return len({s.path for s in self.slices})

    @property
    def shape(self) -> tuple[int, ...]:
        """Rows x columns x slices, and x volumes for a 4-D series (a mosaic's rows and
        columns are those of one tile)."""
        rows, columns, volumes = self.first.rows, self.first.columns, self.report.volumes
        if self.first.mosaic and self.first.mosaic_slices:
            across, side = mosaic_grid(self.first)
            rows, columns = rows // across, columns // side
            return (rows, columns, self.first.mosaic_slices, volumes)[: 4 if volumes > 1 else 3]
        if volumes > 1:
            return (rows, columns, self.report.slices, volumes)
        return (rows, columns, len(self.slices))

    def volume(
        self,
        *,
        rescale: bool = True,
        dtype: npt.DTypeLike | None = None,
        strict: bool = False,
        allow_incomplete: bool = False,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        allocate: Allocator | None = None,
        philips_precise: bool = True,
    ) -> Volume:
        """Load the pixels (see :func:`dicomlens.volume.load_volume`)."""
        return load_volume(self.slices, self.report, rescale=rescale, dtype=dtype, strict=strict,
                           allow_incomplete=allow_incomplete, max_image_bytes=max_image_bytes,
                           allocate=allocate, philips_precise=philips_precise)  # fmt: skip

    def one_volume(self, number: int) -> Series:
        """Volume ``number`` of a 4-D series as a 3-D series of its own (to read one
        volume, not all); the series itself when it is 3-D or incomplete."""
        volumes, report = self.report.volumes, self.report
        if volumes == 1 or report.incomplete or not 0 <= number < volumes:
            return self
        depth = 1 if self.first.mosaic else len(self.slices) // volumes
        part = self.slices[number * depth : (number + 1) * depth]
        return Series(part, dataclasses.replace(report, volumes=1, notes=list(report.notes)),
                      self.split)  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """One row for ``dicomlens series``."""
        spacing = planar_spacing(self.first)[0] if self.report.kind == "2-D" else None
        spacing = spacing or self.first.pixel_spacing
        return {
            "number": self.number,
            "description": self.description,
            "modality": self.modality,
            "files": self.files,
            "shape": list(self.shape),
            "spacing": [*spacing, self.report.spacing_mm] if spacing else None,
            "orientation": self.report.orientation,
            "kind": self.report.kind,
            "verdict": self.report.verdict,
            "split": self.split_reason,
            "uid": self.uid,
        }

    def __str__(self) -> str:
        return f"series {self.number} {self.description!r} ({self.modality}, {self.shape})"


@dataclass
class ScanResult:
    """Series found under some paths, and what could not be used."""

    series: list[Series]
    errors: list[FileError] = field(default_factory=list)
    skipped: int = 0
    not_images: int = 0


def scan_folder(
    paths: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Read the headers of every file under ``paths`` and group them into series.

    Non-DICOM files found in folders are counted in ``skipped``, DICOM files
    without pixels (reports, plans, DICOMDIR) in ``not_images``; damaged files
    are listed in ``errors``. ``progress`` is called with the count of files read.

    Parameters
    ----------
    workers
        Processes that read headers (default: one per core; 1 reads in this
        process). Small batches are always read here.
    """
    result = ScanResult([])
    infos: list[SliceInfo] = []
    reads = in_processes(_scan_one, list(iter_files(paths)), workers=workers or os.cpu_count() or 1)
    for count, item in enumerate(reads, start=1):
        if progress is not None:
            progress(count)
        if item.ignorable:
            result.skipped += 1
        elif item.error is not None:
            result.errors.append(item.error)
        elif item.value is None:
            result.not_images += 1
        else:
            infos.extend(item.value)
    result.series = group_series(infos)
    return result


def group_series(infos: Iterable[SliceInfo]) -> list[Series]:
    """Slices (from headers or a catalog) grouped into sorted series, ordered by number."""
    series = []
    for members, split in group_slices(infos):
        ordered, report = sort_slices(members)
        series.append(Series(ordered, report, split))
    series.sort(key=lambda s: (s.number is None, s.number or 0, s.description, s.uid))
    return series


# Per process: the layouts of the files read whole last (the most recently used first),
# against which the next slices of a series are read (reading.layouts).
_layouts: list[tuple[Layout, FileDataset]] = []
_LAYOUTS_KEPT: Final = 4


def _scan_one(file: tuple[Path, FileError | None, bool]) -> ReadResult:
    """One listed file's slices: read against a recent file's layout when it has the
    same (pydicom then parses only the elements whose bytes differ), else read whole
    with every check; the geometry's elements decoded as :func:`read` decodes them.
    Pixel data stays in the file, its offset kept: volumes read it from there."""
    path, error, explicit = file
    if error is not None:
        return ReadResult(path, error=error, explicit=explicit)
    ds = None
    for position, (layout, like) in enumerate(_layouts):
        likeness = layout.read_like(path)
        if likeness is not None:
            # read only: decoded values shared, and only what the geometry reads
            ds = likeness.dataset(like, share=True, only=read_by_slice_infos)
            _layouts.insert(0, _layouts.pop(position))
            break
    try:
        if ds is None:
            ds, _, made = read_with_layout(path, defer_size=_DEFER_BYTES)
            if made is not None:
                _layouts.insert(0, (made, ds))
                del _layouts[_LAYOUTS_KEPT:]
        decode_elements(ds, path, HEADER_TAGS)
    except FileError as exc:
        return ReadResult(path, error=exc, explicit=explicit)
    return ReadResult(path, explicit=explicit, value=_image_slices(ds))


def _image_slices(ds: FileDataset) -> list[SliceInfo] | None:
    """The slices of an image file; None for files without pixels (reports, plans)."""
    return slice_infos(ds, Path(str(ds.filename))) if "Rows" in ds else None


def scan(paths: Iterable[str | os.PathLike[str]]) -> list[Series]:
    """The series under ``paths``, grouped and sorted; raises if a file is damaged.

    Use :func:`scan_folder` to go on past damaged files.
    """
    result = scan_folder(paths)
    if result.errors:
        raise result.errors[0]
    return result.series


def select_series(series: list[Series], wanted: str | None) -> Series:
    """The series named by number or UID (``N:P`` or ``UID:P``: part P of a split
    series), the only one, or the largest part of the only series; otherwise a clear
    error."""
    labels = _labels(series)
    if wanted is None:
        if len(series) == 1:
            return series[0]
        if len({s.uid for s in series}) == 1:  # the parts of one series: the largest
            return _largest_part(series, labels)
        listing = "; ".join(
            f"{label} {s.description!r} ({s.uid})" for s, label in zip(series, labels, strict=True)
        )
        raise SeriesError(f"{len(series)} series found, choose one with --series: {listing}")
    name, _, part = wanted.rpartition(":") if ":" in wanted else (wanted, "", "")
    matches = [s for s in series if name in (str(s.number), s.uid)]
    one_split = len({s.uid for s in matches}) == 1
    if one_split and part.isdigit() and 1 <= int(part) <= len(matches):
        return matches[int(part) - 1]
    if len(matches) == 1 and not part:
        return matches[0]
    if len(matches) > 1 and one_split and not part:
        parts = ", ".join(f"{name}:{n}" for n in range(1, len(matches) + 1))
        raise SeriesError(f"series {name} is split in {len(matches)} parts: choose one of {parts}")
    raise SeriesError(f"no single series {wanted!r} (series here: {', '.join(labels)})")


def _largest_part(parts: list[Series], labels: list[str]) -> Series:
    """The part of a split series with the most slices, its report saying so."""
    largest = max(range(len(parts)), key=lambda n: (len(parts[n].slices), -n))
    chosen = parts[largest]
    others = ", ".join(label for n, label in enumerate(labels) if n != largest)
    chosen.report.notes.append(
        f"series {labels[largest].split(':')[0]} is {chosen.split.why if chosen.split else ''}; "
        f"part {labels[largest]} is the largest and was chosen (--series {others} for the other)"
    )
    return chosen


def _labels(series: list[Series]) -> list[str]:
    """How --series names each: its number (its UID without one), with ``:P`` for the
    parts of a split series (in order: they keep the order of their grouping)."""
    names = [str(s.uid if s.number is None else s.number) for s in series]
    keys = [(name, s.uid) for name, s in zip(names, series, strict=True)]
    seen: dict[tuple[str, str], int] = {}
    labels = []
    for name, key in zip(names, keys, strict=True):
        seen[key] = seen.get(key, 0) + 1
        labels.append(f"{name}:{seen[key]}" if keys.count(key) > 1 else name)
    return labels
