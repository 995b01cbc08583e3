"""Parse, format and look up DICOM tags and tag paths in any common notation.

This module is the one tag grammar of dicomlens: the CLI, the library functions
and every later feature call :func:`parse_tag`. The grammar is documented in
``docs/tag-notation.md``; in short, one *element* can be written as

* a keyword, ``PatientName`` (retired keywords warn and name their successor);
* a dictionary name in any case and spacing, ``Window Center``, ``patient's name``;
* a number, ``(0028,1050)``, ``(0028, 1050)``, ``0028,1050``, ``0028|1050``,
  ``00281050``, ``0x00281050``, ``0x281050``, ``(0x0028, 0x1050)``, the int
  ``0x281050`` or the tuple ``(0x0028, 0x1050)``;
* a private element with its creator, ``(0019,xx0C)[SIEMENS CT VA0  COAD]`` or
  ``"SIEMENS CT VA0  COAD":0019,0C``;

and a *path* joins elements with ``.``, each optionally followed by an item or
value index ``[n]`` or the wildcard ``[*]``:
``ReferencedImageSequence[0].ReferencedSOPInstanceUID``, ``WindowCenter[1]``.

>>> parse_tag("(0028, 1050)") == parse_tag("window center") == parse_tag(0x281050)
True
>>> str(parse_tag("ReferencedImageSequence[0].(0008,1155)"))
'ReferencedImageSequence[0].ReferencedSOPInstanceUID'
>>> format_tag(0x00281050)
'(0028,1050) WindowCenter'
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from functools import cache
from typing import Final, Literal, NamedTuple, TypeAlias

from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom._private_dict import private_dictionaries
from pydicom.datadict import get_entry, get_private_entry, keyword_dict
from pydicom.tag import BaseTag, Tag

from dicomlens.errors import RetiredTagWarning, TagSyntaxError, UnknownTagError

__all__ = [
    "WILDCARD",
    "ElementRef",
    "PathStep",
    "TagInfo",
    "TagLike",
    "TagPath",
    "format_tag",
    "lookup",
    "parse_tag",
    "search_tags",
]

WILDCARD: Final = "*"
"""Index meaning "every item" (sequences) or "every value" (multi-valued elements)."""

Index: TypeAlias = int | Literal["*"] | None
TagLike: TypeAlias = "int | str | tuple[int, int] | TagPath"
"""Anything :func:`parse_tag` accepts."""

_MAX_SUGGESTIONS: Final = 5


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------


# Value types are NamedTuples rather than dataclasses: they are created at import
# time on every CLI start, and NamedTuples cost a fraction of the start-up time.


class ElementRef(NamedTuple):
    """One element: a plain tag, or a private element named by its creator.

    With ``creator`` set, ``element`` is the 8-bit offset inside the creator's
    block (``0x0C`` in ``(0019,xx0C)``) and the real tag depends on the dataset.
    """

    group: int
    element: int
    creator: str | None = None

    @property
    def is_private(self) -> bool:
        return self.group % 2 == 1

    @property
    def tag(self) -> BaseTag:
        """The tag number; raises for creator-relative private elements."""
        if self.creator is not None:
            raise TagSyntaxError(
                f"{self}: a creator-relative private tag has no fixed number; "
                "resolve it against a dataset"
            )
        return BaseTag((self.group << 16) | self.element)

    def __str__(self) -> str:
        if self.creator is not None:
            return f"({self.group:04X},xx{self.element:02X})[{self.creator}]"
        entry = _public_entry(self.tag)
        if entry is not None and entry.keyword and not entry.retired and not self.is_private:
            return entry.keyword
        return f"({self.group:04X},{self.element:04X})"


class PathStep(NamedTuple):
    """One step of a :class:`TagPath`: an element and its optional ``[n]`` or ``[*]``.

    The subscript picks sequence items on inner steps and values on the last.
    """

    ref: ElementRef
    subscript: Index = None

    def __str__(self) -> str:
        return str(self.ref) if self.subscript is None else f"{self.ref}[{self.subscript}]"


class TagPath(NamedTuple):
    """A path to an element, possibly nested in sequences, with optional indexes.

    ``str(path)`` is the canonical, re-parseable spelling.
    """

    steps: tuple[PathStep, ...]

    @property
    def leaf(self) -> ElementRef:
        """The element the path ends at."""
        return self.steps[-1].ref

    @property
    def is_simple(self) -> bool:
        """True for one fixed tag without index or creator (usable as a dict key)."""
        return len(self.steps) == 1 and self.steps[0].subscript is None and not self.leaf.creator

    @property
    def tag(self) -> BaseTag:
        """The tag of a single-element path (raises for nested paths)."""
        if len(self.steps) != 1:
            raise TagSyntaxError(f"{self}: expected a single tag, got a path")
        return self.leaf.tag

    def __str__(self) -> str:
        return ".".join(str(step) for step in self.steps)


class TagInfo(NamedTuple):
    """What the data dictionary knows about one tag."""

    tag: BaseTag
    keyword: str
    name: str
    VR: str
    VM: str
    retired: bool
    creator: str | None = None

    def __str__(self) -> str:
        return format_tag(self.tag, creator=self.creator)


# ---------------------------------------------------------------------------
# Dictionary index (built once, on first use)
# ---------------------------------------------------------------------------


def _normalize(text: str) -> str:
    """Case, spaces and punctuation folded away: ``Patient's Name`` -> ``patientsname``."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _repeater_base(mask: str) -> int:
    return int(mask.replace("x", "0"), 16)


@cache
def _name_index() -> dict[str, tuple[int, ...]]:
    """Normalised keyword or name -> tags (non-retired first)."""
    index: dict[str, list[tuple[bool, int]]] = {}
    entries = [(tag, entry) for tag, entry in DicomDictionary.items()]
    entries += [(_repeater_base(mask), entry) for mask, entry in RepeatersDictionary.items()]
    for tag, (_vr, _vm, name, retired, keyword) in entries:
        for text in {name, keyword}:
            key = _normalize(text)
            if key:
                index.setdefault(key, []).append((bool(retired), tag))
    return {key: tuple(tag for _, tag in sorted(set(hits))) for key, hits in index.items()}


@cache
def _keyword_index() -> dict[str, int]:
    """Exact keyword -> tag, repeating groups included (``OverlayData`` -> 0x60003000)."""
    index = dict(keyword_dict)
    for mask, entry in RepeatersDictionary.items():
        index.setdefault(entry[4], _repeater_base(mask))
    return index


def _public_entry(tag: int) -> TagInfo | None:
    try:
        vr, vm, name, retired, keyword = get_entry(tag)
    except KeyError:
        return None
    return TagInfo(BaseTag(tag), keyword, name, vr, vm, bool(retired))


def lookup(spec: TagLike, *, creator: str | None = None) -> TagInfo:
    """Dictionary information for one tag given in any notation.

    Parameters
    ----------
    spec
        The tag, in any notation :func:`parse_tag` accepts (no paths).
    creator
        Private creator to look private tags up in pydicom's private dictionary.

    Examples
    --------
    >>> info = lookup("window center")
    >>> info.tag, info.keyword, info.VR, info.VM
    ((0028,1050), 'WindowCenter', 'DS', '1-n')
    """
    path = parse_tag(spec)
    if len(path.steps) != 1 or path.steps[0].subscript is not None:
        raise TagSyntaxError(f"{spec!r}: expected one tag, got the path {path}")
    ref = path.leaf
    creator = ref.creator or creator
    tag = BaseTag((ref.group << 16) | 0x1000 | ref.element) if ref.creator else ref.tag
    if tag.is_private and creator:
        return _private_info(tag, creator)
    public = _public_entry(tag)
    if public is not None:
        return public
    if tag.is_private_creator:
        return TagInfo(tag, "", "Private Creator", "LO", "1", False)
    if tag.is_private:
        return TagInfo(tag, "", "Private tag data", "UN", "1", False)
    return TagInfo(tag, "", "Unknown tag", "UN", "1", False)


def _private_info(tag: BaseTag, creator: str) -> TagInfo:
    try:
        vr, vm, name, retired = get_private_entry(tag, creator)
    except KeyError:
        return TagInfo(tag, "", "Private tag data", "UN", "1", False, creator)
    return TagInfo(tag, "", name, vr, vm, bool(retired), creator)


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def format_tag(tag: int | tuple[int, int], *, creator: str | None = None) -> str:
    """The canonical ``(gggg,eeee) Keyword`` spelling used in all output.

    Private elements show their creator and, when pydicom's private dictionary
    knows it, their name: ``(0019,100C) [SIEMENS CT VA0  COAD] Name``.

    >>> format_tag((0x10, 0x10))
    '(0010,0010) PatientName'
    >>> format_tag(0x00191010)
    '(0019,1010)'
    """
    tag = Tag(tag)
    number = f"({tag.group:04X},{tag.element:04X})"
    if tag.is_private:
        if tag.is_private_creator:
            return f"{number} PrivateCreator"
        if creator:
            name = _private_info(tag, creator).name
            known = "" if name == "Private tag data" else f" {name}"
            return f"{number} [{creator}]{known}"
        return number
    public = _public_entry(tag)
    return f"{number} {public.keyword}" if public and public.keyword else number


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_HEX4 = r"(?:0x)?([0-9a-f]{1,4})"
_PAIR = re.compile(
    rf"^\(?\s*{_HEX4}\s*[,|\s]\s*(?:0x)?([0-9a-fx]{{1,4}})\s*\)?(?:\s+(?P<rest>.+))?$",
    re.IGNORECASE,
)
_HEX8 = re.compile(r"^(?:0x([0-9a-f]{1,8})|([0-9a-f]{8}))$", re.IGNORECASE)
_CREATOR_PREFIX = re.compile(
    r'^(?:"(?P<quoted>[^"]+)"|(?P<bare>[^"():\[\]]+?))\s*:\s*(?P<rest>.+)$'
)
_INDEX = re.compile(r"^(?:-?\d+|\*)$")


def parse_tag(spec: TagLike) -> TagPath:
    """Parse a tag or tag path in any notation (see the module docstring).

    Raises
    ------
    TagSyntaxError
        The text is not a tag or path in any supported notation.
    UnknownTagError
        A keyword or name is not in the dictionary; the message lists the
        closest matches.

    Examples
    --------
    >>> parse_tag("WindowCenter[1]").steps[0].subscript
    1
    >>> str(parse_tag('"SIEMENS CT VA0  COAD":0019,0C'))
    '(0019,xx0C)[SIEMENS CT VA0  COAD]'
    """
    if isinstance(spec, TagPath):
        return spec
    if isinstance(spec, bool):
        raise TagSyntaxError(f"{spec!r} is not a tag")
    if isinstance(spec, int):
        return TagPath((PathStep(_ref_from_int(spec, spec)),))
    if isinstance(spec, tuple):
        return TagPath((PathStep(_ref_from_tuple(spec)),))
    if not isinstance(spec, str):
        raise TagSyntaxError(f"{spec!r} is not a tag")
    text = spec.strip()
    if not text:
        raise TagSyntaxError("empty tag")
    return TagPath(tuple(_parse_step(part, text) for part in _split_path(text)))


def _ref_from_int(value: int, shown: object) -> ElementRef:
    if not 0 <= value <= 0xFFFFFFFF:
        raise TagSyntaxError(f"{shown!r}: a tag is a 32-bit number (0 to 0xFFFFFFFF)")
    return ElementRef(value >> 16, value & 0xFFFF)


def _ref_from_tuple(pair: tuple[int, ...]) -> ElementRef:
    if len(pair) != 2 or not all(isinstance(x, int) and 0 <= x <= 0xFFFF for x in pair):
        raise TagSyntaxError(f"{pair!r}: expected (group, element), two numbers up to 0xFFFF")
    return ElementRef(pair[0], pair[1])


def _split_path(text: str) -> list[str]:
    """Split at dots outside brackets, parentheses and quotes."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for pos, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "." and depth == 0:
            parts.append(text[start:pos])
            start = pos + 1
    parts.append(text[start:])
    if quoted or depth != 0:
        raise TagSyntaxError(f"{text!r}: unbalanced quotes or brackets")
    if any(not part.strip() for part in parts):
        raise TagSyntaxError(f"{text!r}: empty step in tag path")
    return [part.strip() for part in parts]


def _parse_step(part: str, whole: str) -> PathStep:
    """One path step: element, optional ``[creator]``, optional ``[index]``."""
    index: Index = None
    creator: str | None = None
    body = part
    while body.endswith("]"):
        start = _matching_bracket(body, whole)
        content = body[start + 1 : -1].strip()
        body = body[:start].rstrip()
        if _INDEX.match(content) and index is None and creator is None:
            index = WILDCARD if content == "*" else int(content)
        elif creator is None and content:
            creator = content
        else:
            raise TagSyntaxError(f"{whole!r}: unexpected [{content}] in {part!r}")
    if not body:
        raise TagSyntaxError(f"{whole!r}: missing tag before [...]")
    return PathStep(_parse_element(body, creator, whole), index)


def _matching_bracket(text: str, whole: str) -> int:
    depth = 0
    for pos in range(len(text) - 1, -1, -1):
        if text[pos] == "]":
            depth += 1
        elif text[pos] == "[":
            depth -= 1
            if depth == 0:
                return pos
    raise TagSyntaxError(f"{whole!r}: unbalanced brackets")


def _parse_element(text: str, creator: str | None, whole: str) -> ElementRef:
    if creator is None and ":" in text:
        match = _CREATOR_PREFIX.match(text)
        if match:
            creator = (match["quoted"] or match["bare"]).strip()
            text = match["rest"].strip()
    if creator is not None:
        return _private_ref(text, creator, whole)
    pair = _PAIR.match(text)
    if pair:
        group_text, element_text, rest = pair[1], pair[2], pair["rest"]
        if "x" in element_text.lower():
            raise TagSyntaxError(
                f"{whole!r}: a private element written (gggg,xxee) needs its creator, "
                'e.g. (0019,xx0C)[CREATOR] or "CREATOR":0019,0C'
            )
        ref = ElementRef(int(group_text, 16), int(element_text, 16))
        if rest:
            _check_trailing_name(ref, rest, whole)
        return ref
    hex8 = _HEX8.match(text)
    if hex8:
        return _ref_from_int(int(hex8[1] or hex8[2], 16), text)
    return _ref_from_name(text)


def _private_ref(text: str, creator: str, whole: str) -> ElementRef:
    """``0019,0C``, ``(0019,xx0C)`` or ``(0019,100C)`` with a creator -> offset form."""
    match = _PAIR.match(text)
    if not match or match["rest"]:
        raise TagSyntaxError(f"{whole!r}: expected a private tag like (0019,xx0C) with a creator")
    group = int(match[1], 16)
    element_text = match[2].lower()
    if group % 2 == 0:
        raise TagSyntaxError(f"{whole!r}: group {group:04X} is even; only odd groups are private")
    if element_text.startswith("xx"):
        element_text = element_text[2:]
    elif len(element_text) == 4:
        element_text = element_text[2:]  # the block byte depends on the dataset
    if not element_text or "x" in element_text:
        raise TagSyntaxError(f"{whole!r}: bad private element {match[2]!r}")
    return ElementRef(group, int(element_text, 16), creator)


def _check_trailing_name(ref: ElementRef, rest: str, whole: str) -> None:
    """Accept our own ``(0028,1050) WindowCenter`` output; refuse contradictions."""
    try:
        named = _ref_from_name(rest.strip(), warn=False)
    except UnknownTagError:
        named = None
    if named != ref:
        raise TagSyntaxError(
            f"{whole!r}: {rest.strip()!r} does not name ({ref.group:04X},{ref.element:04X})"
        )


def _ref_from_name(text: str, *, warn: bool = True) -> ElementRef:
    tag = _keyword_index().get(text)
    if tag is None:
        tags = _name_index().get(_normalize(text), ())
        if not tags:
            raise UnknownTagError(_unknown_message(text))
        tag = tags[0]
    ref = ElementRef(tag >> 16, tag & 0xFFFF)
    info = _public_entry(tag)
    if warn and info is not None and info.retired:
        warnings.warn(_retired_message(text, info), RetiredTagWarning, stacklevel=6)
    return ref


def _unknown_message(text: str) -> str:
    suggestions = [format_tag(tag) for tag in _closest_tags(text)]
    message = f"unknown tag {text!r}"
    if suggestions:
        message += f"; did you mean {', '.join(suggestions)}?"
    return message


def _closest_tags(text: str, count: int = _MAX_SUGGESTIONS) -> list[int]:
    import difflib  # only on the error path: keeps start-up fast

    index = _name_index()
    keys = difflib.get_close_matches(_normalize(text), list(index), n=count * 2, cutoff=0.6)
    found: list[int] = []
    for key in keys:
        for tag in index[key]:
            if tag not in found:
                found.append(tag)
    current = [tag for tag in found if not _is_retired(tag)]
    return (current + [tag for tag in found if tag not in current])[:count]


def _is_retired(tag: int) -> bool:
    info = _public_entry(tag)
    return info is not None and info.retired


def _retired_message(text: str, info: TagInfo) -> str:
    message = f"{text!r} is the retired {format_tag(info.tag)}"
    successor = _successor(info)
    if successor is not None:
        message += f"; you probably want {format_tag(successor.tag)}"
    return message


def _successor(retired: TagInfo) -> TagInfo | None:
    """The current tag a retired one was most likely replaced by.

    Prefers current keywords that extend the retired one
    (``ImagePosition`` -> ``ImagePositionPatient``), then close spellings; among
    those, the same group, VR and VM, then the shortest keyword.
    """
    import difflib  # only when a retired tag is met: keeps start-up fast

    keywords = _keyword_index()
    candidates = [kw for kw in keywords if kw.startswith(retired.keyword) and kw != retired.keyword]
    if not candidates:
        candidates = difflib.get_close_matches(retired.keyword, list(keywords), n=5, cutoff=0.85)
    infos = [
        info
        for kw in candidates
        if (info := _public_entry(keywords[kw])) is not None and not info.retired
    ]
    if not infos:
        return None
    return min(
        infos,
        key=lambda i: (
            i.tag.group != retired.tag.group,
            i.VR != retired.VR,
            i.VM != retired.VM,
            len(i.keyword),
        ),
    )


# ---------------------------------------------------------------------------
# Dictionary search (``dicomlens tag``)
# ---------------------------------------------------------------------------


def _all_entries() -> Iterator[TagInfo]:
    for tag, (vr, vm, name, retired, keyword) in DicomDictionary.items():
        yield TagInfo(BaseTag(tag), keyword, name, vr, vm, bool(retired))
    for creator, entries in private_dictionaries.items():
        for mask, (vr, vm, name, retired) in entries.items():
            tag = BaseTag(int(mask.lower().replace("xx", "10"), 16))
            yield TagInfo(tag, "", name, vr, vm, bool(retired), creator)


def search_tags(query: str, *, limit: int = 20, private: bool = True) -> list[TagInfo]:
    """Fuzzy search of the data dictionary (public and private) by keyword, name or number.

    Exact matches come first, then names containing every word of the query,
    then close spellings. Private entries are shown at block ``10``.

    >>> [str(i) for i in search_tags("window center", limit=2)]
    ['(0028,1050) WindowCenter', '(0028,1055) WindowCenterWidthExplanation']
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RetiredTagWarning)  # retired tags are listed as such
            path = parse_tag(query)
    except (TagSyntaxError, UnknownTagError):
        path = None
    exact: list[TagInfo] = []
    if path is not None and len(path.steps) == 1:
        exact.append(lookup(path))
        successor = _successor(exact[0]) if exact[0].retired else None
        if successor is not None:
            exact.append(successor)

    words = [_normalize(w) for w in query.split() if _normalize(w)]
    whole = _normalize(query)
    scored: list[tuple[float, str, TagInfo]] = []
    for info in _all_entries():
        if info.creator and not private:
            continue
        if any(info.tag == hit.tag and info.creator == hit.creator for hit in exact):
            continue
        haystack = _normalize(info.keyword) + " " + _normalize(info.name)
        if words and all(word in haystack for word in words):
            score = 2.0 + (1.0 if whole and whole in haystack else 0.0) - len(info.name) / 1000
        elif whole and info.creator and whole in _normalize(info.creator):
            score = 1.5 - len(info.name) / 1000
        else:
            continue
        score -= 0.5 * info.retired + 0.25 * (info.creator is not None)
        scored.append((-score, f"{info.tag:08X}{info.creator or ''}", info))
    scored.sort(key=lambda item: (item[0], item[1]))
    hits = exact + [info for _, _, info in scored]
    if not hits:
        hits = [lookup(tag) for tag in _closest_tags(query, count=min(limit, _MAX_SUGGESTIONS))]
    return hits[:limit]
