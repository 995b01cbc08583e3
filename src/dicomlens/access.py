"""Get values and find elements in datasets by tag path (pure, in memory).

>>> from pydicom.data import get_testdata_file
>>> from dicomlens.reading import read
>>> ds = read(get_testdata_file("examples_overlay.dcm"))
>>> get(ds, "(0028, 1050)"), get(ds, "WindowCenter[1]")
([450.0, 200.0], 200.0)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import IS, DSdecimal, DSfloat

from dicomlens.errors import ElementNotFoundError
from dicomlens.tags import WILDCARD, ElementRef, PathStep, TagLike, TagPath, parse_tag

__all__ = ["Match", "element_path_step", "find", "get", "iter_elements", "resolve_ref"]

_FILE_META_GROUP: Final = 0x0002


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


class Match(NamedTuple):
    """One element found in a dataset, with the concrete path that leads to it.

    ``value`` is the selected value: the element's whole value, one value of a
    multi-valued element, or one item (a Dataset) of a sequence.
    """

    path: str
    element: DataElement
    value: Any


def resolve_ref(ds: Dataset, ref: ElementRef) -> BaseTag | None:
    """The tag ``ref`` has in ``ds`` (private creators looked up), or None."""
    if ref.creator is None:
        return ref.tag
    try:
        return ds.private_block(ref.group, ref.creator).get_tag(ref.element)
    except (KeyError, ValueError):
        return None


def iter_elements(ds: Dataset, spec: TagLike, *, prefix: str = "") -> Iterator[Match]:
    """Every element and value that the path ``spec`` selects in ``ds``.

    A sequence step without an index, or with ``[*]``, goes into every item.
    File meta elements (group 0002) are found in ``ds.file_meta``.
    """
    path = parse_tag(spec)
    first = path.steps[0].ref
    if first.group == _FILE_META_GROUP and first.creator is None and hasattr(ds, "file_meta"):
        ds = ds.file_meta
    yield from _walk_path(ds, path.steps, prefix)


def _walk_path(ds: Dataset, steps: tuple[PathStep, ...], prefix: str) -> Iterator[Match]:
    step, rest = steps[0], steps[1:]
    tag = resolve_ref(ds, step.ref)
    if tag is None or tag not in ds:
        return
    element = ds[tag]
    here = prefix + (str(step.ref) if step.ref.creator else element_path_step(element))
    value = element.value
    if rest:
        if element.VR != "SQ":
            return
        for position, item in _select(list(value), step.subscript, default_all=True):
            yield from _walk_path(item, rest, f"{here}[{position}].")
        return
    if step.subscript is None:
        yield Match(here, element, _plain(value))
        return
    values = list(value) if isinstance(value, Sequence | MultiValue | list) else [value]
    if not isinstance(value, Sequence | MultiValue | list) and element.is_empty:
        values = []
    for position, selected in _select(values, step.subscript, default_all=False):
        yield Match(f"{here}[{position}]", element, _plain(selected))


def _select(
    values: list[Any], index: int | str | None, *, default_all: bool
) -> list[tuple[int, Any]]:
    if index == WILDCARD or (index is None and default_all):
        return list(enumerate(values))
    assert isinstance(index, int)
    position = index + len(values) if index < 0 else index
    return [(position, values[position])] if 0 <= position < len(values) else []


def element_path_step(element: DataElement) -> str:
    """How ``element`` is written as a path step: its keyword, number, or creator form."""
    tag = element.tag
    creator = getattr(element, "private_creator", None)
    if tag.is_private and creator and not tag.is_private_creator:
        return str(ElementRef(tag.group, tag.element & 0xFF, creator))
    return str(ElementRef(tag.group, tag.element))


def _plain(value: Any) -> Any:
    """Numbers as int/float, multiple values as a list; the rest as pydicom gives it."""
    if isinstance(value, MultiValue):
        return [_plain(v) for v in value]
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, DSfloat | DSdecimal):
        return float(value)
    return value


def _is_multiple(path: TagPath) -> bool:
    """True when the path can select more than one value (wildcards)."""
    for position, step in enumerate(path.steps):
        if step.subscript == WILDCARD:
            return True
        if step.subscript is None and position < len(path.steps) - 1:
            return True
    return False


def get(ds: Dataset, spec: TagLike, default: Any = _MISSING) -> Any:
    """The value at a tag path, in any notation.

    Multi-valued elements give a list; ``[n]`` picks one value or item; paths
    with wildcards (``[*]``, or a sequence step without index) give a list of
    every selected value.

    Parameters
    ----------
    ds
        The dataset (file meta elements are found too).
    spec
        Tag or tag path in any notation.
    default
        Returned when nothing is there; without it a missing element raises
        :class:`~dicomlens.errors.ElementNotFoundError`.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.reading import read
    >>> ds = read(get_testdata_file("CT_small.dcm"))
    >>> get(ds, "0x00100010"), get(ds, "(0020,0032)")
    ('CompressedSamples^CT1', [-158.135803, -179.035797, -75.699997])
    >>> get(ds, "OtherPatientIDsSequence[*].PatientID")
    ['ABCD1234', '1234ABCD']
    >>> get(ds, "PatientComments", default=None) is None
    True
    """
    path = parse_tag(spec)
    values = [match.value for match in iter_elements(ds, path)]
    if _is_multiple(path):
        return values
    if values:
        return values[0]
    if default is not _MISSING:
        return default
    raise ElementNotFoundError(f"no element at {path}")


def find(ds: Dataset, spec: TagLike) -> list[Match]:
    """Every occurrence of a tag (or a path's tail) at any depth, in file order.

    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.reading import read
    >>> ds = read(get_testdata_file("CT_small.dcm"))
    >>> [m.path for m in find(ds, "PatientID")]
    ['PatientID', 'OtherPatientIDsSequence[0].PatientID', 'OtherPatientIDsSequence[1].PatientID']
    """
    path = parse_tag(spec)
    found: list[Match] = []
    if hasattr(ds, "file_meta"):
        found += _find_in(ds.file_meta, path, "")
    found += _find_in(ds, path, "")
    return found


def _find_in(ds: Dataset, path: TagPath, prefix: str) -> list[Match]:
    found: list[Match] = []
    first = resolve_ref(ds, path.steps[0].ref)
    for element in ds:
        if element.tag == first:
            found += _walk_path(ds, path.steps, prefix)
        if element.VR == "SQ":
            here = prefix + element_path_step(element)
            for position, item in enumerate(element.value):
                found += _find_in(item, path, f"{here}[{position}].")
    return found
