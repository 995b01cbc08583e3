"""De-identification by DICOM PS3.15 Annex E, consistent across a whole run.

:func:`deidentify` applies a :class:`~dicomlens.profile.Profile` to one dataset
in memory, at every depth: identifying values are removed, emptied or replaced
with dummies, UIDs are replaced through a keyed hash (so that every reference
to a UID, in any file of a run, gets the same new UID), dates are shifted by one
interval per patient when asked, private elements go unless allow-listed, and
the de-identification is recorded in the dataset. It returns what it removed,
so that :func:`find_leaks` can prove the written bytes hold none of it.

:func:`anonymize` does this for files and folders: every output is checked
before it is written (atomically, named by its new UIDs, never by the input's
file name), and the identity map is written only to a file the caller names.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom.charset import encode_string
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomlens._version import __version__
from dicomlens.access import resolve_ref
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
from dicomlens.profile import Option, Profile, Treatment
from dicomlens.reading import is_dicomdir, iter_files
from dicomlens.tags import ElementRef, TagLike, parse_tag

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

_DUMMY_TEXT: Final = "ANONYMIZED"
_DUMMIES: Final[dict[str, Any]] = {
    "AE": _DUMMY_TEXT, "AS": "000D", "CS": _DUMMY_TEXT, "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": _DUMMY_TEXT, "LT": _DUMMY_TEXT,
    "PN": _DUMMY_TEXT, "SH": _DUMMY_TEXT, "ST": _DUMMY_TEXT, "TM": "000000",
    "UC": _DUMMY_TEXT, "UR": "", "UT": _DUMMY_TEXT,
}  # fmt: skip
_NUMBER_VRS: Final = frozenset({"FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"})
_TEXT_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"})
_DICOM_UID_ROOT: Final = "1.2.840.10008."  # SOP classes, transfer syntaxes, coding schemes
_IDENTIFIER_WORDS: Final = re.compile(
    r"ID$|IDs$|Identifier|Number|Name|Address|Telephone|Institution|Station|AETitle|Accession"
)
_UID_TEXT: Final = re.compile(r"[0-9]+(\.[0-9]+)*")
_NAMING_UIDS: Final = (
    ("StudyInstanceUID", "no-study"),
    ("SeriesInstanceUID", "no-series"),
    ("SOPInstanceUID", ""),
)
_PRINTABLE_RUN: Final = re.compile(rb"[\x20-\x7e]{6,}")
_STRONG_SHORTEST: Final = 4  # characters: shorter identifiers match too much by chance
_WEAK_SHORTEST: Final = 6
_IN_PIXELS_SHORTEST: Final = 8  # only longer needles are looked for inside pixel data
_SHIFT_RANGE_DAYS: Final = 3650
_PARALLEL_FROM: Final = 64
_BURNED_IN_MODALITIES: Final = {
    "US": "ultrasound", "SC": "secondary capture", "XC": "external camera photography",
    "ES": "endoscopy", "OT": "other modality", "DOC": "document", "GM": "microscopy",
}  # fmt: skip
_SECONDARY_CAPTURE_CLASSES: Final = "1.2.840.10008.5.1.4.1.1.7"
_META_IDENTIFIERS: Final = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
_RECORDING_TAGS: Final = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})


# ---------------------------------------------------------------------------
# Keyed replacements
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """Keyed, deterministic replacements: the same key and original value always
    give the same UID, pseudonym and date shift; another key gives others.

    >>> keys = Keys.from_key("secret")
    >>> again, other = Keys.from_key("secret"), Keys.from_key("other")
    >>> keys.uid("1.2.3") == again.uid("1.2.3") != other.uid("1.2.3")
    True
    >>> keys.uid("1.2.3").startswith("2.25."), len(keys.uid("1.2.3")) <= 64
    (True, True)
    """

    secret: bytes = field(repr=False)

    @classmethod
    def from_key(cls, key: str | None) -> Keys:
        """Keys from a user's key, or random ones (consistent within one run only)."""
        return cls(key.encode() if key else secrets.token_bytes(32))

    def _digest(self, kind: str, value: str) -> bytes:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A new UID under the UUID arc (2.25), at most 44 characters."""
        return "2.25." + str(int.from_bytes(self._digest("uid", original)[:16], "big"))

    def pseudonym(self, patient: str) -> str:
        """A patient's new ID and name."""
        number = int.from_bytes(self._digest("patient", patient)[:8], "big") % 10**10
        return f"ANON{number:010d}"

    def date_shift(self, patient: str) -> int:
        """Days to add to every date of a patient: between -3650 and -1."""
        days = int.from_bytes(self._digest("dates", patient)[:4], "big") % _SHIFT_RANGE_DAYS
        return -(days + 1)


# ---------------------------------------------------------------------------
# One dataset
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Needle:
    """An original value that must not appear in the output, and where it came from.

    ``strong`` needles are identifiers (names, IDs, UIDs, dates): they are looked
    for from 4 characters on and scrubbed from cleaned descriptions; ``weak`` ones
    (descriptions, private text) from 6 characters on.
    """

    text: str
    source: str
    strong: bool


@dataclass
class Deidentified:
    """What :func:`deidentify` did to one dataset."""

    uids: dict[str, str] = field(default_factory=dict)
    patient: str = ""
    pseudonym: str = ""
    date_shift: int | None = None
    needles: list[Needle] = field(default_factory=list)
    kept_text: list[str] = field(default_factory=list)
    output_dates: set[str] = field(default_factory=set)
    removed: int = 0
    replaced: int = 0


def deidentify(
    ds: Dataset,
    *,
    profile: Profile | None = None,
    keys: Keys | None = None,
    safe_private: Sequence[TagLike] = (),
) -> Deidentified:
    """De-identify ``ds`` in place by ``profile`` (default: the Basic Profile).

    Parameters
    ----------
    keys
        The keyed replacements; pass the same keys for every file of a data set
        so that UIDs, pseudonyms and date shifts agree (default: random keys).
    safe_private
        Private elements to keep with the Retain Safe Private option, in tag
        notation with their creator (``"(0019,xx1E)[GEMS_ACQU_01]"``).

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from pydicom import dcmread
    >>> ds = dcmread(get_testdata_file("CT_small.dcm"))
    >>> report = deidentify(ds, keys=Keys.from_key("k"))
    >>> ds.PatientName == ds.PatientID == report.pseudonym, ds.PatientIdentityRemoved
    (True, 'YES')
    >>> ds.SOPInstanceUID == report.uids["1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"]
    True
    """
    profile = profile or Profile()
    keys = keys or Keys.from_key(None)
    allowed = tuple(_allowed_ref(spec) for spec in safe_private)
    if allowed and Option.RETAIN_SAFE_PRIVATE not in profile.options:
        raise UsageError("safe private elements need the 'private' option (--keep private)")
    walker = _Walker(profile, keys, allowed, ds)
    walker.dataset(ds, top=True)
    walker.clean_descriptors()
    _record(ds, profile)
    if hasattr(ds, "file_meta"):
        walker.rebuild_meta(ds)
    if hasattr(ds, "preamble"):
        ds.preamble = b"\x00" * 128
    return walker.report


def _allowed_ref(spec: TagLike) -> ElementRef:
    path = parse_tag(spec)
    ref = path.steps[0].ref
    if len(path.steps) != 1 or not ref.is_private:
        raise UsageError(f"safe private element {spec!r}: expected one private tag")
    return ref


class _Walker:
    """One pass over a dataset and its sequences, applying the profile."""

    def __init__(
        self, profile: Profile, keys: Keys, allowed: tuple[ElementRef, ...], ds: Dataset
    ) -> None:
        self.profile = profile
        self.keys = keys
        self.allowed = allowed
        self.report = Deidentified()
        self.to_clean: list[DataElement] = []
        patient = str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
        self.report.patient = patient
        self.report.pseudonym = keys.pseudonym(patient)
        written = [self.report.pseudonym, *_DUMMIES.values(), *(m for _, m in profile.codes)]
        self.report.kept_text.extend(str(value) for value in written)  # ours, not the input's
        if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options:
            self.report.date_shift = keys.date_shift(patient)

    def dataset(self, ds: Dataset, *, top: bool = False) -> None:
        kept_private = self._kept_private(ds)
        for tag in list(ds.keys()):
            if top and tag in _RECORDING_TAGS:
                continue  # rewritten by _record
            element = ds[tag]
            treatment = self._treatment(element, kept_private)
            if (
                top
                and tag in (0x00100010, 0x00100020)
                and treatment is not Treatment.KEEP
                and element.VR in ("PN", "LO")  # a wrong VR gets the dummy of its VR
            ):
                self._gone(element)
                element.value = self.report.pseudonym
                self.report.replaced += 1
                continue
            self._apply(ds, element, treatment)

    def _treatment(self, element: DataElement, kept_private: set[int]) -> Treatment:
        tag = int(element.tag)
        if element.tag.is_private:
            return Treatment.KEEP if tag in kept_private else Treatment.REMOVE
        listed = self.profile.treatment(tag)
        if listed is not None:
            return listed
        if element.VR == "PN":
            return Treatment.EMPTY  # a name the table does not know yet is still a name
        if element.VR == "UN":
            return Treatment.REMOVE  # unknown to the dictionary: cannot be judged
        if element.VR == "UI" and any(not _registered(uid) for uid in _values(element)):
            return Treatment.REPLACE_UID
        return Treatment.KEEP

    def _kept_private(self, ds: Dataset) -> set[int]:
        """Allow-listed private tags present in ``ds``, with their creator elements."""
        if Option.RETAIN_SAFE_PRIVATE not in self.profile.options:
            return set()
        kept: set[int] = set()
        for ref in self.allowed:
            found = resolve_ref(ds, ref)
            if found is not None and found in ds:
                tag = int(found)
                kept |= {tag, (tag & 0xFFFF0000) | ((tag & 0xFF00) >> 8)}
        return kept

    def _apply(self, ds: Dataset, element: DataElement, treatment: Treatment) -> None:
        vr = element.VR
        if treatment is Treatment.REMOVE:
            self._gone(element)
            del ds[element.tag]
            self.report.removed += 1
        elif vr == "SQ":
            if treatment is Treatment.EMPTY:
                self._gone(element)
                element.value = []
                return
            for item in element.value:
                self.dataset(item)
        elif treatment is Treatment.KEEP:
            self.report.kept_text.extend(_values(element) or _printable_runs(element))
            self.report.output_dates.update(_dates(element))
        elif treatment is Treatment.CLEAN:
            self._clean(element)
        elif treatment is Treatment.REPLACE_UID and vr == "UI":
            self._gone(element)
            element.value = _map_values(element, self._new_uid)
            self.report.replaced += 1
        elif treatment is Treatment.EMPTY:
            self._gone(element)
            element.value = None
            self.report.replaced += 1
        else:  # a dummy (or a UID replacement asked of an element that holds no UID)
            self._gone(element)
            element.value = _dummy(element)
            self.report.replaced += 1

    def _new_uid(self, uid: str) -> str:
        if _registered(uid):
            return uid
        new = self.report.uids.get(uid)
        if new is None:
            new = self.report.uids[uid] = self.keys.uid(uid)
            self.report.kept_text.append(new)  # a short number may occur in it by chance
        return new

    def _clean(self, element: DataElement) -> None:
        """Cleaning: shift dates (modified dates option), scrub text of identifiers."""
        shift = self.report.date_shift
        if element.VR in ("DA", "DT"):
            self._gone(element)
            if shift is None:
                element.value = None
            else:
                element.value = _map_values(element, lambda v: _shift_date(v, shift))
                self.report.output_dates.update(_dates(element))
        elif element.VR in _TEXT_VRS:
            self.to_clean.append(element)

    def clean_descriptors(self) -> None:
        """Remove every strong identifier of this dataset from the cleaned text."""
        found = sorted({n.text for n in self.report.needles if n.strong}, key=len, reverse=True)
        if not found or not self.to_clean:
            return
        pattern = re.compile("|".join(re.escape(text) for text in found), re.IGNORECASE)
        for element in self.to_clean:
            element.value = _map_values(
                element, lambda v: pattern.sub(lambda m: "*" * len(m.group()), v)
            )

    def _gone(self, element: DataElement) -> None:
        """Remember the values of an element about to be removed or replaced."""
        self.report.needles.extend(_needles(element))

    def rebuild_meta(self, ds: Dataset) -> None:
        """New file meta from the de-identified data set: no AE titles, no old UIDs."""
        old = ds.file_meta
        for tag in _META_IDENTIFIERS:
            if tag in old:
                self._gone(old[tag])
        if "MediaStorageSOPInstanceUID" in old:
            self._gone(old["MediaStorageSOPInstanceUID"])
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID"))
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "")
        meta.TransferSyntaxUID = old.get("TransferSyntaxUID") or _syntax_read(ds)
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"DICOMLENS_{__version__}"[:16]
        ds.file_meta = meta


def _syntax_read(ds: Dataset) -> UID:
    """The transfer syntax a file without one in its meta was read with."""
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _needles(element: DataElement) -> Iterator[Needle]:
    """The identifying values of ``element`` and everything inside it."""
    name = keyword_for_tag(element.tag) or str(element.tag)
    if element.VR == "SQ":
        for item in element.value:
            for inner in item:
                yield from _needles(inner)
        return
    if element.tag.is_private and isinstance(element.value, bytes | bytearray):
        yield from (Needle(text, name, strong=False) for text in _printable_runs(element))
        return
    if element.tag.is_private and element.VR in _TEXT_VRS:
        for value in _values(element):
            if len(value) >= _WEAK_SHORTEST:
                yield Needle(value, name, strong=False)
        return
    for value in _values(element):
        if element.VR == "PN":
            parts = [value, *re.split(r"[\^=\\ ]+", value)]
            yield from (Needle(p, name, True) for p in parts if len(p) >= _STRONG_SHORTEST)
        elif element.VR in ("DA", "DT") and len(value) >= 8 and value[:8].isdigit():
            yield Needle(value[:8], name, strong=True)
        elif element.VR == "UI" and not _registered(value):
            yield Needle(value, name, strong=True)
        elif element.VR in _TEXT_VRS and element.VR != "CS":  # codes identify nobody
            strong = bool(_IDENTIFIER_WORDS.search(name))
            if len(value) >= (_STRONG_SHORTEST if strong else _WEAK_SHORTEST):
                yield Needle(value, name, strong)


def _values(element: DataElement) -> list[str]:
    """The non-empty text values of an element (none for binary or numeric ones)."""
    value = element.value
    if value is None or isinstance(value, bytes | bytearray) or element.VR in _NUMBER_VRS:
        return []
    items = value if isinstance(value, MultiValue | list) else [value]
    return [text for text in (str(v).strip() for v in items) if text]


def _printable_runs(element: DataElement) -> list[str]:
    """Text inside a binary value (private data of unknown VR, vendor headers)."""
    if not isinstance(element.value, bytes | bytearray):
        return []
    runs = (run.decode("ascii").strip() for run in _PRINTABLE_RUN.findall(element.value))
    return [text for text in runs if len(text) >= _WEAK_SHORTEST]


def _map_values(element: DataElement, change: Any) -> Any:
    value = element.value
    if isinstance(value, MultiValue | list):
        return [change(str(v)) for v in value]
    return change(str(value)) if value not in (None, "") else value


def _dates(element: DataElement) -> set[str]:
    if element.VR not in ("DA", "DT"):
        return set()
    return {value[:8] for value in _values(element) if len(value) >= 8}


def _shift_date(value: str, days: int) -> str:
    """``value`` (DA, or DT whose first 8 characters are the date) moved by ``days``."""
    try:
        date = datetime.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return ""  # not a date we can move: nothing of it is kept
    return (date + datetime.timedelta(days=days)).strftime("%Y%m%d") + value[8:]


def _dummy(element: DataElement) -> Any:
    vr = element.VR
    if vr in _DUMMIES:
        return _DUMMIES[vr]
    if vr in _NUMBER_VRS:
        return 0
    return b"\x00\x00"  # OB, OW, OF, ...: a zeroed value of the shortest even length


def _registered(uid: str) -> bool:
    """UIDs the standard defines (classes, syntaxes): kept, they identify nobody."""
    return uid.startswith(_DICOM_UID_ROOT)


def _record(ds: Dataset, profile: Profile) -> None:
    """PatientIdentityRemoved, DeidentificationMethod and its code sequence (CID 7050)."""
    codes = profile.codes
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [f"dicomlens {__version__}"[:64]] + [m for _, m in codes]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    dates = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile.options
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if dates else "REMOVED"


def burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixel data may show identifying text, or None.

    >>> ds = Dataset(); ds.Modality = "US"
    >>> burned_in_reason(ds)
    'ultrasound images usually carry burned-in text (BurnedInAnnotation is not NO)'
    >>> ds.BurnedInAnnotation = "NO"; burned_in_reason(ds) is None
    True
    """
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "BurnedInAnnotation is YES"
    if flag == "NO":
        return None
    kind = _BURNED_IN_MODALITIES.get(str(ds.get("Modality", "")).upper())
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE_CLASSES):
        kind = "secondary capture"
    if kind is None:
        return None
    return f"{kind} images usually carry burned-in text (BurnedInAnnotation is not NO)"


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def find_leaks(
    data: bytes,
    report: Deidentified,
    *,
    encodings: Sequence[str] = (),
    pixels_from: int | None = None,
) -> list[tuple[str, int]]:
    """Where original identifiers still appear in encoded output ``data``.

    Returns (source element, byte offset) pairs: the values themselves are never
    reported. Values found inside a value the profile keeps (an institution
    named like the manufacturer), and dates equal to a date the output holds
    (shifted dates may land on another original date), are not leaks. Inside the
    pixel data (from ``pixels_from``) only identifiers of 8 characters or more are
    looked for: shorter byte strings occur in images by chance, and descriptive
    text does not end up there.
    """
    kept = "\x00".join(report.kept_text)
    leaks = []
    for needle in {n.text: n for n in report.needles}.values():
        if needle.text in kept:
            continue
        if needle.text in report.output_dates:
            continue
        header_only = len(needle.text) < _IN_PIXELS_SHORTEST or not needle.strong
        end = pixels_from if pixels_from is not None and header_only else len(data)
        encoded = encode_string(needle.text, list(encodings) or ["iso8859"])
        at = data.find(encoded, 0, end)
        if at >= 0:
            leaks.append((needle.source, at))
    return sorted(leaks, key=lambda leak: leak[1])


# ---------------------------------------------------------------------------
# Files and folders
# ---------------------------------------------------------------------------


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
        _allowed_ref(spec)
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
