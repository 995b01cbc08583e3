"""get() and find() by tag path, compared with what pydicom itself gives."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from conftest import bundled
from pydicom.dataset import Dataset

from dicomlens.access import find, get
from dicomlens.errors import ElementNotFoundError
from dicomlens.reading import read


@pytest.mark.parametrize(
    "spec",
    [
        "PatientName",
        "Patient's Name",
        "(0010,0010)",
        "(0010, 0010)",
        "0x100010",
        0x00100010,
        (0x10, 0x10),
    ],
)
def test_get_matches_pydicom_in_every_notation(ct_small: Path, spec: object) -> None:
    assert get(read(ct_small), spec) == pydicom.dcmread(ct_small).PatientName  # type: ignore[arg-type]


def test_get_numbers_and_lists(ct_small: Path) -> None:
    ds = read(ct_small)
    theirs = pydicom.dcmread(ct_small)
    assert get(ds, "ImagePositionPatient") == [float(v) for v in theirs.ImagePositionPatient]
    assert get(ds, "ImagePositionPatient[2]") == pytest.approx(-75.699997)
    assert get(ds, "ImagePositionPatient[-1]") == pytest.approx(-75.699997)
    assert get(ds, "Rows") == 128 and isinstance(get(ds, "ExposureTime"), int)
    assert get(ds, "ImageType") == ["ORIGINAL", "PRIMARY", "AXIAL"]


def test_get_window_center_as_pasted_from_a_dump() -> None:
    ds = read(bundled("examples_overlay.dcm"))
    assert get(ds, "(0028, 1050)") == [450.0, 200.0]
    assert get(ds, "WindowCenter[1]") == 200.0
    assert get(ds, "WindowCenterWidthExplanation[*]") == ["WINDOW1", "WINDOW2"]


def test_get_in_sequences(ct_small: Path) -> None:
    ds = read(ct_small)
    assert get(ds, "OtherPatientIDsSequence[1].PatientID") == "1234ABCD"
    assert get(ds, "OtherPatientIDsSequence[*].PatientID") == ["ABCD1234", "1234ABCD"]
    assert get(ds, "OtherPatientIDsSequence.PatientID") == ["ABCD1234", "1234ABCD"]
    item = get(ds, "OtherPatientIDsSequence[0]")
    assert isinstance(item, Dataset) and item.PatientID == "ABCD1234"
    assert get(ds, "OtherPatientIDsSequence[5].PatientID", default="none") == "none"


def test_get_file_meta(ct_small: Path) -> None:
    assert get(read(ct_small), "TransferSyntaxUID") == "1.2.840.10008.1.2.1"


def test_get_private_by_creator(ct_small: Path) -> None:
    ds = read(ct_small)
    assert get(ds, "(0009,xx01)[GEMS_IDEN_01]") == "GE_GENESIS_FF"
    assert get(ds, '"GEMS_IDEN_01":0009,01') == ds[0x00091001].value
    assert get(ds, "(0009,xx01)[NOBODY]", default=None) is None


def test_get_missing_raises_or_defaults(ct_small: Path) -> None:
    ds = read(ct_small)
    with pytest.raises(ElementNotFoundError, match=r"^no element at PatientComments$"):
        get(ds, "PatientComments")
    assert get(ds, "PatientComments", default=None) is None
    assert get(ds, "ImageType[7]", default="x") == "x"


def test_find_every_depth(ct_small: Path) -> None:
    matches = find(read(ct_small), "PatientID")
    assert [(m.path, m.value) for m in matches] == [
        ("PatientID", "1CT1"),
        ("OtherPatientIDsSequence[0].PatientID", "ABCD1234"),
        ("OtherPatientIDsSequence[1].PatientID", "1234ABCD"),
    ]


def test_find_private_elements_in_nested_sequences(ct_small: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    inner = Dataset()
    inner.private_block(0x0011, "ACME 1.0", create=True).add_new(0x02, "LO", "MRN-INNER")
    outer = ds.private_block(0x0011, "ACME 1.0", create=True)
    outer.add_new(0x01, "SQ", [inner])
    outer.add_new(0x02, "LO", "MRN-OUTER")
    ds.save_as(tmp_path / "private.dcm")

    matches = find(read(tmp_path / "private.dcm"), '"ACME 1.0":0011,02')
    assert [(m.path, m.value) for m in matches] == [
        ("(0011,xx01)[ACME 1.0][0].(0011,xx02)[ACME 1.0]", "MRN-INNER"),
        ("(0011,xx02)[ACME 1.0]", "MRN-OUTER"),
    ]
    assert (
        get(read(tmp_path / "private.dcm"), "(0011,xx01)[ACME 1.0][0].(0011,xx02)[ACME 1.0]")
        == "MRN-INNER"
    )


def test_find_in_enhanced_multiframe(shared_data: Path) -> None:
    path = shared_data / "dcm_qa_enh/In/Siemens/XA10/6_1.dcm"
    ds = read(path)
    theirs = pydicom.dcmread(path)
    frames = theirs.PerFrameFunctionalGroupsSequence
    expected = [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in frames]
    matches = find(ds, "ImagePositionPatient")
    assert [m.value for m in matches] == expected
    assert (
        matches[0].path
        == "PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient"
    )
    wildcard = "PerFrameFunctionalGroupsSequence[*].PlanePositionSequence[0].ImagePositionPatient"
    assert get(ds, wildcard) == expected
    tail = find(ds, "PlanePositionSequence.ImagePositionPatient")
    assert [m.path for m in tail] == [m.path for m in matches]
