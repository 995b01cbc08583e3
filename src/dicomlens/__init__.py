"""dicomlens: see, query, fix and use what is inside DICOM files.

pydicom inside, pydicom outside: functions take and return pydicom datasets
and plain Python values.

>>> import dicomlens as dl
>>> dl.lookup("(0028, 1050)").keyword
'WindowCenter'

The names below are imported on first use (PEP 562), so that ``import
dicomlens`` and the command line start fast and load only what they need.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from dicomlens._version import __version__

if TYPE_CHECKING:
    from dicomlens.access import Match, find, get
    from dicomlens.anonymization import IdentityMap, Keys, anonymize, deidentify
    from dicomlens.differences import Difference, diff
    from dicomlens.editing import edit
    from dicomlens.errors import (
        AnonymizationError,
        CatalogError,
        CorruptDicomError,
        DicomlensError,
        DicomlensWarning,
        EditError,
        ElementNotFoundError,
        FileError,
        NotDicomError,
        RetiredTagWarning,
        SeriesError,
        TagSyntaxError,
        TruncatedPixelDataWarning,
        UnknownTagError,
        UsageError,
        WriteError,
    )
    from dicomlens.profile import Profile
    from dicomlens.reading import read
    from dicomlens.scanning import Series, scan
    from dicomlens.tags import TagInfo, TagPath, format_tag, lookup, parse_tag, search_tags
    from dicomlens.volume import Volume

__all__ = [
    "AnonymizationError",
    "CatalogError",
    "CorruptDicomError",
    "DicomlensError",
    "DicomlensWarning",
    "Difference",
    "EditError",
    "ElementNotFoundError",
    "FileError",
    "IdentityMap",
    "Keys",
    "Match",
    "NotDicomError",
    "Profile",
    "RetiredTagWarning",
    "Series",
    "SeriesError",
    "TagInfo",
    "TagPath",
    "TagSyntaxError",
    "TruncatedPixelDataWarning",
    "UnknownTagError",
    "UsageError",
    "Volume",
    "WriteError",
    "__version__",
    "anonymize",
    "deidentify",
    "diff",
    "edit",
    "find",
    "format_tag",
    "get",
    "lookup",
    "parse_tag",
    "read",
    "scan",
    "search_tags",
]

_HOMES = {
    "IdentityMap": "anonymization",
    "Keys": "anonymization",
    "anonymize": "anonymization",
    "deidentify": "anonymization",
    "Profile": "profile",
    "Match": "access",
    "find": "access",
    "get": "access",
    "Difference": "differences",
    "diff": "differences",
    "edit": "editing",
    "read": "reading",
    "Series": "scanning",
    "scan": "scanning",
    "Volume": "volume",
    "TagInfo": "tags",
    "TagPath": "tags",
    "format_tag": "tags",
    "lookup": "tags",
    "parse_tag": "tags",
    "search_tags": "tags",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(f"dicomlens.{_HOMES.get(name, 'errors')}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dicomlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


logging.getLogger(__name__).addHandler(logging.NullHandler())
