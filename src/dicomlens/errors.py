"""Exception tree, warning categories and exit codes.

Every error dicomlens raises on purpose derives from :class:`DicomlensError` and
carries the process exit code the CLI should use for it:

* ``0`` success,
* ``1`` the operation failed (or some files of a batch failed),
* ``2`` usage error (bad arguments, bad tag notation, unknown keyword),
* ``130`` interrupted (Ctrl-C).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NOT_REGULAR",
    "AnonymizationError",
    "CatalogError",
    "CorruptDicomError",
    "DicomlensError",
    "DicomlensWarning",
    "EditError",
    "ElementNotFoundError",
    "FileError",
    "NotDicomError",
    "RetiredTagWarning",
    "SeriesError",
    "TagSyntaxError",
    "TruncatedPixelDataWarning",
    "UnknownTagError",
    "UsageError",
    "WriteError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DicomlensError(Exception):
    """Base for every error dicomlens raises on purpose."""

    exit_code: ClassVar[int] = EXIT_FAILED


class UsageError(DicomlensError):
    """The caller asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class TagSyntaxError(UsageError, ValueError):
    """A tag or tag path could not be parsed."""


class UnknownTagError(UsageError, LookupError):
    """A keyword or name is not in the data dictionary."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ElementNotFoundError(DicomlensError, LookupError):
    """A dataset has no element at the requested tag path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FileError(DicomlensError):
    """A file could not be read or is not usable (base of the reading errors)."""


NOT_REGULAR = "not a regular file (a device, a pipe or a socket)"  # reading it would wait


class NotDicomError(FileError):
    """The file is not a DICOM file (or is too short to be one)."""


class CorruptDicomError(FileError):
    """The file is DICOM but damaged: truncated, inconsistent lengths, bad values."""


class SeriesError(DicomlensError):
    """Slices cannot be assembled into a series or volume as asked."""


class EditError(DicomlensError, ValueError):
    """An edit cannot be applied: bad value for its VR, unknown VR, impossible path."""


class WriteError(DicomlensError):
    """An output file could not be written; the target is left as it was."""


class AnonymizationError(DicomlensError):
    """A file cannot be de-identified safely (burned-in text under ``strict``,
    or an original identifier found in the output); nothing was written."""


class CatalogError(DicomlensError):
    """The catalog cannot be opened, written or queried as asked."""


class DicomlensWarning(UserWarning):
    """Odd but usable data or input."""


class TruncatedPixelDataWarning(DicomlensWarning):
    """Pixel Data is shorter than its declared length (the header is still usable)."""


class RetiredTagWarning(DicomlensWarning):
    """A retired keyword or tag was used; the message names its current successor."""
