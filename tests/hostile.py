"""Hostile and broken DICOM files, written byte by byte so that lengths can lie.

One generator per row of RELIABILITY.md section 7.1 (R1-R26 where a file can show
the fault); :data:`ROWS` lists them with what a careful tool must do. The tests
and the fuzzer build on these; a crash found later becomes a new generator here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
)

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"
}  # fmt: skip


def element(tag: int, vr: bytes, value: bytes = b"", *, length: int | None = None) -> bytes:
    """One explicit VR little endian element; ``length`` may lie about ``value``."""
    declared = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in _LONG_VRS:
        head += b"\x00\x00" + struct.pack("<I", declared)
    else:
        head += struct.pack("<H", declared)
    return head + value


def item(content: bytes, *, length: int | None = UNDEFINED) -> bytes:
    """A sequence item, of undefined length (closed by a delimiter) unless given one."""
    declared = len(content) if length is None else length
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" if declared == UNDEFINED else b""
    return b"\xfe\xff\x00\xe0" + struct.pack("<I", declared) + content + closing


def sequence(tag: int, items: bytes) -> bytes:
    """An undefined-length sequence closed by its delimiter."""
    return element(tag, b"SQ", items, length=UNDEFINED) + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def file_start(
    transfer_syntax: str = ExplicitVRLittleEndian, *, preamble: bytes = bytes(128)
) -> BytesIO:
    """Preamble, ``DICM`` and the file meta; the data set is written after it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = transfer_syntax
    out = BytesIO()
    out.write(preamble.ljust(128, b"\x00") + b"DICM")
    write_file_meta_info(out, meta)
    return out


def dicom(body: bytes, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """A file: meta, the SOP UIDs and ``body`` (elements after (0008,0018), in tag order)."""
    out = file_start(transfer_syntax)
    out.write(element(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00"))
    out.write(element(0x00080018, b"UI", b"1.2.3.4\x00"))
    out.write(body)
    return out.getvalue()


def lying_element(length: int, vr: bytes = b"OB") -> bytes:
    """(0009,1010) declaring ``length`` bytes followed by only 100 (R8, R9)."""
    return dicom(element(0x00091010, vr, bytes(100), length=length))


def nested(depth: int) -> bytes:
    """A PatientName inside ``depth`` undefined-length sequences (R12)."""
    body = b"".join(
        element(0x0040A730, b"SQ", length=UNDEFINED) + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        for _ in range(depth)
    )
    body += element(0x00100010, b"PN", b"ABCD")
    body += (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") * depth
    return dicom(body)


def deflated(payload: bytes) -> bytes:
    """A Deflated Explicit VR Little Endian file whose (raw deflate) data set is ``payload``."""
    out = file_start(DeflatedExplicitVRLittleEndian)
    out.write(payload)
    return out.getvalue()


def deflate_bomb(megabytes: int = 200) -> bytes:
    """A deflated file whose data set inflates to ``megabytes`` of zeros (R10)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(b"\x09\x00\x10\x10OB\x00\x00" + (megabytes << 20).to_bytes(4, "little"))
    zeros = bytes(1 << 20)
    body += b"".join(packer.compress(zeros) for _ in range(megabytes))
    return deflated(body + packer.flush())


def _ct() -> bytes:
    return (TEST_FILES / "CT_small.dcm").read_bytes()


def _image(rows: int, columns: int, frames: int, pixels: bytes) -> bytes:
    """A monochrome 16-bit image header with the given (possibly absurd) size."""
    body = element(0x00280002, b"US", struct.pack("<H", 1))
    body += element(0x00280004, b"CS", b"MONOCHROME2 ")
    body += element(0x00280008, b"IS", str(frames).encode().ljust(6, b" "))
    body += element(0x00280010, b"US", struct.pack("<H", rows))
    body += element(0x00280011, b"US", struct.pack("<H", columns))
    for tag, value in ((0x00280100, 16), (0x00280101, 16), (0x00280102, 15), (0x00280103, 0)):
        body += element(tag, b"US", struct.pack("<H", value))
    return dicom(body + element(0x7FE00010, b"OW", pixels))


def _corrupt_jpeg2000() -> bytes:
    """JPEG2000.dcm with the middle of its first fragment overwritten (R22)."""
    ds = pydicom.dcmread(TEST_FILES / "JPEG2000.dcm")
    assert ds.file_meta.TransferSyntaxUID in (JPEG2000Lossless, "1.2.840.10008.1.2.4.91")
    data = bytearray((TEST_FILES / "JPEG2000.dcm").read_bytes())
    start = data.find(b"\xff\x4f\xff\x51")  # the codestream's SOC and SIZ markers
    data[start + 40 : start + 200] = bytes(range(160))  # inside the 266-byte fragment
    return bytes(data)


def _executable_preamble() -> bytes:
    data = bytearray(_ct())
    data[:4] = b"MZ\x90\x00"
    return bytes(data)


@dataclass(frozen=True)
class Row:
    """One fault: its generator, the command that meets it, and the outcome a careful
    tool gives: ``error`` (one line naming the file, exit 1), ``warning`` (exit 0 with
    a warning line) or ``ok`` (exit 0); ``reason`` is a piece of the expected message."""

    name: str
    make: Callable[[], bytes]
    outcome: str
    reason: str
    command: str = "show"
    sparse_size: int = 0  # grow the file to this size without writing (a sparse file)

    def write(self, path: Path) -> Path:
        """Write the file (sparse to ``sparse_size`` when given)."""
        with path.open("wb") as out:
            out.write(self.make())
            if self.sparse_size:
                out.truncate(self.sparse_size)
        return path


ROWS: list[Row] = [
    Row("R1-text", lambda: b"hello" * 50, "error", "not a DICOM file"),
    Row("R2-empty", lambda: b"", "error", "empty file"),
    Row("R2-short", lambda: _ct()[:131], "error", "too short"),
    Row(
        "R3-forced-junk",
        lambda: b"hello" * 50,
        "error",
        "forced read produced no plausible DICOM content",
        command="show --force",
    ),
    Row(
        "R4-raw-dataset", lambda: (TEST_FILES / "no_meta.dcm").read_bytes(), "error", "use --force"
    ),
    Row("R5-meta-cut-140", lambda: _ct()[:140], "error", "truncated"),
    Row("R5-meta-cut-300", lambda: _ct()[:300], "error", "truncated"),
    Row(
        "R6-dataset-cut",
        lambda: (TEST_FILES / "rtplan_truncated.dcm").read_bytes(),
        "error",
        "declares 976 bytes but only 711 remain",
    ),
    Row("R7-pixels-cut", lambda: _ct()[: len(_ct()) // 2], "warning", "Pixel Data shorter"),
    Row("R8-4GB-length", lambda: lying_element(0xFFFFFFF0), "error", "declares 4294967280"),
    Row("R9-2GB-UN", lambda: lying_element(0x7FFFFFF0, b"UN"), "error", "declares 2147483632"),
    Row("R10-deflate-bomb", deflate_bomb, "error", "deflated data set expands beyond the limit"),
    Row(
        "R11-corrupt-deflate",
        lambda: deflated(bytes(range(256)) * 2),
        "error",
        "corrupt deflated data set (zlib:",
    ),
    Row("R12-nesting-50", lambda: nested(50), "ok", ""),
    Row("R12-nesting-65", lambda: nested(65), "error", "sequences nested deeper than 64"),
    Row("R12-nesting-300", lambda: nested(300), "error", "nested too deeply"),
    Row("R12-nesting-10000", lambda: nested(10_000), "error", "nested too deeply"),
    Row(
        "R13-sequence-not-closed",
        lambda: dicom(element(0x00400275, b"SQ", length=UNDEFINED) + item(b"")[:-8]),
        "error",
        "not closed before the end of the file",
    ),
    Row(
        "R14-undefined-length-text",
        lambda: dicom(element(0x00104000, b"UT", b"free text " * 5, length=UNDEFINED)),
        "error",
        "not closed before the end of the file",
    ),
    Row(  # found by tests/test_fuzz.py: garbled VR bytes read as an undefined length
        "R14-garbled-vr-undefined-length",
        lambda: dicom(
            b"\x08\x00\x12\x00\xff\xff\xff\xff19970911" + element(0x00100010, b"PN", b"ABCD")
        ),
        "error",
        "undefined length",
    ),
    Row(  # dicomlens has no validator: the dump shows the data, as the row asks
        "R15-element-overruns-item",
        lambda: dicom(
            sequence(0x00400275, item(element(0x00400007, b"SH", b"SIXTEEN BYTES OK"), length=10))
            + element(0x00100010, b"PN", b"AFTER^ITEM")
        ),
        "ok",
        "",
    ),
    Row(
        "R16-invalid-vr",
        lambda: dicom(element(0x00100010, b"ZZ", b"ABCD")),
        "error",
        "(0010,0010) PatientName has an unknown VR 'ZZ'",
    ),
    Row("R17-wrong-vr", lambda: dicom(element(0x00100010, b"US", b"\x01\x00")), "ok", ""),
    Row("R18-odd-length", lambda: dicom(element(0x00100010, b"PN", b"ODD")), "ok", ""),
    Row(
        "R23-overflowed-pixel-length",  # a 7 GiB value's length kept to 32 bits: 3 GiB
        lambda: _image(512, 512, 1, b"")[:-4] + (0xC0000000).to_bytes(4, "little"),
        "error",
        "zero bytes where data elements should be",
        sparse_size=7 << 30,
    ),
    Row(
        "R19-no-transfer-syntax",
        lambda: (TEST_FILES / "meta_missing_tsyntax.dcm").read_bytes(),
        "warning",
        "file meta has no Transfer Syntax UID",
    ),
    Row("R20-executable-preamble", _executable_preamble, "warning", "executable signature"),
    Row(
        "R21-absurd-size",
        lambda: _image(65535, 65535, 100000, bytes(64)),
        "error",
        "declared image size 799,975.6 GiB exceeds the limit (4 GiB)",
        command="render",
    ),
    Row("R22-corrupt-jpeg2000", _corrupt_jpeg2000, "error", "cannot decode", command="render"),
]
