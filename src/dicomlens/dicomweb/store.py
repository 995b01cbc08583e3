"""STOW-RS (PS3.18 10.5): store instances sent as ``multipart/related`` into a folder.

Parts are spooled to hidden temporary files in the store folder while the body
arrives (a body cut short leaves nothing: the spool is removed); then each part
is read with pydicom, checked, written atomically as
``STORE/STUDY/SERIES/SOP.dcm`` and indexed. An instance whose SOP Instance UID
is already held with different bytes is refused, never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from dicomlens.catalog import Catalog, index
from dicomlens.dicomweb.problems import BadRequest
from dicomlens.editing import atomic_output, remove_stale_temporaries
from dicomlens.errors import DicomlensError
from dicomlens.reading import read

__all__ = ["Spool", "StoreResult", "clean_store", "store_parts"]

# Failure reasons (PS3.4 Annex B and PS3.18 Table 10.5.3-2)
PROCESSING_FAILURE: Final = 0x0110
DUPLICATE_INSTANCE: Final = 0x0111
STUDY_MISMATCH: Final = 0xA900
CANNOT_UNDERSTAND: Final = 0xC000
_UID: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SPOOL_SUFFIX: Final = ".tmp.stow-part"


def clean_store(folder: Path) -> None:
    """Remove the spool files of servers killed while receiving a body."""
    remove_stale_temporaries([folder])


@dataclass
class _Part:
    path: Path
    headers: dict[str, str] = field(default_factory=dict)


class Spool:
    """A ``multipart/related`` body parsed as it arrives, each part into a file.

    ``feed`` takes the body's chunks; ``finish`` checks it ended with its closing
    boundary; ``discard`` removes whatever is left on disk (always call it).
    """

    def __init__(self, folder: Path, boundary: str) -> None:
        self.folder = folder
        self.parts: list[_Part] = []
        self._file: Any = None
        self._header = (b"", b"")
        self._ended = False
        callbacks: Any = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
            "on_end": self._finished,
        }
        self._parser = MultipartParser(boundary, callbacks, max_header_count=16)

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"malformed multipart body ({exc})") from None

    def finish(self) -> None:
        self._parser.finalize()
        if not self._ended:
            raise BadRequest("malformed multipart body (no closing boundary)")
        if not self.parts:
            raise BadRequest("the multipart body holds no part")

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        for part in self.parts:
            part.path.unlink(missing_ok=True)

    def _begin(self) -> None:
        fd, name = tempfile.mkstemp(
            dir=self.folder, prefix=".", suffix=f".{os.getpid()}{_SPOOL_SUFFIX}"
        )
        self._file = os.fdopen(fd, "wb")
        self.parts.append(_Part(Path(name)))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._file.write(data[start:end])

    def _end(self) -> None:
        self._file.close()
        self._file = None

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0] + data[start:end], self._header[1])

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0], self._header[1] + data[start:end])

    def _header_end(self) -> None:
        name, value = self._header
        self.parts[-1].headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip()
        self._header = (b"", b"")

    def _finished(self) -> None:
        self._ended = True


@dataclass
class StoreResult:
    """The response dataset (DICOM JSON) and its HTTP status."""

    status: int
    dataset: dict[str, Any]


def store_parts(
    spool: Spool, folder: Path, catalog: Path, base_url: str, *, study: str | None = None
) -> StoreResult:
    """Check, write and index every part of ``spool``; the response dataset says which
    instances were stored and why the others were not."""
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    written: list[tuple[Path, dict[str, Any]]] = []
    for part in spool.parts:
        outcome = _store_one(part, folder, catalog, base_url, study)
        if isinstance(outcome, tuple):
            written.append(outcome)
        elif "00081197" in outcome:
            failed.append(outcome)
        else:
            stored.append(outcome)
    if written:
        report = index([path for path, _ in written], catalog)
        refused = {path for path, _ in report.errors}
        for path, item in written:
            if str(path) in refused:
                path.unlink(missing_ok=True)
                failed.append(_failure(item, PROCESSING_FAILURE))
            else:
                stored.append(item)
    response: dict[str, Any] = {}
    studies = {item["00081190"]["Value"][0].split("/series/")[0] for item in stored}
    if len(studies) == 1:
        response["00081190"] = {"vr": "UR", "Value": sorted(studies)}
    if failed:
        response["00081198"] = {"vr": "SQ", "Value": failed}
    if stored:
        response["00081199"] = {"vr": "SQ", "Value": stored}
    status = 200 if not failed else 202 if stored else 409
    return StoreResult(status, response)


def _store_one(
    part: _Part, folder: Path, catalog: Path, base_url: str, study: str | None
) -> dict[str, Any] | tuple[Path, dict[str, Any]]:
    """A stored item (already held), a failed item, or a new file and its item."""
    kind = part.headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
    try:
        if kind != "application/dicom":
            raise DicomlensError(f"a part of type {kind}")
        ds = read(part.path, stop_before_pixels=False)
        keys = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
        uids = [str(ds.get(k, "")) for k in keys]
    except DicomlensError:
        return _failure({}, CANNOT_UNDERSTAND)
    study_uid, series_uid, sop_uid, sop_class = uids
    item = {
        "00081150": {"vr": "UI", "Value": [sop_class]},
        "00081155": {"vr": "UI", "Value": [sop_uid]},
    }
    if not all(_UID.match(uid) and len(uid) <= 64 for uid in uids):
        return _failure(item, CANNOT_UNDERSTAND)
    if study is not None and study_uid != study:
        return _failure(item, STUDY_MISMATCH)
    item["00081190"] = {
        "vr": "UR",
        "Value": [f"{base_url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"],
    }
    digest = _digest(part.path)
    held = _held_paths(catalog, sop_uid)
    target = folder / study_uid / series_uid / f"{sop_uid}.dcm"
    if target.exists():
        held.append(str(target))
    if any(_same_bytes(Path(other), digest) for other in held):
        return item  # the same instance again: nothing to do
    if held:
        return _failure(item, DUPLICATE_INSTANCE)
    try:
        with atomic_output(target, overwrite=False) as temporary:
            os.replace(part.path, temporary)
    except DicomlensError:
        return _failure(item, PROCESSING_FAILURE)
    return target, item


def _failure(item: dict[str, Any], reason: int) -> dict[str, Any]:
    return {**item, "00081197": {"vr": "US", "Value": [reason]}}


def _held_paths(catalog: Path, sop: str) -> list[str]:
    with Catalog(catalog, readonly=True) as db:
        rows = db.execute(
            "SELECT f.path FROM instances i JOIN files f ON f.id = i.file "
            "WHERE i.sop_instance_uid = ?",
            (sop,),
        ).fetchall()
    return [path for (path,) in rows]


def _same_bytes(path: Path, digest: bytes) -> bool:
    try:
        return _digest(path) == digest
    except OSError:
        return False


def _digest(path: Path) -> bytes:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()
