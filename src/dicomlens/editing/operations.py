"""Edit operations on a dataset in memory: set, add and delete at any tag path.

:class:`Edit` is one operation parsed from the command line's notation,
:func:`apply_edits` applies a list of them and says what changed (:class:`Change`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from pydicom import config
from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import VR as VR_
from pydicom.valuerep import validate_value

from dicomlens.errors import EditError, UsageError
from dicomlens.tags import ElementRef, PathStep, TagPath, parse_tag
from dicomlens.values import value_text

__all__ = ["Action", "Change", "Edit", "apply_edits", "split_assignment"]


class Action(Enum):
    SET = "set"
    ADD = "add"
    DELETE = "delete"


@dataclass(frozen=True)
class Edit:
    """One operation: set (modify or insert), add (insert, may create sequence
    items; VR explicit or from the dictionary) or delete, at a tag path."""

    action: Action
    path: TagPath
    value: str | None = None
    VR: str | None = None

    @classmethod
    def parse(cls, action: Action | str, text: str) -> Edit:
        """``TAG=VALUE`` for set, ``TAG[VR]=VALUE`` or ``TAG=VALUE`` for add, ``TAG`` for delete.

        >>> Edit.parse("set", "PatientName=Doe^Jane").path.tag
        (0010,0010)
        >>> Edit.parse("add", "(0011,xx01)[ACME 1.0][LO]=MRN-1").VR
        'LO'
        """
        action = Action(action)
        if action is Action.DELETE:
            return cls(action, parse_tag(text))
        tag_text, equals, value = split_assignment(text)
        if not equals:
            raise UsageError(f"--{action.value} {text!r}: expected TAG=VALUE")
        vr = None
        match = _TRAILING_VR.search(tag_text)
        if match and match["vr"] in _KNOWN_VRS:
            vr, tag_text = match["vr"], tag_text[: match.start()]
        return cls(action, parse_tag(tag_text), value, vr)

    def __str__(self) -> str:
        if self.action is Action.DELETE:
            return f"delete {self.path}"
        vr = f"[{self.VR}]" if self.VR else ""
        return f"{self.action.value} {self.path}{vr}={self.value}"


_TRANSFER_SYNTAX: Final = ElementRef(0x0002, 0x0010)
_TRAILING_VR: Final = re.compile(r"\[(?P<vr>[A-Z]{2})\]\s*$")
_KNOWN_VRS: Final = frozenset(vr.value for vr in VR_)


def split_assignment(text: str) -> tuple[str, str, str]:
    """``TAG=VALUE`` split at its first ``=`` outside brackets and quotes: (tag, "=", value),
    or (text, "", "") without one."""
    depth, quoted = 0, False
    for position, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif char == "=" and not quoted and depth == 0:
            return text[:position].strip(), "=", text[position + 1 :]
    return text, "", ""


@dataclass(frozen=True)
class Change:
    """What an edit did to one element: old and new value as text ("" when absent)."""

    path: str
    old: str
    new: str

    def __str__(self) -> str:
        if not self.old:
            return f"+ {self.path}: {self.new}"
        if not self.new:
            return f"- {self.path}: {self.old}"
        return f"~ {self.path}: {self.old} -> {self.new}"


def apply_edits(ds: Dataset, edits: Sequence[Edit], *, allow_invalid: bool = False) -> list[Change]:
    """Apply edits to a dataset in memory and return what changed.

    Values are validated against their VR (length, characters, dates) unless
    ``allow_invalid``; non-ASCII text switches a missing or ASCII Specific
    Character Set to ISO_IR 192 (UTF-8); the file meta Media Storage SOP
    Instance UID follows SOPInstanceUID.

    Raises
    ------
    EditError
        A value does not fit its VR, a private tag has no known VR, a path
        cannot be created, a binary value is given as text.
    """
    changes: list[Change] = []
    for edit in edits:
        if edit.path.steps[0].ref == _TRANSFER_SYNTAX:
            raise EditError(
                f"{edit.path}: the transfer syntax describes how the file is encoded; "
                "changing it needs transcoding, which edit does not do"
            )
        if edit.action is Action.DELETE:
            changes += _delete(ds, edit.path)
        else:
            changes += _assign(ds, edit, allow_invalid=allow_invalid)
    if changes:
        _keep_meta_in_sync(ds)
    return changes


def _delete(ds: Dataset, path: TagPath) -> list[Change]:
    """Remove elements, or with a final ``[n]``/``[*]`` sequence items or values."""
    changes = []
    subscript = path.steps[-1].subscript
    for parent, tag, where in reversed(list(_targets(ds, path, containers=False, leaf=False))):
        element = parent[tag]
        if subscript is None:
            changes.append(Change(where, _text(element), ""))
            del parent[tag]
            continue
        values = list(element.value) if element.VM > 1 or element.VR == "SQ" else [element.value]
        keep = [] if subscript == "*" else list(values)
        if isinstance(subscript, int) and -len(values) <= subscript < len(values):
            del keep[subscript]
        if len(keep) == len(values):
            continue
        old = _text(element)
        element.value = keep if element.VR == "SQ" or len(keep) != 1 else keep[0]
        changes.append(Change(where, old, _text(element)))
    return changes[::-1]


def _assign(ds: Dataset, edit: Edit, *, allow_invalid: bool) -> list[Change]:
    assert edit.value is not None
    if edit.path.steps[-1].subscript is not None:
        raise EditError(f"{edit.path}: set a whole element, not one value (use a\\\\b for several)")
    changes = []
    targets = list(_targets(ds, edit.path, containers=edit.action is Action.ADD, leaf=True))
    if not targets:
        raise EditError(f"{edit.path}: no such element to set")
    for parent, tag, where in targets:
        vr = _vr_for(parent, tag, edit)
        value = _convert(edit.value, vr, where, allow_invalid=allow_invalid)
        old = _text(parent[tag]) if tag in parent else ""
        if tag in parent and vr == parent[tag].VR:
            parent[tag].value = value
        else:
            parent.add_new(tag, vr, value)
        _ensure_charset(ds, value)
        changes.append(Change(where, old, _text(parent[tag])))
    return changes


def _targets(
    ds: Dataset, path: TagPath, *, containers: bool, leaf: bool
) -> Iterator[tuple[Dataset, BaseTag, str]]:
    """(dataset holding the element, its tag, its path) for every place the path names.

    ``containers`` makes missing sequences and items; ``leaf`` also yields places
    where the last element is missing (to insert it), making private blocks as needed.
    """
    steps = path.steps
    holder: Dataset = ds
    if steps[0].ref.group == 0x0002 and hasattr(ds, "file_meta"):
        holder = ds.file_meta
    yield from _walk_targets(holder, steps, "", containers, leaf)


def _walk_targets(
    ds: Dataset, steps: tuple[PathStep, ...], prefix: str, containers: bool, leaf: bool
) -> Iterator[tuple[Dataset, BaseTag, str]]:
    step, rest = steps[0], steps[1:]
    tag = _resolve_or_create(ds, step.ref, create=containers or (leaf and not rest))
    if tag is None:
        return
    if not rest:
        if tag in ds or leaf:
            yield ds, tag, prefix + _step_name(step.ref, tag)
        return
    if tag not in ds:
        if not containers:
            return
        ds.add_new(tag, "SQ", [])
    sequence = ds[tag]
    if sequence.VR != "SQ":
        raise EditError(f"{prefix}{step.ref}: is {sequence.VR}, not a sequence")
    items = sequence.value
    if isinstance(step.subscript, int):
        while containers and len(items) <= step.subscript:
            items.append(Dataset())
        chosen = [step.subscript] if -len(items) <= step.subscript < len(items) else []
    else:
        if containers and not items:
            items.append(Dataset())
        chosen = list(range(len(items)))
    for position in chosen:
        where = f"{prefix}{step.ref}[{position % len(items)}]."
        yield from _walk_targets(items[position], rest, where, containers, leaf)


def _resolve_or_create(ds: Dataset, ref: ElementRef, *, create: bool) -> BaseTag | None:
    if ref.creator is None:
        return ref.tag
    try:
        return ds.private_block(ref.group, ref.creator, create=create).get_tag(ref.element)
    except KeyError:
        return None


def _step_name(ref: ElementRef, tag: BaseTag) -> str:
    return str(ref) if ref.creator else str(ElementRef(tag.group, tag.element))


def _vr_for(parent: Dataset, tag: BaseTag, edit: Edit) -> str:
    if edit.VR:
        return edit.VR
    if tag in parent and parent[tag].VR not in ("UN", None):
        return str(parent[tag].VR)
    if tag.is_private:
        creator = edit.path.leaf.creator
        if creator:
            try:
                return str(get_private_entry(tag, creator)[0])
            except KeyError:
                pass
        raise EditError(
            f"{edit.path}: private element of unknown VR; give it, e.g. --add '{edit.path}[LO]=...'"
        )
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise EditError(
            f"{edit.path}: not in the dictionary; give the VR with --add TAG[VR]=VALUE"
        ) from None
    if " or " in vr:
        raise EditError(
            f"{edit.path}: the dictionary allows {vr}; give one with --add TAG[VR]=VALUE"
        )
    return str(vr)


_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
_INT_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "AT"})
_FLOAT_VRS: Final = frozenset({"FL", "FD"})


def _convert(text: str, vr: str, where: str, *, allow_invalid: bool) -> Any:
    if vr in _BINARY_VRS:
        raise EditError(f"{where}: a {vr} value cannot be given as text")
    parts = text.split("\\") if vr not in ("LT", "ST", "UT") else [text]
    values: list[Any] = []
    for part in parts:
        try:
            if vr in _INT_VRS:
                values.append(int(part, 0))
            elif vr in _FLOAT_VRS:
                values.append(float(part))
            else:
                values.append(part)
        except ValueError:
            raise EditError(f"{where}: {vr} needs a number, got {part!r}") from None
        if not allow_invalid:
            _validate(vr, values[-1], where)
    return values[0] if len(values) == 1 else values


def _validate(vr: str, value: Any, where: str) -> None:
    try:
        validate_value(vr, value, config.RAISE)
        if vr == "DA" and value:
            datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, TypeError) as exc:
        reason = str(exc).split(". Please see")[0].rstrip(".")
        if vr == "DA" and "Invalid value" not in reason:
            reason = f"Invalid value for VR DA: {value!r} is not a calendar date"
        raise EditError(f"{where}: {reason} (--allow-invalid writes it anyway)") from None


def _ensure_charset(ds: Dataset, value: Any) -> None:
    texts = value if isinstance(value, list) else [value]
    if not any(isinstance(t, str) and not t.isascii() for t in texts):
        return
    current = ds.get("SpecificCharacterSet")
    if not current or current in ("ISO_IR 6", ["ISO_IR 6"]):
        ds.SpecificCharacterSet = "ISO_IR 192"


def _keep_meta_in_sync(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID


def _text(element: DataElement) -> str:
    return (
        value_text(element.value, limit=60)
        if element.VR != "SQ"
        else f"<{len(element.value)} items>"
    )
