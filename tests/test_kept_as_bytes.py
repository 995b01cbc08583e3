"""One bad element never costs the whole file: an element pydicom cannot decode with
its VR is kept as its raw bytes (UN), with one warning, and every command goes on."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pydicom
import pytest

from dicomlens.cli import main
from dicomlens.errors import DicomlensWarning
from dicomlens.reading import read

PRIVATE = 0x01F11026  # (01F1,xx26)[ELSCINT1]: FD in the private dictionary
PRIVATE_BYTES = b"0.4882812 "  # text where 8-byte floats belong: 10 bytes
PUBLIC = 0x00201041  # Slice Location, stored with the wrong VR FD (4 bytes)


def _header(tag: int, vr: bytes, length: int, *, long: bool = False) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    return head + (b"\x00\x00" + struct.pack("<I", length) if long else struct.pack("<H", length))


@pytest.fixture
def bad_file(tmp_path: Path, ct_small: Path) -> Path:
    """CT_small with a wrong-length private FD and a public element with the wrong VR,
    written byte by byte over the headers pydicom wrote."""
    ds = pydicom.dcmread(ct_small)
    ds.private_block(0x01F1, "ELSCINT1", create=True).add_new(0x26, "OB", PRIVATE_BYTES)
    ds.SliceLocation = "12.5"
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "bad.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    swaps = [
        (_header(PRIVATE, b"OB", 10, long=True), _header(PRIVATE, b"FD", 10)),
        (_header(PUBLIC, b"DS", 4), _header(PUBLIC, b"FD", 4)),
    ]
    for old, new in swaps:
        assert data.count(old) == 1
        data = data.replace(old, new)
    path.write_bytes(data)
    return path


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "kept as" in line]


def test_read_keeps_the_bytes_and_warns_once_per_element(bad_file: Path) -> None:
    with pytest.warns(DicomlensWarning) as noticed:
        ds = read(bad_file)
    messages = [str(w.message) for w in noticed]
    assert len(messages) == 2
    assert messages[1] == (
        f"{bad_file}: (01F1,1026) [ELSCINT1] Pitch: kept as 10 raw bytes (UN): "
        "10 bytes are not a whole number of 8-byte values"
    )
    assert all(len(m) <= 200 and "pydicom.config" not in m for m in messages)
    assert ds[PRIVATE].VR == "UN" and ds[PRIVATE].value == PRIVATE_BYTES
    assert ds.PatientName == "CompressedSamples^CT1" and ds.Rows == 128  # the rest reads


@pytest.mark.parametrize(
    ("command", "warned"),
    [
        (["show"], 2),
        (["show", "--json"], 2),
        (["get", "PatientName", "SliceLocation"], 1),  # only the elements asked for
        (["find", "SliceLocation"], 2),
        (["series"], 0),  # the geometry's elements only
        (["volume", "-o", "{out}/ct.nii.gz"], 2),  # the sidecar reads the whole header
        (["render", "-o", "{out}/ct.png"], 2),
    ],
    ids=lambda c: " ".join(c[:2]) if isinstance(c, list) else str(c),
)
def test_every_command_goes_on(  # type: ignore[no-untyped-def]
    bad_file: Path, tmp_path: Path, capsys, command: list[str], warned: int
) -> None:
    argv = [part.format(out=tmp_path) for part in command]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no other warning escapes
        code = main([*argv, str(bad_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    kept = _warnings(err)
    assert len(set(kept)) == warned
    assert all(line.startswith(f"dicomlens: warning: {bad_file}: (") for line in kept)
    if command[0] == "get":
        assert "CompressedSamples^CT1" in out and "12.5" in out
    if command == ["show", "--json"]:
        dataset = json.loads(out)["dataset"]
        assert dataset["00100010"]["Value"] == [{"Alphabetic": "CompressedSamples^CT1"}]


def test_index_records_the_instance(bad_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "c.db"
    assert main(["index", str(bad_file.parent), "--catalog", str(catalog)]) == 0
    err = capsys.readouterr().err
    assert "1 instance, 0 failed, 0 other, 1 instance with elements kept as bytes" in err
    argv = ["query", "--catalog", str(catalog), "--level", "instance", "Rows=128",
            "--columns", "PatientName,(01F1,xx26)[ELSCINT1]", "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert json.loads(row["(01F1,xx26)[ELSCINT1]"]) == {
        "vr": "UN", "InlineBinary": "MC40ODgyODEyIA=="  # base64 of the 10 bytes
    }  # fmt: skip


def test_edit_and_anonymize_keep_the_bytes(bad_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert main(["edit", str(bad_file), "--set", "PatientName=Edited^Name", "-o", str(out)]) == 0
    before, after = bad_file.read_bytes(), (out / "bad.dcm").read_bytes()
    for tag, value in ((PRIVATE, PRIVATE_BYTES), (PUBLIC, b"12.5")):
        header = _header(tag, b"FD", len(value))
        assert header + value in before and header + value in after  # as read, VR and all
    assert read_quietly(out / "bad.dcm").PatientName == "Edited^Name"
    anonymized = tmp_path / "anon"
    assert main(["anonymize", str(bad_file.parent), "-o", str(anonymized)]) == 0
    assert "no removed value found" in capsys.readouterr().err
    assert len(list(anonymized.rglob("*.dcm"))) == 1


def read_quietly(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(path)
