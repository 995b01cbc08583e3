"""WADO-RS (PS3.18 10.4): instances and frames from the catalog (metadata and bulk
data: :mod:`~dicomlens.dicomweb.metadata`).

Instances are found by their UIDs in the catalog and served from the files
themselves, never from a path taken from the URL; a file changed since it was
indexed is not served (index again). Decoding compressed data for a client that
wants native pixels runs in a child process limited in memory and time.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from dicomlens.catalog import Catalog
from dicomlens.catalog.rows import slices_from_json
from dicomlens.dicomweb.media import (
    COMPRESSED_MEDIA_TYPES,
    EXPLICIT_LITTLE,
    MediaRange,
    file_chunks,
)
from dicomlens.dicomweb.problems import BadRequest, NotAcceptable, NotFound
from dicomlens.isolation import run_isolated
from dicomlens.reading import read
from dicomlens.series import SliceInfo, number_or_none
from dicomlens.volume import load_slice
from dicomlens.volume.codecs import decode_pixel_data
from dicomlens.volume.mosaic import unpack_mosaic

__all__ = ["Stored", "dicom_parts", "frame_parts", "locate", "slice_of"]

_LITTLE_NATIVE: Final = frozenset({"1.2.840.10008.1.2", EXPLICIT_LITTLE})


@dataclass(frozen=True)
class Stored:
    """One catalogued instance: where its file is and what the catalog knows of it."""

    path: str
    fingerprint: tuple[int, int, int]
    study: str
    series: str
    sop: str
    transfer_syntax: str
    slices: str
    frames: int
    bits_allocated: int
    pixel_offset: int | None = None
    """Where the value of a Pixel Data element of defined length begins in the file."""
    pixel_length: int | None = None
    frame_size: int = 0
    """Bytes of one uncompressed frame (rows x columns x samples x bits allocated)."""

    def check(self) -> None:
        """Refuse a file changed or gone since it was indexed (its bytes are not the
        instance the catalog describes)."""
        try:
            found = os.stat(self.path)
        except OSError:
            raise NotFound(f"instance {self.sop}: its file is gone; index again") from None
        if (found.st_size, found.st_mtime_ns, found.st_ino) != self.fingerprint:
            raise NotFound(f"instance {self.sop}: its file changed since it was indexed")

    @property
    def compressed(self) -> bool:
        return bool(self.transfer_syntax) and UID(self.transfer_syntax).is_compressed


def locate(
    catalog: Catalog, study: str, series: str | None = None, sop: str | None = None
) -> list[Stored]:
    """The instances of a study, series or one instance, in series and instance order."""
    where, parameters = ["st.study_instance_uid = ?"], [study]
    if series is not None:
        where.append("se.series_instance_uid = ?")
        parameters.append(series)
    if sop is not None:
        where.append("i.sop_instance_uid = ?")
        parameters.append(sop)
    rows = catalog.execute(
        "SELECT f.path, f.size, f.mtime_ns, f.inode, st.study_instance_uid, "
        "se.series_instance_uid, i.sop_instance_uid, coalesce(i.transfer_syntax, ''), i.slices, "
        "coalesce(i.number_of_frames, 1), coalesce(json_extract(i.elements, '$.\"00280100\"'), 0), "
        "i.pixel_offset, i.pixel_length, coalesce(i.rows, 0) * coalesce(i.columns, 0) * "
        "coalesce(json_extract(i.elements, '$.\"00280002\"'), 1) "
        "FROM instances i JOIN files f ON f.id = i.file "
        "JOIN series se ON se.id = i.series JOIN studies st ON st.id = se.study "
        f"WHERE {' AND '.join(where)} ORDER BY se.series_number, se.id, i.instance_number, i.id",
        parameters,
    ).fetchall()
    if not rows:
        raise NotFound("no such " + ("instance" if sop else "series" if series else "study"))
    seen: set[str] = set()
    found = []
    for (
        path,
        size,
        mtime,
        inode,
        *uids,
        syntax,
        slices,
        frames,
        bits,
        offset,
        length,
        pixels,
    ) in rows:
        study_uid, series_uid, sop_uid = uids
        if sop_uid in seen:  # the same instance at several paths: served once
            continue
        seen.add(sop_uid)
        found.append(Stored(path, (size, mtime, inode), study_uid, series_uid, sop_uid, syntax,
                            slices, int(frames), int(bits), offset, length,
                            int(pixels) * int(bits) // 8))  # fmt: skip
    return found


def dicom_parts(
    instances: list[Stored], ranges: list[MediaRange]
) -> Iterator[tuple[str, Iterator[bytes]]]:
    """The parts of a ``multipart/related; type="application/dicom"`` answer: each
    file's bytes as stored, or rewritten in Explicit VR Little Endian (decompressed)
    when that is what the client asks for. Every file is checked, and the first part
    made, before anything is sent: a changed file, or a single instance that cannot be
    rewritten, fails the request with its reason instead of a half-sent answer."""
    choices = [r for r in ranges if r.part_type in ("application/dicom", "*/*", "")]
    if not choices:
        raise NotAcceptable("instances are sent as multipart/related; type=application/dicom")
    plans = [(stored, _dicom_plan(stored, choices)) for stored in instances]
    for stored in instances:
        stored.check()
    parts = (_dicom_part(stored, as_stored) for stored, as_stored in plans)
    first = next(parts, None)
    return itertools.chain([] if first is None else [first], parts)


def _dicom_part(stored: Stored, as_stored: bool) -> tuple[str, Iterator[bytes]]:
    if as_stored:
        return _dicom_type(stored.transfer_syntax), file_chunks(stored.path)
    data = run_isolated(_explicit_little, stored.path, what=stored.sop)
    return _dicom_type(EXPLICIT_LITTLE), iter([data])


def _dicom_plan(stored: Stored, choices: list[MediaRange]) -> bool:
    """True to send the file as stored, False to rewrite it in Explicit VR Little Endian."""
    for choice in choices:
        wanted = choice.transfer_syntax
        if wanted == "*" or wanted == stored.transfer_syntax:
            return True
        if (wanted or EXPLICIT_LITTLE) == EXPLICIT_LITTLE:
            return stored.transfer_syntax == EXPLICIT_LITTLE
    syntax = stored.transfer_syntax or "unknown"
    raise NotAcceptable(
        f"instance {stored.sop} is stored in {syntax}; ask for it (transfer-syntax={syntax}), "
        f"for any (*), or for {EXPLICIT_LITTLE}"
    )


def _dicom_type(syntax: str) -> str:
    return f"application/dicom; transfer-syntax={syntax}" if syntax else "application/dicom"


def _explicit_little(path: str) -> bytes:
    """The file rewritten in Explicit VR Little Endian (decompressed, or its words
    swapped from big endian, when it was not)."""
    ds = read(path)
    syntax = UID(ds.file_meta.get("TransferSyntaxUID") or EXPLICIT_LITTLE)  # none: as read
    if _PIXEL_DATA in ds and not syntax.is_transfer_syntax:
        raise ValueError(f"its pixel data is in an unknown transfer syntax ({syntax})")
    if _PIXEL_DATA in ds and syntax.is_compressed:
        _decompress(ds, path)
    elif ds.original_encoding[1] is False:  # big endian
        _swap_words(ds)
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LITTLE)
    out = io.BytesIO()
    # the encoding is forced: pydicom's save_as refuses to change the byte order
    dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return out.getvalue()


_WORD_BYTES: Final = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_PIXEL_DATA: Final = 0x7FE00010


def _decompress(ds: Dataset, path: str) -> None:
    """Native pixel data in place of the compressed: by pydicom's ``decompress``, or,
    for grey images it cannot decode (12-bit JPEG, a plugin that fails), by the
    decoders the volumes use, one after another."""
    try:
        ds.decompress()
        return
    except Exception:  # each plugin raises its own types
        if (number_or_none(ds.get("SamplesPerPixel"), int) or 1) != 1:
            raise
    pixels = decode_pixel_data(ds, path)  # ValueError: every decoder's reason
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    del ds[_PIXEL_DATA]  # a new element: of a defined length
    ds.add_new(_PIXEL_DATA, "OW" if pixels.itemsize > 1 else "OB", little.tobytes())


def _swap_words(ds: Dataset) -> None:
    """Put the values pydicom keeps as bytes in the file's order (OW, OF, OL, OD, OV:
    Pixel Data among them) in little-endian order, at every depth."""
    for element in ds.iterall():
        size = _WORD_BYTES.get(element.VR)
        if size and isinstance(element.value, bytes):
            if len(element.value) % size:
                raise ValueError(f"{element.tag} {element.VR}: {len(element.value)} bytes "
                                 f"are not whole {size}-byte words")  # fmt: skip
            words = np.frombuffer(element.value, dtype=f">u{size}")
            element.value = words.astype(f"<u{size}").tobytes()


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


def frame_numbers(text: str, stored: Stored) -> list[int]:
    """``1,3,5`` as frame numbers (from 1), each checked against the instance's frames."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise BadRequest(f"frames are numbers from 1, separated by commas, not {text!r}") from None
    count = _frame_count(stored)
    for number in numbers:
        if not 1 <= number <= count:
            raise NotFound(f"instance {stored.sop} has {count} frame(s), not frame {number}")
    return numbers


def _frame_count(stored: Stored) -> int:
    infos = slices_from_json(stored.slices, stored.path)
    if len(infos) == 1 and infos[0].mosaic:
        return 1
    return max(stored.frames, len(infos)) if infos else 0


def frame_parts(
    stored: Stored, numbers: list[int], ranges: list[MediaRange]
) -> tuple[str, Iterator[tuple[str, Iterator[bytes]]]]:
    """The part type and parts of a frames answer: native little-endian pixels
    (``application/octet-stream``), or the stored compressed frames when the client
    accepts them (``transfer-syntax=*`` or their own media type)."""
    stored.check()
    send_stored = _frames_plan(stored, ranges)
    if send_stored:
        syntax = stored.transfer_syntax
        media_type = COMPRESSED_MEDIA_TYPES.get(syntax, "application/octet-stream")
        part = f"{media_type}; transfer-syntax={syntax}"
        frames = _compressed_frames(stored, numbers)
        return part.split(";")[0], ((part, iter([frame])) for frame in frames)
    part = f"application/octet-stream; transfer-syntax={EXPLICIT_LITTLE}"
    return "application/octet-stream", (
        (part, iter([native_frame(stored, number)])) for number in numbers
    )


def _frames_plan(stored: Stored, ranges: list[MediaRange]) -> bool:
    """True to send compressed frames as stored, False for native pixels."""
    stored_type = COMPRESSED_MEDIA_TYPES.get(stored.transfer_syntax)
    for choice in ranges:
        part, wanted = choice.part_type or choice.type, choice.transfer_syntax
        if part in ("application/octet-stream", "*/*"):
            if wanted == "*" and stored.compressed:
                return True
            if wanted in (None, "*", EXPLICIT_LITTLE):
                return False
        elif (
            stored_type is not None
            and MediaRange(part).matches(stored_type)
            and wanted in (None, "*", stored.transfer_syntax)
        ):
            return True
    raise NotAcceptable(
        "frames are sent as application/octet-stream (native) or in their stored "
        f"syntax ({stored_type or 'native'})"
    )


def _compressed_frames(stored: Stored, numbers: list[int]) -> list[bytes]:
    ds = read(stored.path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=stored.frames))
    return [frames[number - 1] for number in numbers]


def slice_of(stored: Stored, number: int) -> SliceInfo:
    """The catalogued image of frame ``number`` (from 1) of an instance."""
    infos = slices_from_json(stored.slices, stored.path, stored.fingerprint)
    if not infos:
        raise NotFound(f"instance {stored.sop} holds no image")
    if len(infos) == 1:
        return infos[0] if stored.frames == 1 else replace(infos[0], frame=number - 1)
    matching = [info for info in infos if (info.frame or 0) == number - 1]
    if not matching:
        raise NotFound(f"instance {stored.sop} has no frame {number}")
    return matching[0]


def native_frame(stored: Stored, number: int) -> bytes:
    """Frame ``number`` as native little-endian pixel data (1-bit images packed)."""
    if stored.transfer_syntax in _LITTLE_NATIVE and stored.bits_allocated in (8, 16, 32):
        as_stored = _stored_frame(stored, number)
        if as_stored is not None:
            return as_stored
    info = slice_of(stored, number)
    values = stored_values(info)
    if stored.bits_allocated == 1:
        return np.packbits(values.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def _stored_frame(stored: Stored, number: int) -> bytes | None:
    """Frame ``number`` of uncompressed little-endian Pixel Data: its bytes, read where
    the catalog found the value in the file (unchanged since: :meth:`Stored.check`);
    None when the value's length does not fit its frames."""
    size, offset = stored.frame_size, stored.pixel_offset
    if offset is None or not size or (stored.pixel_length or 0) < size * stored.frames:
        return None
    try:
        with open(stored.path, "rb") as file:
            file.seek(offset + (number - 1) * size)
            data = file.read(size)
    except OSError:
        raise NotFound(f"instance {stored.sop}: its file cannot be read") from None
    return data if len(data) == size else None


def stored_values(info: SliceInfo, *, rescale: bool = False) -> NDArray[Any]:
    """The stored (or, with ``rescale``, modality) values of one catalogued image,
    compressed data decoded in an isolated child."""
    if info.mosaic and info.mosaic_slices and info.frame is not None:
        whole = load_slice(replace(info, frame=None), rescale=rescale, isolated=True)
        tile: NDArray[Any] = unpack_mosaic(whole, info.mosaic_slices, info)[info.frame]
        return tile
    values: NDArray[Any] = load_slice(info, rescale=rescale, isolated=True)
    return values
