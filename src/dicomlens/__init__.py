"""dicomlens: see, query, fix and use what is inside DICOM files.

pydicom inside, pydicom outside: functions take and return pydicom datasets
and plain Python values.

>>> import dicomlens as dl
>>> dl.lookup("(0028, 1050)").keyword
'WindowCenter'
"""

import logging

from dicomlens.access import Match, find, get
from dicomlens.differences import Difference, diff
from dicomlens.errors import (
    CorruptDicomError,
    DicomlensError,
    DicomlensWarning,
    ElementNotFoundError,
    FileError,
    NotDicomError,
    RetiredTagWarning,
    TagSyntaxError,
    UnknownTagError,
    UsageError,
)
from dicomlens.reading import read
from dicomlens.tags import TagInfo, TagPath, format_tag, lookup, parse_tag, search_tags

__version__ = "0.1.0"

__all__ = [
    "CorruptDicomError",
    "DicomlensError",
    "DicomlensWarning",
    "Difference",
    "ElementNotFoundError",
    "FileError",
    "Match",
    "NotDicomError",
    "RetiredTagWarning",
    "TagInfo",
    "TagPath",
    "TagSyntaxError",
    "UnknownTagError",
    "UsageError",
    "__version__",
    "diff",
    "find",
    "format_tag",
    "get",
    "lookup",
    "parse_tag",
    "read",
    "search_tags",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
