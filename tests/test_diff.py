"""diff() of datasets and folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom

from dicomlens.differences import DifferenceKind, diff, diff_folders
from dicomlens.reading import read


def test_identical_files_have_no_differences(ct_small: Path) -> None:
    assert diff(read(ct_small), read(ct_small)) == []


def test_changes_at_every_depth_and_in_meta(ct_small: Path) -> None:
    a, b = read(ct_small), read(ct_small)
    b.PatientName = "Other^Name"
    b.OtherPatientIDsSequence[0].PatientID = "NEW"
    del b.OtherPatientIDsSequence[1]
    del b.StationName
    b.BodyPartExamined = "HEAD"
    b.file_meta.ImplementationVersionName = "OTHER"
    found = {(d.path, d.change): (d.a, d.b) for d in diff(a, b)}
    assert found == {
        ("ImplementationVersionName", DifferenceKind.CHANGED): ("DCTOOL100", "OTHER"),
        ("StationName", DifferenceKind.ONLY_A): ("CT01_OC0", ""),
        ("PatientName", DifferenceKind.CHANGED): ("CompressedSamples^CT1", "Other^Name"),
        ("OtherPatientIDsSequence[0].PatientID", DifferenceKind.CHANGED): ("ABCD1234", "NEW"),
        ("OtherPatientIDsSequence[1]", DifferenceKind.ONLY_A): ("<item of 2 elements>", ""),
        ("BodyPartExamined", DifferenceKind.ONLY_B): ("", "HEAD"),
    }
    assert diff(a, b, file_meta=False)[0].path == "StationName"


def test_pixel_data_compared_by_hash(ct_small: Path) -> None:
    a, b = read(ct_small), read(ct_small)
    pixels = bytearray(b.PixelData)
    pixels[100] ^= 0xFF
    b.PixelData = bytes(pixels)
    (only,) = diff(a, b)
    assert only.path == "PixelData" and only.change is DifferenceKind.CHANGED
    assert only.a.startswith("<32768 bytes, sha256 ") and only.a != only.b


def test_vr_difference_is_reported(ct_small: Path) -> None:
    a, b = read(ct_small), read(ct_small)
    b["StationName"].VR = "LO"
    assert [str(d) for d in diff(a, b)] == ["~ StationName VR: SH -> LO"]


def test_folders_matched_by_sop_instance_uid(ct_small: Path, tmp_path: Path) -> None:
    left, right = tmp_path / "a", tmp_path / "b"
    left.mkdir(), right.mkdir()
    shutil.copy(ct_small, left / "one.dcm")
    ds = pydicom.dcmread(ct_small)
    ds.PatientName = "Changed"
    ds.save_as(right / "renamed.dcm")
    mr = pydicom.dcmread(Path(ct_small).parent / "MR_small.dcm")
    mr.save_as(right / "extra.dcm")
    (right / "README.txt").write_text("not dicom")
    result = diff_folders(left, right)
    assert [(a.name, b.name, [str(d) for d in found]) for a, b, found in result.pairs] == [
        ("one.dcm", "renamed.dcm", ["~ PatientName: CompressedSamples^CT1 -> Changed"])
    ]
    assert [p.name for p in result.only_b] == ["extra.dcm"] and result.only_a == []
    assert result.errors == [] and not result.identical
