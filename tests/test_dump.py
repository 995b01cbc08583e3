"""The text dump and the DICOM JSON model."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from conftest import TEST_FILES, bundled, readable
from pydicom.dataset import Dataset

from dicomlens.dump import DumpOptions, dump, is_phi, to_json_model
from dicomlens.reading import read
from dicomlens.tags import parse_tag


def test_dump_shows_meta_first_then_data(ct_small: Path) -> None:
    lines = dump(read(ct_small)).splitlines()
    assert lines[0] == "# File meta information"
    assert lines[1].split() == ["(0002,0000)", "FileMetaInformationGroupLength", "UL", "192"]
    assert lines.index("# Data set") == 9
    assert "(0002,0010) TransferSyntaxUID" in " ".join(lines[5].split()[:2])
    assert lines[5].endswith("1.2.840.10008.1.2.1 (Explicit VR Little Endian)")


def test_dump_nests_and_numbers_sequence_items(ct_small: Path) -> None:
    text = dump(read(ct_small))
    assert (
        "(0010,1002) OtherPatientIDsSequence                 SQ  2 items\n"
        "  [0]\n    (0010,0020) PatientID" in text
    )
    assert "  [1]\n    (0010,0020) PatientID                           LO  1234ABCD" in text


def test_dump_labels_private_elements(ct_small: Path) -> None:
    text = dump(read(ct_small))
    assert "(0009,0010) PrivateCreator                          LO  GEMS_IDEN_01" in text
    assert "(0009,1001) [GEMS_IDEN_01] Full fidelity            LO  GE_GENESIS_FF" in text
    assert "(0019,1023) [GEMS_ACQU_01] Table Speed [mm/rotation]" in text
    assert "GEMS_IDEN_01" not in dump(read(ct_small), DumpOptions(private=False))


def test_dump_summarises_binary_and_long_values(ct_small: Path) -> None:
    text = dump(read(ct_small))
    assert "(7FE0,0010) PixelData                               OW  <32768 bytes: " in text
    long_line = [
        line
        for line in dump(read(bundled("rtplan.dcm")), DumpOptions(value_width=20)).splitlines()
        if "chars)" in line
    ]
    assert long_line and all(len(line) < 120 for line in long_line)


def test_dump_filters_by_tag_grep_and_depth(ct_small: Path) -> None:
    ds = read(ct_small)
    only = dump(
        ds, DumpOptions(tags=(parse_tag("Rows"), parse_tag("OtherPatientIDsSequence[1].PatientID")))
    )
    assert only.splitlines()[1:] == [
        "(0028,0010) Rows                                    US  128",
        "(0010,0020) OtherPatientIDsSequence[1].PatientID    LO  1234ABCD",
    ]
    grep = dump(ds, DumpOptions(grep="1234abcd")).splitlines()
    assert [line.split()[0] for line in grep] == ["#", "(0010,1002)", "[1]", "(0010,0020)"]
    shallow = dump(ds, DumpOptions(depth=0))
    assert "OtherPatientIDsSequence" in shallow and "[0]" not in shallow


def test_mask_hides_identifiers_not_structure(ct_small: Path) -> None:
    text = dump(read(ct_small), DumpOptions(mask=True))
    for secret in [
        "CompressedSamples^CT1",
        "ABCD1234",
        "JFK IMAGING CENTER",
        "19970430",
        "GE_GENESIS_FF",
        "CLUNIE1",  # file meta AE title
        "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322",  # SOP Instance UID
    ]:
        assert secret not in text
    assert "SOPClassUID                             UI  1.2.840.10008.5.1.4.1.1.2 (CT" in text
    assert "(0008,0020) StudyDate                               DA  ***" in text
    assert "(0010,0010) PatientName                             PN  ***" in text
    assert "(0028,0010) Rows                                    US  128" in text
    assert is_phi(0x00100020, "LO") and not is_phi(0x00280010, "US")


def test_color_only_when_asked(ct_small: Path) -> None:
    assert "\x1b[" not in dump(read(ct_small))
    assert "\x1b[36mPatientName" in dump(read(ct_small), DumpOptions(color=True))


# badVR.dcm holds IS '1A' on purpose: pydicom's from_json refuses it.
@pytest.mark.parametrize(
    "path",
    readable(sorted(TEST_FILES.glob("*.dcm")), skip=frozenset({"badVR.dcm"})),
    ids=lambda p: p.name,
)
def test_json_model_loads_back_to_an_equal_dataset(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some test files carry invalid values on purpose
        ds = read(path)
        model = to_json_model(ds, bulk_data=True)
        assert set(model) == {"file_meta", "dataset"}
        back = Dataset.from_json(model["dataset"])
        meta = Dataset.from_json(model["file_meta"])
        assert meta == ds.file_meta
        assert back.to_json_dict() == ds.to_json_dict()
        assert back == ds or _only_vr_ambiguity_differs(back, ds)


def _only_vr_ambiguity_differs(back: Dataset, ds: Dataset) -> bool:
    """from_json cannot always restore raw bytes identically (e.g. US or SS, OB or OW)."""
    return sorted(back.keys()) == sorted(ds.keys())


def test_json_model_omits_bulk_data_unless_asked(ct_small: Path) -> None:
    ds = read(ct_small)
    model = to_json_model(ds)
    assert model["dataset"]["7FE00010"] == {"vr": "OW"}
    assert "InlineBinary" in to_json_model(ds, bulk_data=True)["dataset"]["7FE00010"]
    back = Dataset.from_json(model["dataset"])
    del ds.PixelData
    assert back.PatientName == ds.PatientName
    assert back.Rows == 128 and back.PixelData in (None, b"")


def test_json_model_masks(ct_small: Path) -> None:
    model = to_json_model(read(ct_small), mask=True)
    assert model["dataset"]["00100010"]["Value"] == [{"Alphabetic": "***"}]
    assert model["dataset"]["00101002"]["Value"][0]["00100020"]["Value"] == ["***"]
    assert model["dataset"]["00280010"]["Value"] == [128]


def test_json_matches_pydicom_model(ct_small: Path) -> None:
    theirs = pydicom.dcmread(ct_small).to_json_dict()
    ours = to_json_model(read(ct_small), bulk_data=True)["dataset"]
    assert ours == theirs
