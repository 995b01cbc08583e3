"""The catalog's row types and key columns (plain data; pydicom only for column types)."""

from __future__ import annotations

import itertools
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "LEVEL_COLUMNS",
    "ROWS_VERSION",
    "FileRow",
    "InstanceRow",
    "column_type",
    "scalar_pairs",
    "top_level_scalars",
]

ROWS_VERSION: Final = 1
"""The version of what a file's row holds (its columns, element JSON and slice fields).
Raise it whenever the same file would give another row (a new slice field, another
encoding): catalogs then read every file recorded by an older version again on their
next index, instead of keeping rows that lack what this version extracts."""

# Typed columns of each level: column name -> keyword (its values also stay in the JSON).
LEVEL_COLUMNS: Final[dict[str, dict[str, str]]] = {
    "patient": {
        "patient_id": "PatientID",
        "patient_name": "PatientName",
        "patient_birth_date": "PatientBirthDate",
        "patient_sex": "PatientSex",
    },
    "study": {
        "study_instance_uid": "StudyInstanceUID",
        "study_date": "StudyDate",
        "study_time": "StudyTime",
        "accession_number": "AccessionNumber",
        "study_id": "StudyID",
        "study_description": "StudyDescription",
    },
    "series": {
        "series_instance_uid": "SeriesInstanceUID",
        "modality": "Modality",
        "series_number": "SeriesNumber",
        "series_description": "SeriesDescription",
        "series_date": "SeriesDate",
        "body_part_examined": "BodyPartExamined",
        "protocol_name": "ProtocolName",
        "manufacturer": "Manufacturer",
        "manufacturer_model_name": "ManufacturerModelName",
    },
    "instance": {
        "sop_instance_uid": "SOPInstanceUID",
        "sop_class_uid": "SOPClassUID",
        "instance_number": "InstanceNumber",
        "rows": "Rows",
        "columns": "Columns",
        "number_of_frames": "NumberOfFrames",
        "slice_thickness": "SliceThickness",
        "acquisition_date": "AcquisitionDate",
    },
}


def column_type(keyword: str) -> Literal["INTEGER", "REAL", "TEXT"]:
    """The SQL type of a typed column, from its element's VR.

    >>> column_type("SeriesNumber"), column_type("SliceThickness"), column_type("Modality")
    ('INTEGER', 'REAL', 'TEXT')
    """
    # pydicom only when a catalog is created: re-indexing an unchanged tree needs none of it
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    vr = dictionary_VR(tag_for_keyword(keyword) or 0)
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return "INTEGER"
    return "REAL" if vr in ("DS", "FL", "FD") else "TEXT"


class InstanceRow(NamedTuple):
    """One DICOM instance: typed key attributes per level, slices and all elements."""

    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    transfer_syntax: str
    pixel_offset: int | None
    pixel_length: int | None
    slices: str  # JSON list of SliceInfo fields (without the path)
    elements: str  # JSON object: element key -> value(s)
    scalars: tuple[tuple[str, Any], ...] = ()
    """(element key, value) of every value of the top-level elements (not sequences),
    for the catalog's per-series value index; empty: taken from ``elements``."""


def top_level_scalars(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The (key, value) pairs of the values of an elements object's top-level elements.

    >>> top_level_scalars({"00180050": 1.5, "00080008": ["ORIGINAL", "M"], "00081140": [{}]})
    (('00180050', 1.5), ('00080008', 'ORIGINAL'), ('00080008', 'M'))
    """
    return tuple(itertools.chain.from_iterable(map(scalar_pairs, values.keys(), values.values())))


def scalar_pairs(key: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """The (key, value) pairs of one top-level element's values (none for a sequence).

    >>> scalar_pairs("00080008", ["ORIGINAL", None, "M"])
    (('00080008', 'ORIGINAL'), ('00080008', 'M'))
    """
    return tuple(
        (key, item)
        for item in (value if isinstance(value, list) else (value,))
        if item is not None and not isinstance(item, dict | list)
    )


class FileRow(NamedTuple):
    """One file: its fingerprint, and what it is (``instance``, ``error`` or ``other``)."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    kind: str
    reason: str = ""
    instance: InstanceRow | None = None
    rows_version: int = ROWS_VERSION  # another when copied from a catalog an earlier one made
