"""De-identification: planted identifiers at every place RELIABILITY.md 7.4 lists
must be absent from every output byte, while geometry, pixels and grouping survive."""

from __future__ import annotations

import datetime
import json
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import bundled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

import dicomlens.anonymization.files as anonymizing
from dicomlens import scan
from dicomlens._confidentiality_profile import ROWS
from dicomlens.anonymization import (
    Deidentified,
    IdentityMap,
    Keys,
    anonymize,
    deidentify,
    find_leaks,
)
from dicomlens.cli import main
from dicomlens.errors import (
    AnonymizationError,
    CorruptDicomError,
    DicomlensWarning,
    UsageError,
)
from dicomlens.profile import Profile

STUDY_DATES = ("20190314", "20200105", "20210722")
SLICES = (6, 2, 2)  # per study: the first study holds a volume
PLANTED = {
    "PatientName": "DOE^JOHN^PLANTEDNAME",
    "PatientID": "MRN-4471-PLANTED",
    "PatientBirthDate": "19601231",
    "PatientAddress": "12 PLANTED ELM STREET",
    "PatientTelephoneNumbers": "555-0199-PLANT",
    "PatientMotherBirthName": "MOTHER^PLANTEDMAIDEN",
    "InstitutionName": "PLANTED GENERAL HOSPITAL",
    "InstitutionAddress": "1 HOSPITAL PLANTED ROAD",
    "ReferringPhysicianName": "HOUSE^PLANTEDDOC",
    "OperatorsName": "OPERATOR^PLANTEDTECH",
    "AccessionNumber": "ACC-PLANTED-77",
    "StudyID": "STUDYPLANT1",
    "StationName": "PLANTSTATION1",
    "DeviceSerialNumber": "SERIAL-PLANT-9",
    "StudyDescription": "PLANTED STUDY DESCRIPTION",
    "ImageComments": "COMMENT-PLANTED-TEXT",
}
NESTED = {"PatientName": "NESTED^DEEP^PLANTNAME", "PatientID": "NESTED-ID-PLANT3"}
PRIVATE = ("MRN-123456-PRIV", "PRIVATE^NESTED^HIDDENNAME")
META_AE = "HOSP_AE_PLANT"
PREAMBLE = b"MZ" + b"PREAMBLE-PLANTED-TEXT"
OVERLAY, ICON, CURVE = b"OVERLAYPLANTED00", b"ICONPIXELSPLANTED0", b"CURVEPLANTED0000"
FOLDER = "DOE^JOHN_12345"


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _plant(ds: Dataset, study: int, other_uid: str) -> None:
    """Identifiers at the places RELIABILITY.md A1-A9 lists."""
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, STUDY_DATES[study])
    ds.AcquisitionDateTime = STUDY_DATES[study] + "101500"
    # A1 and A4: three levels deep, with a reference to another file's UID
    deepest = _item(ReferencedSOPClassUID=ds.SOPClassUID, ReferencedSOPInstanceUID=other_uid)
    deepest.update(_item(**NESTED))
    middle = _item(ReferencedImageSequence=Sequence([deepest]))
    ds.SourceImageSequence = Sequence([middle])
    ds.RequestAttributesSequence = Sequence([_item(RequestedProcedureID="REQ-PLANT-55")])
    # A2: a private block with a nested name
    block = ds.private_block(0x0011, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", PRIVATE[0])
    inner = Dataset()
    inner.add_new(0x00100010, "PN", PRIVATE[1])
    block.add_new(0x02, "SQ", Sequence([inner]))
    # A7: overlay, icon, curve, document
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000022, "LO", "OVERLAY-DESC-PLANT")
    ds.add_new(0x60003000, "OW", OVERLAY)
    icon = _item(Rows=1, Columns=1, BitsAllocated=8, SamplesPerPixel=1)
    icon.add_new(0x7FE00010, "OB", ICON)
    ds.IconImageSequence = Sequence([icon])
    ds.add_new(0x50003000, "OB", CURVE)
    # A8: file meta and preamble
    ds.file_meta.SourceApplicationEntityTitle = META_AE
    ds.preamble = PREAMBLE.ljust(128, b"\x00")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """One patient, three studies on three dates, written under a name-bearing folder
    (A9); one file implicit VR (A3). Returns the folder and every original identifier."""
    root = tmp_path_factory.mktemp("planted")
    folder = root / FOLDER
    folder.mkdir()
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    originals: list[str] = []
    number = 0
    for study, count in enumerate(SLICES):
        study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
        uids = [generate_uid() for _ in range(count)]
        originals += [study_uid, series_uid, frame_uid, *uids]
        for k in range(count):
            ds = template.copy()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.FrameOfReferenceUID = frame_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uids[k]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-100.0, -100.0, 2.5 * k]
            ds.InstanceNumber = k + 1
            _plant(ds, study, other_uid=uids[(k + 1) % count])
            number += 1
            if number == 2:
                ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
            ds.save_as(folder / f"IMG{number:03d}.dcm", enforce_file_format=False)
    template_values = [str(template.PatientName), str(template.PatientID)]
    texts = [*PLANTED.values(), *NESTED.values(), *PRIVATE, META_AE, "REQ-PLANT-55"]
    texts += ["OVERLAY-DESC-PLANT", "DOE^JOHN", FOLDER, *STUDY_DATES, *template_values]
    return folder, texts + originals


def _outputs(out: Path) -> list[Path]:
    return sorted(out.rglob("*.dcm"))


def _all_bytes(paths: list[Path]) -> bytes:
    return b"\n".join(p.read_bytes() for p in paths)


def test_no_planted_identifier_in_any_output_byte(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, originals = planted
    results = anonymize([folder], out=tmp_path / "out", key="k")
    outputs = _outputs(tmp_path / "out")
    assert len(outputs) == sum(SLICES) == sum(r.written for r in results)
    data = _all_bytes(outputs)
    for text in originals:
        assert text.encode() not in data, text
        assert all(text not in str(path) for path in outputs), text
    for raw in (PREAMBLE, OVERLAY, ICON, CURVE):
        assert raw not in data
    for path in outputs:
        assert path.read_bytes()[:128] == b"\x00" * 128
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert "SourceApplicationEntityTitle" not in ds.file_meta
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert path.parent.name == ds.SeriesInstanceUID
        assert path.parent.parent.name == ds.StudyInstanceUID
        assert not any(elem.tag.is_private for elem in ds.iterall())
        assert not any(elem.tag.group in (0x5000, 0x6000) for elem in ds)
        assert "IconImageSequence" not in ds


def test_pixels_geometry_and_grouping_survive(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    anonymize([folder], out=tmp_path / "out", key="k")
    with pytest.warns(DicomlensWarning, match="preamble holds an executable signature"):
        before = scan([folder])
    after = scan([tmp_path / "out"])
    assert len(before) == len(after) == len(SLICES)
    assert len({s.first.study_instance_uid for s in after}) == len(SLICES)
    assert sorted(len(s.slices) for s in before) == sorted(len(s.slices) for s in after)
    original = max(before, key=lambda s: len(s.slices)).volume()
    anonymized = max(after, key=lambda s: len(s.slices)).volume()
    np.testing.assert_array_equal(anonymized.array, original.array)
    np.testing.assert_array_equal(anonymized.affine_lps, original.affine_lps)


def test_references_are_remapped_consistently(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    anonymize([folder], out=tmp_path / "out", key="k")
    datasets = [pydicom.dcmread(p) for p in _outputs(tmp_path / "out")]
    sop_uids = {ds.SOPInstanceUID for ds in datasets}
    for ds in datasets:
        deepest = ds.SourceImageSequence[0].ReferencedImageSequence[0]
        assert deepest.ReferencedSOPInstanceUID in sop_uids  # A4: still points at a file
        assert deepest.ReferencedSOPInstanceUID != ds.SOPInstanceUID
        assert deepest.PatientName == "" and deepest.PatientID == "ANONYMIZED"  # A1
        assert "RequestAttributesSequence" not in ds
    frames = {ds.SeriesInstanceUID: ds.FrameOfReferenceUID for ds in datasets}
    assert len(set(frames.values())) == len(SLICES)


def test_same_key_same_bytes_other_key_other_identifiers(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    for name, key in (("a", "k"), ("b", "k"), ("c", "other")):
        anonymize([folder], out=tmp_path / name, key=key)
    first, again, other = (_outputs(tmp_path / name) for name in "abc")
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in again
    ]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, again, strict=True))
    assert not {p.name for p in first} & {p.name for p in other}
    ids = {pydicom.dcmread(p).PatientID for p in first}
    other_ids = {pydicom.dcmread(p).PatientID for p in other}
    assert len(ids) == len(other_ids) == 1 and ids != other_ids


def test_without_a_key_every_run_differs(ct_small: Path, tmp_path: Path) -> None:
    (one,) = anonymize([ct_small], out=tmp_path / "a")
    (two,) = anonymize([ct_small], out=tmp_path / "b")
    assert one.target is not None and two.target is not None
    assert one.target.name != two.target.name


def test_identity_map_is_written_only_when_asked_and_round_trips(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    out, map_file = tmp_path / "out", tmp_path / "private" / "map.json"
    anonymize([folder], out=out, key="k")
    assert not list(out.rglob("*.json"))
    anonymize([folder], out=tmp_path / "again", key="k", map_file=map_file)
    assert stat.S_IMODE(map_file.stat().st_mode) == 0o600
    mapping = IdentityMap.load(map_file)
    back = mapping.reversed_uids()
    for path in _outputs(tmp_path / "again"):
        ds = pydicom.dcmread(path)
        assert mapping.uids[back[ds.SOPInstanceUID]] == ds.SOPInstanceUID
        original = pydicom.dcmread(folder / _source_name(folder, back[ds.SOPInstanceUID]))
        assert original.SOPInstanceUID == back[ds.SOPInstanceUID]
    assert mapping.patients[PLANTED["PatientID"]]["pseudonym"] == ds.PatientID
    assert IdentityMap.load(map_file).to_json() == map_file.read_text()
    with pytest.raises(UsageError, match="identity map exists"):
        anonymize([folder], out=tmp_path / "third", key="k", map_file=map_file)


def _source_name(folder: Path, sop_uid: str) -> str:
    return next(p.name for p in folder.iterdir() if pydicom.dcmread(p).SOPInstanceUID == sop_uid)


def test_modified_dates_shift_each_patient_once(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    anonymize([folder], out=tmp_path / "out", key="k", keep=["dates"])
    datasets = [pydicom.dcmread(p) for p in _outputs(tmp_path / "out")]
    shifted = sorted({ds.StudyDate for ds in datasets})
    assert len(shifted) == len(STUDY_DATES) and not set(shifted) & set(STUDY_DATES)

    def day(text: str) -> datetime.date:
        return datetime.datetime.strptime(text, "%Y%m%d").date()

    delta = {day(new) - day(old) for new, old in zip(shifted, STUDY_DATES, strict=True)}
    assert len(delta) == 1 and delta.pop().days < 0  # one shift: intervals kept
    for ds in datasets:
        assert ds.AcquisitionDateTime[:8] == ds.StudyDate and ds.AcquisitionDateTime[8:] == "101500"
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107"]
        assert ds.PatientBirthDate == ""  # the Basic Profile empties it (no option column)


def test_options_keep_what_they_name(planted: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, _ = planted
    keep = ["uids", "device", "patient", "descriptors", "institution"]
    anonymize([folder], out=tmp_path / "out", key="k", keep=keep)
    originals = {pydicom.dcmread(p).SOPInstanceUID for p in folder.iterdir()}
    for path in _outputs(tmp_path / "out"):
        ds = pydicom.dcmread(path)
        assert ds.SOPInstanceUID in originals
        assert ds.DeviceSerialNumber == PLANTED["DeviceSerialNumber"]
        assert ds.InstitutionName == PLANTED["InstitutionName"]
        assert ds.PatientSex == "O"  # CT_small's, kept with Patient Characteristics
        assert ds.StudyDescription == PLANTED["StudyDescription"]
        assert {item.CodeValue for item in ds.DeidentificationMethodCodeSequence} == {
            "113100", "113105", "113108", "113109", "113110", "113112"
        }  # fmt: skip


def test_clean_descriptors_blanks_identifiers_out_of_text(ct_small: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.StudyDescription = "CT for Planted-Patient MRN-4471-PLANTED"
    ds.PatientID = "MRN-4471-PLANTED"
    deidentify(ds, profile=Profile(["descriptors"]), keys=Keys.from_key("k"))
    assert ds.StudyDescription == "CT for Planted-Patient ****************"


def test_safe_private_keeps_only_the_allow_listed_element(
    planted: tuple[Path, list[str]], tmp_path: Path
) -> None:
    folder, _ = planted
    anonymize(
        [folder / "IMG001.dcm"],
        out=tmp_path / "out",
        key="k",
        keep=["private"],
        safe_private=["(0011,xx01)[ACME 1.0]"],
    )
    (path,) = _outputs(tmp_path / "out")
    ds = pydicom.dcmread(path)
    block = ds.private_block(0x0011, "ACME 1.0")
    assert ds[block.get_tag(0x01)].value == PRIVATE[0]
    assert block.get_tag(0x02) not in ds
    creator = (0x0011 << 16) | (block.block_start >> 8)
    assert [e.tag for e in ds if e.tag.is_private] == [creator, block.get_tag(0x01)]
    assert PRIVATE[1].encode() not in path.read_bytes()
    with pytest.raises(UsageError, match="needs the 'private' option"):
        anonymize([folder], out=tmp_path / "x", safe_private=["(0011,xx01)[ACME 1.0]"])


def test_burned_in_text_warns_or_fails_with_strict(tmp_path: Path) -> None:
    source = bundled("SC_rgb_small_odd.dcm")
    (result,) = anonymize([source], out=tmp_path / "out", key="k")
    assert result.written
    assert result.warnings == [
        f"{source}: secondary capture images usually carry burned-in text "
        "(BurnedInAnnotation is not NO)"
    ]
    (strict,) = anonymize([source], out=tmp_path / "strict", key="k", strict=True)
    assert isinstance(strict.error, AnonymizationError) and not strict.written
    assert not (tmp_path / "strict").exists() or not _outputs(tmp_path / "strict")


def test_a_leak_fails_the_file_and_writes_nothing(
    planted: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = planted
    real = anonymizing.deidentify

    def careless(ds: Dataset, **options: object) -> Deidentified:
        report = real(ds, **options)  # type: ignore[arg-type]
        ds.Manufacturer = PLANTED["PatientName"]  # put an original value back
        return report

    monkeypatch.setattr(anonymizing, "deidentify", careless)
    results = anonymize([folder], out=tmp_path / "out", key="k")
    assert all(isinstance(r.error, AnonymizationError) for r in results)
    assert "verification failed: original values remain (PatientName at byte" in str(
        results[0].error
    )
    assert PLANTED["PatientName"] not in str(results[0].error)
    assert not _outputs(tmp_path / "out")


def test_find_leaks_ignores_values_the_profile_keeps(ct_small: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.InstitutionName = "GE MEDICAL"  # inside Manufacturer's "GE MEDICAL SYSTEMS"
    report = deidentify(ds, keys=Keys.from_key("k"))
    data = anonymizing._encode(ds, ct_small)
    assert find_leaks(data, report) == []
    ds.InstitutionAddress = "GE MEDICAL"
    assert find_leaks(anonymizing._encode(ds, ct_small), report) == []  # kept elsewhere too
    ds.ImageComments = str(report.needles[0].text)
    assert find_leaks(anonymizing._encode(ds, ct_small), report)


def test_a_bad_file_fails_alone(
    planted: tuple[Path, list[str]], tmp_path: Path, make_file: Callable[[str, bytes], Path]
) -> None:
    folder, _ = planted
    good = (folder / "IMG001.dcm").read_bytes()
    bad = make_file("batch/bad.dcm", good[: len(good) // 3])
    make_file("batch/good.dcm", good)
    results = anonymize([bad.parent], out=tmp_path / "out", key="k")
    by_name = {r.source.name: r for r in results}
    assert by_name["good.dcm"].written
    assert by_name["bad.dcm"].error is not None and not by_name["bad.dcm"].written
    assert len(_outputs(tmp_path / "out")) == 1
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]


# Text attributes the Basic Profile removes or replaces: any value planted there must go.
_TEXT_ROWS = [
    int(key, 16)
    for key, codes in ROWS.items()
    if len(key) == 8
    and "x" not in key
    and codes[0] in ("X", "Z", "D", "X/Z", "X/D", "X/Z/D", "Z/D")
    and pydicom.datadict.dictionary_VR(int(key, 16)) in ("LO", "SH", "PN", "LT", "ST", "UT")
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tags=st.lists(st.sampled_from(_TEXT_ROWS), min_size=1, max_size=8, unique=True),
    text=st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ23456789", min_size=8, max_size=16),
)
def test_any_planted_text_is_gone(tags: list[int], text: str) -> None:
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    for tag in tags:
        ds.add_new(tag, pydicom.datadict.dictionary_VR(tag), text)
    report = deidentify(ds, keys=Keys.from_key("k"))
    data = anonymizing._encode(ds, Path("CT_small.dcm"))
    assert text.encode() not in data
    assert find_leaks(data, report) == []


def test_cli_summary_dry_run_and_no_phi_in_messages(
    planted: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, originals = planted
    out = tmp_path / "out"
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "k", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert not out.exists()
    assert f"would write {sum(SLICES)} files (1 patient, 3 studies, 3 series)" in captured.err
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "k", "--map",
                 str(tmp_path / "map.json")]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].startswith(f"dicomlens: anonymized {sum(SLICES)} files")
    assert f"identity map in {tmp_path / 'map.json'}" in captured.err
    messages = (captured.out + captured.err).replace(str(folder), "")
    assert not [text for text in originals if text in messages]  # A12
    written = {path: path.stat().st_mtime_ns for path in out.rglob("*.dcm")}
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "k"]) == 0  # same bytes
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f", {sum(SLICES)} already in the output (identical bytes)"
    )
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.dcm")} == written
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "other"]) == 0  # new UIDs
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "k", "--keep", "dates"]) == 1
    assert "exists (an earlier run, or another input" in capsys.readouterr().err
    assert main(["anonymize", str(folder), "-o", str(out), "--keep", "datez"]) == 2


def test_copies_of_one_instance_are_written_once(
    ct_small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    (folder / "cd").mkdir(parents=True)
    for copy in (folder / "a.dcm", folder / "cd" / "a.dcm"):
        copy.write_bytes(ct_small.read_bytes())
    implicit = pydicom.dcmread(ct_small)
    implicit.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    implicit.save_as(folder / "implicit.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    assert main(["anonymize", str(folder), "-o", str(out), "--key", "k"]) == 1
    err = capsys.readouterr().err
    assert len(list(out.rglob("*.dcm"))) == 1
    assert err.count("dicomlens: error: ") == 1  # the same instance, other bytes: not dropped
    assert f"{folder / 'implicit.dcm'}: output " in err
    assert "1 failed, 1 already in the output (identical bytes)" in err.splitlines()[-1]


def test_cli_key_from_environment(
    ct_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DICOMLENS_KEY", "k")
    assert main(["anonymize", str(ct_small), "-o", str(tmp_path / "a")]) == 0
    assert main(["anonymize", str(ct_small), "-o", str(tmp_path / "b"), "--key", "k"]) == 0
    assert [p.name for p in _outputs(tmp_path / "a")] == [p.name for p in _outputs(tmp_path / "b")]


def test_map_json_is_plain_data(planted: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, _ = planted
    anonymize([folder], out=tmp_path / "out", key="k", keep=["dates"], map_file=tmp_path / "m")
    data = json.loads((tmp_path / "m").read_text())
    (patient,) = data["patients"].values()
    assert patient["date_shift_days"] == Keys.from_key("k").date_shift(PLANTED["PatientID"])
    assert len(data["uids"]) >= sum(SLICES) + 3 * len(SLICES)


@pytest.mark.shared_data
def test_mosaic_volumes_survive_with_the_csa_header_allow_listed(
    shared_data: Path, tmp_path: Path
) -> None:
    mosaics = sorted((shared_data / "dcm_qa_decubitus/In/HFDL/3_ep2d_diff_mddw_20_p2").iterdir())
    mosaics = [p for p in mosaics if p.suffix == ".dcm"][:3]
    csa = "(0029,xx10)[SIEMENS CSA HEADER]"
    results = anonymize(mosaics, out=tmp_path, key="k", keep=["private"], safe_private=[csa])
    assert all(r.written for r in results)
    for result in results:
        assert result.target is not None
        (before,), (after,) = scan([result.source]), scan([result.target])
        np.testing.assert_array_equal(after.volume().array, before.volume().array)
        np.testing.assert_allclose(after.volume().affine_lps, before.volume().affine_lps)


def test_dicomdir_is_omitted_not_copied(tmp_path: Path) -> None:
    folder = bundled("dicomdirtests/DICOMDIR").parent
    results = anonymize([folder], out=tmp_path / "out", key="k")
    dicomdirs = [r for r in results if r.source.name.startswith("DICOMDIR")]
    assert dicomdirs and all("DICOMDIR omitted" in r.skipped for r in dicomdirs)
    assert sum(r.written for r in results) == 81
    assert not [p for p in (tmp_path / "out").rglob("*") if "DICOMDIR" in p.name]


def test_fail_fast_stops_at_the_first_failure(
    planted: tuple[Path, list[str]], tmp_path: Path, make_file: Callable[[str, bytes], Path]
) -> None:
    folder, _ = planted
    good = (folder / "IMG001.dcm").read_bytes()
    make_file("batch/a_bad.dcm", good[:2000])
    make_file("batch/b_good.dcm", good)
    with pytest.raises(CorruptDicomError, match=r"a_bad\.dcm"):
        anonymize([tmp_path / "batch"], out=tmp_path / "out", key="k", fail_fast=True)
    assert not (tmp_path / "out").exists()
