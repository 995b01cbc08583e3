"""Anonymizing files and folders: de-identify, verify, then write atomically.

:func:`anonymize` names every output by its new UIDs (never by the input's file
name), checks its bytes before it is written, and writes the identity map only
to a file the caller names.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom.dataset import Dataset

from dicomlens._version import __version__
from dicomlens.anonymization.deidentifying import allowed_private_ref, deidentify
from dicomlens.anonymization.keys import Keys
from dicomlens.anonymization.verification import burned_in_reason, find_leaks
from dicomlens.editing import (
    atomic_output,
    is_within,
    read_for_writing,
    recording_failures,
    sync_folders,
)
from dicomlens.errors import (
    AnonymizationError,
    DicomlensError,
    DicomlensWarning,
    FileError,
    UsageError,
    WriteError,
)
from dicomlens.profile import Option, Profile
from dicomlens.reading import is_dicomdir, iter_files

__all__ = ["FileAnonymization", "IdentityMap", "anonymize"]

_UID_TEXT: Final = re.compile(r"[0-9]+(\.[0-9]+)*")
_NAMING_UIDS: Final = (
    ("StudyInstanceUID", "no-study"),
    ("SeriesInstanceUID", "no-series"),
    ("SOPInstanceUID", ""),
)
_PARALLEL_FROM: Final = 64


@dataclass
class FileAnonymization:
    """What happened to one file: where it went and what it held, or why not."""

    source: Path
    target: Path | None = None
    error: DicomlensError | None = None
    skipped: str = ""
    warnings: list[str] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)
    patient: tuple[str, str, int | None] | None = None
    removed: int = 0
    replaced: int = 0
    written: bool = False


@dataclass
class IdentityMap:
    """Original to new identifiers of a run: UIDs and patients (pseudonym, date shift)."""

    uids: dict[str, str] = field(default_factory=dict)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Iterable[FileAnonymization]) -> IdentityMap:
        mapping = cls()
        for result in results:
            mapping.uids.update(result.uids)
            if result.patient is not None:
                original, pseudonym, shift = result.patient
                mapping.patients[original] = {"pseudonym": pseudonym, "date_shift_days": shift}
        return mapping

    def to_json(self) -> str:
        data = {"dicomlens": __version__, "uids": self.uids, "patients": self.patients}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentityMap:
        """Read a map written by :func:`anonymize`."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(dict(data["uids"]), dict(data["patients"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FileError(f"{path}: not an identity map ({exc})") from exc

    def reversed_uids(self) -> dict[str, str]:
        """New UID to original UID."""
        return {new: old for old, new in self.uids.items()}


def anonymize(
    paths: Iterable[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    key: str | None = None,
    keep: Iterable[Option | str] = (),
    safe_private: Sequence[str] = (),
    map_file: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    strict: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[FileAnonymization]:
    """De-identify files, folders or patterns into ``out``.

    Outputs are named ``out/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``
    by their new UIDs; DICOMDIR files are left out (they list the original names).
    Each output is encoded in memory, checked by :func:`find_leaks` and only then
    written atomically; a file that cannot be de-identified safely fails alone (or
    stops the run with ``fail_fast``) and leaves nothing behind.

    Parameters
    ----------
    key
        Makes the run deterministic: the same input and key give byte-identical
        output; without it, new UIDs and pseudonyms differ on every run.
    keep
        Profile options (:class:`~dicomlens.profile.Option` or their names:
        ``dates``, ``uids``, ``device``, ``institution``, ``patient``,
        ``descriptors``, ``private``).
    safe_private
        Private elements kept with the ``private`` option (tag notation with creator).
    map_file
        Where to write the identity map (original to new identifiers); it is
        written only when given, readable by the owner only.
    strict
        Fail files whose pixel data may show burned-in text instead of warning.
    progress
        Called with the number of files done so far, as they finish.

    Examples
    --------
    >>> import tempfile
    >>> from pydicom.data import get_testdata_file
    >>> (result,) = anonymize([get_testdata_file("CT_small.dcm")], out=tempfile.mkdtemp(), key="k")
    >>> result.written, result.target.name == result.uids[
    ...     "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"] + ".dcm"
    (True, True)
    """
    profile = Profile(keep)
    for spec in safe_private:
        allowed_private_ref(spec)
    if safe_private and Option.RETAIN_SAFE_PRIVATE not in profile.options:
        raise UsageError("--safe-private needs the 'private' option (--keep private)")
    if map_file is not None and Path(map_file).exists() and not overwrite:
        raise UsageError(f"{map_file}: identity map exists (use --overwrite)")
    out = Path(out)
    job = _Job(profile, Keys.from_key(key), tuple(safe_private), out,
               dry_run, strict, overwrite)  # fmt: skip
    tasks = [
        (path, error, explicit)
        for path, error, explicit in iter_files(paths)
        if not is_within(path, out)
    ]
    workers = 1 if fail_fast else os.cpu_count() or 1
    results: list[FileAnonymization] = []
    try:
        with contextlib.ExitStack() as stack:
            if workers < 2 or len(tasks) < _PARALLEL_FROM:
                done: Iterable[FileAnonymization] = map(job, tasks)
            else:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
                done = pool.map(job, tasks, chunksize=max(4, len(tasks) // (workers * 16)))
            for result in done:
                results.append(result)
                if progress is not None:
                    progress(len(results))
                if fail_fast and result.error is not None:
                    raise result.error
    finally:
        sync_folders(r.target for r in results if r.written)
    if map_file is not None and not dry_run:
        with atomic_output(map_file, mode=0o600) as temporary:
            temporary.write_text(IdentityMap.of(r for r in results if r.written).to_json())
    return results


@dataclass(frozen=True)
class _Job:
    """De-identify one file; a picklable callable for the process pool."""

    profile: Profile
    keys: Keys
    safe_private: tuple[str, ...]
    out: Path
    dry_run: bool
    strict: bool
    overwrite: bool

    def __call__(self, task: tuple[Path, FileError | None, bool]) -> FileAnonymization:
        source, error, explicit = task
        result = FileAnonymization(source)
        with recording_failures(result, explicit=explicit):
            if error is not None:
                raise error
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._run(result)
            # pydicom's own warnings quote input values: only ours (file and reason) go on
            ours = [w for w in caught if issubclass(w.category, DicomlensWarning)]
            result.warnings += [str(w.message) for w in ours]
        return result

    def _run(self, result: FileAnonymization) -> None:
        source = result.source
        ds = read_for_writing(source)
        if is_dicomdir(ds):
            result.skipped = "DICOMDIR omitted (it lists the original file names)"
            return
        reason = burned_in_reason(ds)
        if reason is not None:
            if self.strict:
                raise AnonymizationError(f"{source}: {reason}; not written (--strict)")
            result.warnings.append(f"{source}: {reason}")
        report = deidentify(ds, profile=self.profile, keys=self.keys,
                            safe_private=self.safe_private)  # fmt: skip
        result.uids, result.removed, result.replaced = report.uids, report.removed, report.replaced
        result.patient = (report.patient, report.pseudonym, report.date_shift)
        result.target = self.out / _output_name(ds, source)
        data = _encode(ds, source)
        pixels_from = _pixels_from(ds, data)
        leaks = find_leaks(data, report, encodings=_encodings(ds), pixels_from=pixels_from)
        if leaks:
            where = ", ".join(f"{name} at byte {at}" for name, at in leaks[:3])
            raise AnonymizationError(
                f"{source}: verification failed: original values remain ({where}); not written"
            )
        if self.dry_run:
            return
        if result.target.exists() and not self.overwrite:
            if _holds(result.target, data):  # an earlier run's, or a copy's among the inputs
                result.skipped = f"identical: {result.target} already holds this output"
                return
            raise WriteError(
                f"{source}: output {result.target} exists (an earlier run, or another input "
                "with the same SOPInstanceUID; use --overwrite)"
            )
        with atomic_output(result.target, sync_folder=False) as temporary:
            temporary.write_bytes(data)
        result.written = True


def _holds(path: Path, data: bytes) -> bool:
    """Whether the file at ``path`` consists of exactly ``data``."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _output_name(ds: Dataset, source: Path) -> Path:
    """``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (``no-study``
    and ``no-series`` for files without them)."""
    names = []
    for keyword, missing in _NAMING_UIDS:
        uid = str(ds.get(keyword, "") or "")
        if _UID_TEXT.fullmatch(uid):
            names.append(uid)
        elif missing and not uid:
            names.append(missing)
        else:
            raise AnonymizationError(f"{source}: no usable {keyword} to name the output")
    return Path(*names[:2], names[2] + ".dcm")


def _encode(ds: Dataset, source: Path) -> bytes:
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except Exception as exc:  # pydicom's encoders raise many kinds
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnonymizationError(
            f"{source}: cannot encode the de-identified data ({reason})"
        ) from exc
    return buffer.getvalue()


def _encodings(ds: Dataset) -> list[str]:
    charset = getattr(ds, "_character_set", None)
    if isinstance(charset, str):
        return [charset]
    return list(charset) if charset else []


def _pixels_from(ds: Dataset, data: bytes) -> int | None:
    """Offset of the pixel data value: the last element of the file, so its
    value is the last ``len(value)`` bytes (plus a delimiter when encapsulated)."""
    pixels = ds.get("PixelData")
    if pixels is None or not isinstance(pixels, bytes | bytearray):
        return None
    return max(0, len(data) - len(pixels) - 8)
