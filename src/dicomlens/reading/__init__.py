"""Read DICOM files and walk folders: the only place dicomlens reads files.

:func:`read` wraps :func:`pydicom.dcmread` with the checks pydicom leaves out
(files too short, truncated meta or data set, forced reads of junk) and turns
every failure into a one-line :class:`~dicomlens.errors.FileError` that names
the file. :func:`iter_files` lists folders and :func:`read_files` reads batches
(:mod:`~dicomlens.reading.files`); :class:`Layout` reads the headers of similar
files fast, letting pydicom parse only what differs (:mod:`~dicomlens.reading.layouts`).
"""

from dicomlens.reading.decoding import plain_reason
from dicomlens.reading.files import (
    ReadResult,
    decode_elements,
    examine,
    fingerprint,
    has_executable_preamble,
    in_processes,
    is_dicomdir,
    iter_files,
    read,
    read_files,
)
from dicomlens.reading.layouts import CONTEXT_TAGS, LaidOut, Layout, Likeness, read_with_layout

__all__ = [
    "CONTEXT_TAGS",
    "LaidOut",
    "Layout",
    "Likeness",
    "ReadResult",
    "decode_elements",
    "examine",
    "fingerprint",
    "has_executable_preamble",
    "in_processes",
    "is_dicomdir",
    "iter_files",
    "plain_reason",
    "read",
    "read_files",
    "read_with_layout",
]
