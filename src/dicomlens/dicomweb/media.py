"""Media types of DICOMweb (PS3.18 8.7): ``Accept`` negotiation and multipart bodies.

A request's ``Accept`` header is read into :class:`MediaRange` values (type,
parameters, quality); :func:`multipart` streams ``multipart/related`` parts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "COMPRESSED_MEDIA_TYPES",
    "EXPLICIT_LITTLE",
    "MediaRange",
    "accepted",
    "file_chunks",
    "multipart",
    "multipart_type",
    "new_boundary",
]

EXPLICIT_LITTLE: Final = "1.2.840.10008.1.2.1"
"""The default transfer syntax of ``application/dicom`` and of native frames."""

COMPRESSED_MEDIA_TYPES: Final = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
"""The media type of one frame of each compressed transfer syntax (PS3.18 Table 8.7.3-2)."""

_ITEM: Final = re.compile(r"""\s*([^;,\s]+)\s*((?:;\s*[^;,=\s]+\s*=\s*(?:"[^"]*"|[^;,\s]*)\s*)*)""")
_PARAMETER: Final = re.compile(r""";\s*([^;,=\s]+)\s*=\s*("[^"]*"|[^;,\s]*)""")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class MediaRange:
    """One entry of an ``Accept`` header: ``multipart/related; type="application/dicom"``."""

    type: str
    parameters: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0

    @property
    def part_type(self) -> str:
        """The type of each part of a ``multipart/related`` range (else the type itself)."""
        if self.type == "multipart/related":
            return self.parameters.get("type", "")
        return self.type

    @property
    def transfer_syntax(self) -> str | None:
        """The ``transfer-syntax`` parameter (``*`` means any), or None when absent."""
        return self.parameters.get("transfer-syntax")

    def matches(self, wanted: str) -> bool:
        """Whether ``wanted`` (``type/subtype``) falls in this range (``*/*``, ``image/*``)."""
        if self.type in ("*/*", wanted):
            return True
        main, _, sub = self.type.partition("/")
        return sub == "*" and wanted.split("/")[0] == main


def accepted(header: str | None) -> list[MediaRange]:
    """The ranges of an ``Accept`` header, best first; ``*/*`` when there is none.

    >>> [r.part_type for r in accepted('multipart/related; type="application/dicom"')]
    ['application/dicom']
    >>> accepted("image/png;q=0.5, image/jpeg")[0].type
    'image/jpeg'
    """
    ranges = []
    for text in _split(header or "*/*"):
        found = _ITEM.match(text)
        if not found:
            continue
        parameters = {
            name.lower(): value.strip('"') for name, value in _PARAMETER.findall(found[2])
        }
        try:
            quality = float(parameters.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append(MediaRange(found[1].lower(), parameters, quality))
    ranges.sort(key=lambda r: -r.quality)  # stable: equal qualities keep their order
    return ranges or [MediaRange("*/*")]


def _split(header: str) -> Iterator[str]:
    """An ``Accept`` header's entries: split at commas outside quotes."""
    start, quoted = 0, False
    for position, character in enumerate(header):
        if character == '"':
            quoted = not quoted
        elif character == "," and not quoted:
            yield header[start:position]
            start = position + 1
    yield header[start:]


def multipart_type(part_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    """The ``Content-Type`` of a ``multipart/related`` body of ``part_type`` parts."""
    syntax = f"; transfer-syntax={transfer_syntax}" if transfer_syntax else ""
    return f'multipart/related; type="{part_type}"; boundary={boundary}{syntax}'


def new_boundary() -> str:
    return secrets.token_hex(16)


def multipart(parts: Iterable[tuple[str, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """A ``multipart/related`` body: each part's content type, then its chunks."""
    for content_type, chunks in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def file_chunks(path: str, *, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The bytes of a file (or of ``length`` bytes from ``start``) in 1 MiB chunks."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left is None or left > 0:
            chunk = fh.read(_CHUNK if left is None else min(_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
