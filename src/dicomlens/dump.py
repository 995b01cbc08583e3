"""Render a dataset as readable text (``dicomlens show``) or as the DICOM JSON model.

The text dump is ``print(ds)`` made readable: file meta first, sequences
nested with numbered items, private elements labelled with their creator and
known name, long and binary values summarised, optional filters and masking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from dicomlens.access import iter_elements
from dicomlens.profile import is_identifying
from dicomlens.tags import TagPath, format_tag
from dicomlens.values import value_text

__all__ = ["DumpOptions", "dump", "is_phi", "to_json_model"]

MASK: Final = "***"

_DATE_VRS: Final = frozenset({"DA", "DT"})
_TEXT_VRS: Final = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN", "CS", "AE", "UN", "OB"})

_STYLE: Final = {"tag": "2", "label": "36", "private": "35", "vr": "33", "mask": "31", "head": "1"}


def is_phi(tag: int, VR: str) -> bool:
    """Whether ``--mask`` hides this element's value: names, dates, AE titles, free
    text in private elements, and whatever the PS3.15 Basic Profile removes or
    replaces (sequences stay: their items are masked element by element)."""
    tag = Tag(tag)
    if VR in ("PN", "AE") or VR in _DATE_VRS:
        return True
    if tag.is_private:
        return not tag.is_private_creator and VR in _TEXT_VRS
    return VR != "SQ" and is_identifying(tag)


@dataclass(frozen=True)
class DumpOptions:
    """What :func:`dump` shows.

    Attributes
    ----------
    tags
        Show only the elements at these paths (empty: everything).
    grep
        Keep only elements whose tag, name or value contains this text
        (case-insensitive), with the sequences around them.
    private
        Show private elements.
    depth
        Deepest sequence level to expand (0: top level only; None: all).
    mask
        Replace identifying values by ``***``.
    color
        Use ANSI colours.
    value_width
        Longest value text before it is shortened.
    names
        Label public elements by their dictionary name (``Window Center``, as
        ``print(ds)`` does) instead of their keyword.
    """

    tags: tuple[TagPath, ...] = ()
    grep: str | None = None
    private: bool = True
    depth: int | None = None
    mask: bool = False
    color: bool = False
    value_width: int = 80
    names: bool = False


@dataclass
class _Row:
    level: int
    text: str
    search: str
    parent: int | None
    children: list[int] = field(default_factory=list)


def dump(ds: Dataset, options: DumpOptions = DumpOptions()) -> str:
    """The dataset as text, file meta first.

    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.reading import read
    >>> ds = read(get_testdata_file("CT_small.dcm"))
    >>> print(dump(ds, DumpOptions(grep="other patient", mask=True)))
    # Data set
    (0010,1002) OtherPatientIDsSequence                 SQ  2 items
    """
    style = _Styler(options.color)
    sections: list[tuple[str, list[_Row]]] = []
    meta = getattr(ds, "file_meta", None)
    for title, dataset in (("File meta information", meta), ("Data set", ds)):
        if dataset is None or len(dataset) == 0:
            continue
        rows: list[_Row] = []
        if options.tags:
            for path in options.tags:
                for match in iter_elements(dataset, path):
                    _add_element(
                        rows, match.element, 0, None, options, style, match.path, match.value
                    )
        else:
            for element in dataset:
                _add_element(rows, element, 0, None, options, style)
        if options.grep:
            rows = _grep(rows, options.grep)
        if rows:
            sections.append((title, rows))
    out: list[str] = []
    for title, rows in sections:
        out.append(style("head", f"# {title}"))
        out.extend(row.text for row in rows)
    return "\n".join(out)


def _add_element(
    rows: list[_Row],
    element: DataElement,
    level: int,
    parent: int | None,
    options: DumpOptions,
    style: _Styler,
    path: str | None = None,
    value: Any = None,
) -> None:
    if element.tag.is_private and not options.private:
        return
    label = path or _label(element, names=options.names)
    if options.names and path is not None and path == element.keyword:
        label = element.name  # a top-level element asked for by keyword
    if path is None:
        value = element.value
    masked = options.mask and is_phi(element.tag, element.VR) and not element.is_empty
    text_value = MASK if masked else _value_text(element, value, options.value_width)
    indent = "  " * level
    width = max(40 - len(indent), len(label) + 2)
    kind = "private" if element.tag.is_private else "label"
    shown = style("mask", text_value) if masked else text_value
    line = (
        f"{indent}{style('tag', _tag_text(element.tag))} {style(kind, label.ljust(width))}"
        f"{style('vr', str(element.VR).ljust(4))}{shown}"
    )
    words = f"{format_tag(element.tag)} {element.keyword} {element.name} {label}"
    search = f"{words} {'' if masked else text_value}"
    index = _append(rows, level, line, search, parent)
    if element.VR != "SQ":
        items = []
    elif isinstance(value, Dataset):  # one item selected by a path like Seq[2]
        items = [(_item_number(label), value)]
    else:
        items = list(enumerate(value))
    if options.depth is not None and level // 2 >= options.depth:
        return
    for position, item in items:
        header = f"{'  ' * (level + 1)}{style('head', f'[{position}]')}"
        item_index = _append(rows, level + 1, header, "", index)
        for child in item:
            _add_element(rows, child, level + 2, item_index, options, style)


def _item_number(path: str) -> int:
    """The item number a path like ``Seq[3]`` ends with."""
    return int(path[path.rindex("[") + 1 : -1])


def _append(rows: list[_Row], level: int, text: str, search: str, parent: int | None) -> int:
    rows.append(_Row(level, text, search.lower(), parent))
    index = len(rows) - 1
    if parent is not None:
        rows[parent].children.append(index)
    return index


def _tag_text(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _label(element: DataElement, *, names: bool = False) -> str:
    tag = element.tag
    if tag.is_private:
        if tag.is_private_creator:
            return "PrivateCreator"
        creator = getattr(element, "private_creator", None)
        if not creator:
            return "(private)"
        name = element.name[1:-1] if element.name.startswith("[") else ""
        return f"[{creator}] {name}".rstrip()
    return element.name if names or not element.keyword else element.keyword


def _value_text(element: DataElement, value: Any, width: int) -> str:
    if element.VR == "SQ" and not isinstance(value, Dataset):
        count = len(value or [])
        return f"{count} item{'s' if count != 1 else ''}"
    text = value_text(value, limit=width)
    if element.VR == "UI" and isinstance(value, UID) and value.name != str(value):
        text += f" ({value.name})"
    return text


def _grep(rows: list[_Row], needle: str) -> list[_Row]:
    """Rows that match, with their ancestors, in their original order."""
    needle = needle.lower()
    keep: set[int] = set()
    for index, row in enumerate(rows):
        if needle in row.search:
            current: int | None = index
            while current is not None and current not in keep:
                keep.add(current)
                current = rows[current].parent
    return [row for index, row in enumerate(rows) if index in keep]


class _Styler:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, kind: str, text: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{_STYLE[kind]}m{text}\x1b[0m"


# ---------------------------------------------------------------------------
# DICOM JSON model (PS3.18 Annex F)
# ---------------------------------------------------------------------------

_OMITTED: Final = "dicomlens:omitted"


def to_json_model(
    ds: Dataset,
    *,
    bulk_data: bool = False,
    bulk_data_threshold: int = 1024,
    mask: bool = False,
) -> dict[str, Any]:
    """``{"file_meta": {...}, "dataset": {...}}`` in the DICOM JSON model.

    Parameters
    ----------
    bulk_data
        Include every binary value as ``InlineBinary``; otherwise values longer
        than ``bulk_data_threshold`` bytes are left out (the element keeps its VR).
    mask
        Replace identifying values (see :func:`is_phi`) by ``***``.

    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.reading import read
    >>> model = to_json_model(read(get_testdata_file("CT_small.dcm")))
    >>> model["dataset"]["00280010"], "Value" in model["dataset"]["7FE00010"]
    ({'vr': 'US', 'Value': [128]}, False)
    """
    model = {}
    meta = getattr(ds, "file_meta", None)
    for key, dataset in (("file_meta", meta), ("dataset", ds)):
        if dataset is None:
            continue
        if bulk_data:
            encoded = dataset.to_json_dict(bulk_data_threshold=2**62)
        else:
            encoded = dataset.to_json_dict(
                bulk_data_threshold=bulk_data_threshold,
                bulk_data_element_handler=lambda _element: _OMITTED,
            )
        _clean(encoded, mask)
        model[key] = encoded
    return model


def _clean(encoded: dict[str, Any], mask: bool) -> None:
    """Drop the omitted bulk data markers and mask identifying values, at every depth."""
    for key, entry in encoded.items():
        if entry.get("BulkDataURI") == _OMITTED:
            del entry["BulkDataURI"]
        vr = entry.get("vr", "")
        if mask and "Value" in entry and is_phi(int(key, 16), vr):
            entry["Value"] = [{"Alphabetic": MASK} if vr == "PN" else MASK for _ in entry["Value"]]
        if mask and "InlineBinary" in entry and is_phi(int(key, 16), vr):
            del entry["InlineBinary"]
        if vr == "SQ":
            for item in entry.get("Value", []):
                _clean(item, mask)
