"""Writing files safely: the one place dicomlens writes to disk.

:func:`atomic_output` gives writers a temporary path beside the target; only
when the writer finishes is the file flushed to disk and moved over the target,
so a crash, a full disk or an exception never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dicomlens.errors import WriteError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success, move it over ``target``.

    The temporary file is synced before the rename and the folder after it.
    On any failure it is removed and ``target`` is left as it was.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "out.txt").read_text()
    'done'
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise WriteError(f"{target}: already exists")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".", suffix=f".tmp.{target.name}")
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as fh:
            os.fsync(fh.fileno())
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
        _fsync_folder(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
