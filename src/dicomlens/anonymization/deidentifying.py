"""De-identifying one dataset in memory by a PS3.15 Annex E profile.

:func:`deidentify` walks the dataset at every depth: identifying values are
removed, emptied or replaced with dummies, UIDs are replaced through the run's
:class:`~dicomlens.anonymization.keys.Keys`, dates are shifted per patient when
asked, private elements go unless allow-listed, and the de-identification is
recorded in the dataset. It returns what it removed (:class:`Deidentified`), so
that :func:`~dicomlens.anonymization.verification.find_leaks` can prove the written
bytes hold none of it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

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
from dicomlens.anonymization.keys import Keys
from dicomlens.errors import UsageError
from dicomlens.profile import Option, Profile, Treatment
from dicomlens.tags import ElementRef, TagLike, parse_tag

__all__ = ["Deidentified", "Needle", "allowed_private_ref", "deidentify"]

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
_PRINTABLE_RUN: Final = re.compile(rb"[\x20-\x7e]{6,}")
_STRONG_SHORTEST: Final = 4  # characters: shorter identifiers match too much by chance
_WEAK_SHORTEST: Final = 6
_META_IDENTIFIERS: Final = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
_RECORDING_TAGS: Final = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})


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
    allowed = tuple(allowed_private_ref(spec) for spec in safe_private)
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


def allowed_private_ref(spec: TagLike) -> ElementRef:
    """The private element a ``safe_private`` entry names (a usage error for anything else)."""
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
