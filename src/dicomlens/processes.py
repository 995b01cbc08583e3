"""Other processes on this machine (pure standard library)."""

from __future__ import annotations

import os

__all__ = ["is_alive"]


def is_alive(pid: int) -> bool:
    """Whether a process with this ID exists on this machine (ours or another user's).

    >>> is_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True
