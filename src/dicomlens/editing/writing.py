"""Writing files safely: the one place dicomlens writes to disk.

:func:`atomic_output` gives writers a temporary path beside the target; only
when the writer finishes is the file flushed to disk and moved over the target,
so a crash, a full disk or an exception never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from dicomlens.errors import WriteError
from dicomlens.processes import is_alive

__all__ = ["atomic_output", "fsync_path", "is_within", "remove_stale_temporaries", "sync_folders"]


@contextlib.contextmanager
def atomic_output(
    target: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    sync_folder: bool = True,
    mode: int | None = None,
    durable: bool = True,
) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success, move it over ``target``.

    The temporary file is synced before the rename and the folder after it
    (batch writers may pass ``sync_folder=False`` and sync each folder once at
    the end); with ``durable=False`` neither is (for outputs that can be made again:
    other programs still never see a partial file, but a power cut may lose it).
    The file gets ``mode`` if given, else the mode of the file it replaces, else
    the default for new files. On any failure it is removed and ``target`` is left
    as it was.

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
        suffix = f".{os.getpid()}.tmp.{target.name}"  # the PID tells a stale one
        fd, name = tempfile.mkstemp(dir=folder, prefix=".", suffix=suffix)
    except OSError as exc:
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            with temporary.open("rb+") as fh:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        elif target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
        if sync_folder and durable:
            fsync_path(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise WriteError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


_TEMPORARY: Final = re.compile(r"\.[^.]+\.([0-9]+)\.tmp\..")  # as atomic_output names them


def remove_stale_temporaries(folders: Iterable[Path]) -> None:
    """Delete the temporary files that writers killed before they finished left in
    ``folders`` (:func:`atomic_output`'s, of processes gone; RELIABILITY W2). Others
    are left alone, as is what cannot be listed or deleted: it stays hidden."""
    for folder in set(folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            found = _TEMPORARY.match(name)
            if found and not is_alive(int(found[1])):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries: a rename in it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folders(written: Iterable[Path | None]) -> None:
    """Make the renames of a batch durable: the folder of each written file synced once."""
    for folder in sorted({path.parent for path in written if path is not None}):
        fsync_path(folder)


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (links resolved): a batch's own output."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
