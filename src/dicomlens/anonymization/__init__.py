"""De-identification by DICOM PS3.15 Annex E, consistent across a whole run.

- :mod:`~dicomlens.anonymization.keys`: :class:`Keys`, the keyed replacements that
  give every reference to a UID, in any file of a run, the same new UID;
- :mod:`~dicomlens.anonymization.deidentifying`: :func:`deidentify` applies a
  :class:`~dicomlens.profile.Profile` to one dataset in memory;
- :mod:`~dicomlens.anonymization.verification`: :func:`find_leaks` proves the
  encoded output holds none of what was removed; :func:`burned_in_reason`;
- :mod:`~dicomlens.anonymization.files`: :func:`anonymize` for files and folders.
"""

from dicomlens.anonymization.deidentifying import Deidentified, Needle, deidentify
from dicomlens.anonymization.files import FileAnonymization, IdentityMap, anonymize
from dicomlens.anonymization.keys import Keys
from dicomlens.anonymization.verification import burned_in_reason, find_leaks

__all__ = [
    "Deidentified",
    "FileAnonymization",
    "IdentityMap",
    "Keys",
    "Needle",
    "anonymize",
    "burned_in_reason",
    "deidentify",
    "find_leaks",
]
