"""Which file system a path is on (Linux ``/proc/self/mountinfo``): SQLite's WAL
mode needs shared memory on one host, so a catalog on a network file system uses a
rollback journal instead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["NETWORK_FILESYSTEMS", "filesystem_type", "is_network_filesystem"]

NETWORK_FILESYSTEMS: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs",
     "lustre", "gpfs", "beegfs", "fuse.sshfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse"}
)  # fmt: skip
_MOUNTINFO: Final = Path("/proc/self/mountinfo")


def filesystem_type(path: str | os.PathLike[str], mountinfo: Path = _MOUNTINFO) -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``nfs4``…), or None when
    the system does not say (not Linux).

    >>> filesystem_type("/proc") if _MOUNTINFO.exists() else "proc"
    'proc'
    """
    try:
        lines = mountinfo.read_text(errors="replace").splitlines()
    except OSError:
        return None
    where = os.path.realpath(path)
    best, found = -1, None
    for line in lines:
        fields, _, after = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not after:
            continue
        mount_point = _unescape(parts[4])
        inside = where == mount_point or where.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= best:  # the last of equal mounts is on top
            best, found = len(mount_point), after.split()[0]
    return found


def is_network_filesystem(path: str | os.PathLike[str]) -> str | None:
    """The network file system type holding ``path``, or None for a local one."""
    kind = filesystem_type(path)
    return kind if kind in NETWORK_FILESYSTEMS else None


def _unescape(field: str) -> str:
    """Mount points escape space, tab, newline and backslash as octal (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
