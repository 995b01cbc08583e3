"""Editing DICOM files, and writing any file safely: the one place dicomlens writes.

- :mod:`~dicomlens.editing.writing`: :func:`atomic_output` (a temporary file moved
  over the target only when complete) and folder syncing;
- :mod:`~dicomlens.editing.operations`: :class:`Edit` and :func:`apply_edits` on a
  dataset in memory;
- :mod:`~dicomlens.editing.files`: :func:`edit` for files and folders.
"""

from dicomlens.editing.files import FileEdit, edit, read_for_writing, recording_failures
from dicomlens.editing.operations import Action, Change, Edit, apply_edits
from dicomlens.editing.writing import (
    atomic_output,
    fsync_path,
    is_within,
    remove_stale_temporaries,
    sync_folders,
)

__all__ = [
    "Action",
    "Change",
    "Edit",
    "FileEdit",
    "apply_edits",
    "atomic_output",
    "edit",
    "fsync_path",
    "is_within",
    "read_for_writing",
    "recording_failures",
    "remove_stale_temporaries",
    "sync_folders",
]
