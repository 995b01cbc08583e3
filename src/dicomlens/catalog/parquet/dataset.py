"""A Parquet catalog folder: its manifest, its parts, and the one process writing it.

Workers write each part into ``DIR/.incoming/NAME``; the writer moves it to
``DIR/parts/NAME`` (one rename: a part is there whole or not at all) and lists it
in ``manifest.json``, rewritten through a temporary file and a rename. A killed
run leaves a readable dataset: the next run adopts parts that were moved but not
yet listed, clears the incoming folder, and goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from dicomlens.catalog.locking import writer_lock
from dicomlens.catalog.parquet.format import TABLES, rows_version_of
from dicomlens.errors import CatalogError, UsageError

__all__ = ["FORMAT", "MANIFEST", "ParquetDataset", "parse_manifest", "part_files"]

FORMAT: Final = "dicomlens-parquet"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
_SAVE_EVERY: Final = 2.0  # seconds between manifest rewrites while parts come in


class ParquetDataset:
    """The folder of a Parquet catalog and its manifest (the committed parts)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        if "://" in str(folder):
            raise UsageError(
                f"{folder}: a Parquet catalog is written into a folder (a shared file system "
                "for a cluster); URLs are for reading"
            )
        self.folder = Path(folder).absolute()
        self.manifest = self._read_manifest()
        self._saved = time.monotonic()

    @property
    def exists(self) -> bool:
        return (self.folder / MANIFEST).is_file()

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The committed parts: name and row count of each table."""
        parts: list[dict[str, Any]] = self.manifest["parts"]
        return parts

    def files(self, table: str) -> list[str]:
        """The Parquet files of one table, in part order."""
        return part_files(str(self.folder), self.parts, table)

    def _read_manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        if not path.is_file():
            return {"format": FORMAT, "version": VERSION, "next_part": 1, "next_ordinal": 0,
                    "parts": []}  # fmt: skip
        try:
            text = path.read_text()
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read ({exc.strerror})") from exc
        return parse_manifest(text, str(path))

    # -- writing ------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[ParquetDataset]:
        """Hold the writer lock; adopt what a killed run left; save the manifest at the end."""
        self._create()
        with writer_lock(self.folder / ".lock", self.folder):
            self.manifest = self._read_manifest()
            self._recover()
            self.save()  # from now on the folder is a readable dataset
            try:
                yield self
            finally:
                self.save()
                shutil.rmtree(self.folder / ".incoming", ignore_errors=True)

    def _create(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise CatalogError(f"{self.folder}: not a folder")
        if self.folder.is_dir() and not self.exists:
            strangers = [p.name for p in self.folder.iterdir() if p.name not in _OWN]
            if strangers:
                raise CatalogError(
                    f"{self.folder}: not a dicomlens Parquet catalog (it holds {strangers[0]}); "
                    "name a new or empty folder"
                )
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds PHI
            (self.folder / "parts").mkdir(exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"{self.folder}: cannot create ({exc.strerror})") from exc

    def _recover(self) -> None:
        """List the parts a killed run moved into place; drop what it left half-written."""
        listed = {part["name"] for part in self.parts}
        for folder in sorted((self.folder / "parts").iterdir()):
            if folder.name not in listed and all(
                (folder / f"{t}.parquet").is_file() for t in TABLES
            ):
                self._list(folder.name)
        shutil.rmtree(self.folder / ".incoming", ignore_errors=True)

    def new_part(self) -> tuple[str, Path]:
        """A fresh part name, and the incoming folder its writer fills."""
        number = self.manifest["next_part"]
        self.manifest["next_part"] = number + 1
        name = f"{number:08d}-{uuid.uuid4().hex[:8]}"
        return name, self.folder / ".incoming" / name

    def reserve(self, count: int) -> int:
        """The first of ``count`` new ordinals (the order files are listed in)."""
        first: int = self.manifest["next_ordinal"]
        self.manifest["next_ordinal"] = first + count
        return first

    def commit(self, name: str) -> None:
        """Move a written part into place and list it (the manifest is saved every few
        seconds, and at the end: a part moved but not listed is adopted by the next run)."""
        try:
            os.replace(self.folder / ".incoming" / name, self.folder / "parts" / name)
        except OSError as exc:
            raise CatalogError(
                f"{self.folder}: cannot commit part {name} ({exc.strerror})"
            ) from exc
        self._list(name)
        if time.monotonic() - self._saved > _SAVE_EVERY:
            self.save()

    def _list(self, name: str) -> None:
        import pyarrow.parquet as pq

        folder = self.folder / "parts" / name
        counts = {t: pq.read_metadata(folder / f"{t}.parquet").num_rows for t in TABLES}
        self.parts.append({"name": name, **counts, "rows_version": rows_version_of(folder)})
        number = name.partition("-")[0]
        if number.isdigit():  # never reuse the number of an adopted part
            self.manifest["next_part"] = max(self.manifest["next_part"], int(number) + 1)

    def drop(self, names: set[str]) -> None:
        """Unlist parts (after compaction), save, then delete their folders."""
        self.manifest["parts"] = [part for part in self.parts if part["name"] not in names]
        self.save()
        for name in names:
            shutil.rmtree(self.folder / "parts" / name, ignore_errors=True)

    def save(self) -> None:
        """Write the manifest: to a temporary file, synced, then renamed over the old one."""
        path = self.folder / MANIFEST
        temporary = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        try:
            with temporary.open("w") as handle:
                json.dump(self.manifest, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise CatalogError(f"{path}: cannot write ({exc.strerror})") from exc
        self._saved = time.monotonic()


def parse_manifest(text: str, where: str) -> dict[str, Any]:
    """A manifest's content, checked (``where`` names it in errors)."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"{where}: not a dicomlens Parquet catalog ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CatalogError(f"{where}: not a dicomlens Parquet catalog manifest")
    if manifest.get("version") != VERSION:
        raise CatalogError(
            f"{where}: Parquet catalog v{manifest.get('version')}, this dicomlens writes "
            f"v{VERSION}: write it again into a new folder"
        )
    return manifest


def part_files(root: str, parts: list[dict[str, Any]], table: str) -> list[str]:
    """The files of one table of the ``parts`` of the dataset at ``root`` (a folder or URL)."""
    return [f"{root.rstrip('/')}/parts/{part['name']}/{table}.parquet" for part in parts]


_OWN: Final = frozenset({MANIFEST, "parts", ".incoming", ".lock"})
