"""Element-by-element differences between two datasets, or two folders of files.

Sequences are compared item by item; binary values (pixel data above all) are
compared by SHA-256 so that the report stays short.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomlens.access import element_path_step
from dicomlens.errors import FileError
from dicomlens.reading import iter_files, read_files
from dicomlens.values import value_text

__all__ = ["Difference", "DifferenceKind", "FolderDiff", "diff", "diff_folders"]

_HASHED_LENGTH: Final = 64
_SHOWN_WIDTH: Final = 60


class DifferenceKind(Enum):
    """How an element differs."""

    CHANGED = "~"
    ONLY_A = "-"
    ONLY_B = "+"


@dataclass(frozen=True)
class Difference:
    """One difference: the element's path, how it differs, and both sides as text."""

    path: str
    change: DifferenceKind
    a: str = ""
    b: str = ""

    def __str__(self) -> str:
        if self.change is DifferenceKind.CHANGED:
            return f"{self.change.value} {self.path}: {self.a} -> {self.b}"
        shown = self.a if self.change is DifferenceKind.ONLY_A else self.b
        return f"{self.change.value} {self.path}: {shown}"


def diff(a: Dataset, b: Dataset, *, file_meta: bool = True) -> list[Difference]:
    """Differences between two datasets, file meta first, at every depth.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.reading import read
    >>> a = read(get_testdata_file("CT_small.dcm"))
    >>> b = read(get_testdata_file("CT_small.dcm"))
    >>> b.PatientName = "Other^Name"
    >>> del b.OtherPatientIDsSequence[1].TypeOfPatientID
    >>> for difference in diff(a, b):
    ...     print(difference)
    ~ PatientName: CompressedSamples^CT1 -> Other^Name
    - OtherPatientIDsSequence[1].TypeOfPatientID: TEXT
    """
    found: list[Difference] = []
    meta_a, meta_b = getattr(a, "file_meta", None), getattr(b, "file_meta", None)
    if file_meta and (meta_a is not None or meta_b is not None):
        found += _diff_datasets(meta_a or Dataset(), meta_b or Dataset(), "")
    found += _diff_datasets(a, b, "")
    return found


def _diff_datasets(a: Dataset, b: Dataset, prefix: str) -> list[Difference]:
    found: list[Difference] = []
    for tag in sorted(set(a.keys()) | set(b.keys())):
        in_a, in_b = tag in a, tag in b
        element = a[tag] if in_a else b[tag]
        path = prefix + element_path_step(element)
        if not in_b:
            found.append(Difference(path, DifferenceKind.ONLY_A, a=_shown(element)))
        elif not in_a:
            found.append(Difference(path, DifferenceKind.ONLY_B, b=_shown(element)))
        else:
            found += _diff_elements(a[tag], b[tag], path)
    return found


def _diff_elements(a: DataElement, b: DataElement, path: str) -> list[Difference]:
    if a.VR == "SQ" and b.VR == "SQ":
        return _diff_sequences(a.value, b.value, path)
    found = []
    if a.VR != b.VR:
        found.append(Difference(f"{path} VR", DifferenceKind.CHANGED, str(a.VR), str(b.VR)))
    if _comparable(a) != _comparable(b):
        found.append(Difference(path, DifferenceKind.CHANGED, _shown(a), _shown(b)))
    return found


def _diff_sequences(a: list[Dataset], b: list[Dataset], path: str) -> list[Difference]:
    found: list[Difference] = []
    for position in range(max(len(a), len(b))):
        here = f"{path}[{position}]"
        if position >= len(b):
            found.append(
                Difference(here, DifferenceKind.ONLY_A, a=f"<item of {len(a[position])} elements>")
            )
        elif position >= len(a):
            found.append(
                Difference(here, DifferenceKind.ONLY_B, b=f"<item of {len(b[position])} elements>")
            )
        else:
            found += _diff_datasets(a[position], b[position], here + ".")
    return found


def _comparable(element: DataElement) -> Any:
    value = element.value
    if isinstance(value, bytes | bytearray):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, list | MultiValue | Sequence):
        return [str(v) for v in value]
    return str(value) if value is not None else ""


def _shown(element: DataElement) -> str:
    value = element.value
    if element.VR == "SQ":
        return value_text(value)
    if isinstance(value, bytes | bytearray) and len(value) > _HASHED_LENGTH:
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}>"
    return value_text(value, limit=_SHOWN_WIDTH)


# ---------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderDiff:
    """Two folders compared file by file, matched by SOP Instance UID."""

    pairs: list[tuple[Path, Path, list[Difference]]]
    only_a: list[Path]
    only_b: list[Path]
    errors: list[FileError]

    @property
    def identical(self) -> bool:
        return not (self.only_a or self.only_b or self.errors) and all(
            not found for _, _, found in self.pairs
        )


def diff_folders(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> FolderDiff:
    """Compare every DICOM file under ``a`` with the file under ``b`` that has the
    same SOP Instance UID. Non-DICOM files are ignored; damaged ones are listed."""
    files_a, errors = _by_uid(a)
    files_b, errors_b = _by_uid(b)
    pairs = []
    for uid in files_a.keys() & files_b.keys():
        (path_a, ds_a), (path_b, ds_b) = files_a[uid], files_b[uid]
        pairs.append((path_a, path_b, diff(ds_a, ds_b)))
    pairs.sort(key=lambda pair: str(pair[0]))
    return FolderDiff(
        pairs,
        sorted(path for uid, (path, _) in files_a.items() if uid not in files_b),
        sorted(path for uid, (path, _) in files_b.items() if uid not in files_a),
        errors + errors_b,
    )


def _by_uid(
    folder: str | os.PathLike[str],
) -> tuple[dict[str, tuple[Path, Dataset]], list[FileError]]:
    found: dict[str, tuple[Path, Dataset]] = {}
    errors: list[FileError] = []
    for result in read_files(list(iter_files([folder])), stop_before_pixels=False):
        if result.ignorable:
            continue
        if result.error is not None:
            errors.append(result.error)
            continue
        assert result.dataset is not None
        uid = str(result.dataset.get("SOPInstanceUID", "") or result.path.name)
        if uid in found:
            errors.append(FileError(f"{result.path}: same SOP Instance UID as {found[uid][0]}"))
        else:
            found[uid] = (result.path, result.dataset)
    return found, errors
