"""The writer lock of a catalog (SQLite file or Parquet dataset): one indexer at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from dicomlens.errors import CatalogError
from dicomlens.processes import is_alive

__all__ = ["writer_lock"]

_DEAD_HOLDER_WAIT: Final = 10.0  # seconds


@contextlib.contextmanager
def writer_lock(lock_path: Path, what: Path) -> Iterator[None]:
    """Hold the lock file ``lock_path`` of catalog ``what``: a second writer is refused,
    naming the process that holds it."""
    handle = lock_path.open("a+")
    try:
        if not _lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CatalogError(
                f"{what}: catalog is being indexed by PID {holder}; run again when it has finished"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _lock(handle: Any) -> bool:
    """Take the lock. When its recorded holder is gone (killed), its worker processes
    may still hold it for a moment: wait for them, a few seconds at most."""
    deadline = time.monotonic() + _DEAD_HOLDER_WAIT
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            if (holder.isdigit() and is_alive(int(holder))) or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
