"""The confidentiality profile as data: Table E.1-1 and how options combine."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword

from dicomlens._confidentiality_profile import COLUMNS, ROWS
from dicomlens.errors import UsageError
from dicomlens.profile import Option, Profile, Treatment, is_identifying

VALID_CODES = {"", "X", "Z", "D", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}


def test_table_has_every_column_and_only_known_codes() -> None:
    assert len(ROWS) > 600
    for key, codes in ROWS.items():
        assert len(codes) == len(COLUMNS), key
        assert set(codes) <= VALID_CODES, key
        assert codes[0], f"{key}: no Basic Profile action"


@pytest.mark.parametrize(
    ("keyword", "treatment"),
    [
        ("PatientName", Treatment.EMPTY),  # Z
        ("PatientID", Treatment.DUMMY),  # Z/D: dummy (a pseudonym) keeps type 1 valid
        ("StudyInstanceUID", Treatment.REPLACE_UID),  # U
        ("ReferencedImageSequence", Treatment.REPLACE_UID),  # X/Z/U*
        ("StudyDescription", Treatment.REMOVE),  # X
        ("InstitutionName", Treatment.DUMMY),  # X/Z/D
        ("AccessionNumber", Treatment.EMPTY),  # Z
        ("StudyDate", Treatment.EMPTY),  # Z
        ("Rows", None),  # not listed: kept
    ],
)
def test_basic_profile(keyword: str, treatment: Treatment | None) -> None:
    assert Profile().treatment(tag_for_keyword(keyword)) is treatment


@pytest.mark.parametrize(
    ("option", "keyword", "treatment"),
    [
        ("dates", "StudyDate", Treatment.CLEAN),
        ("dates", "PatientBirthDate", Treatment.EMPTY),  # no column entry: Basic Profile
        ("uids", "SOPInstanceUID", Treatment.KEEP),
        ("device", "DeviceSerialNumber", Treatment.KEEP),
        ("institution", "InstitutionName", Treatment.KEEP),
        ("patient", "PatientSex", Treatment.KEEP),
        ("patient", "PatientAge", Treatment.KEEP),
        ("descriptors", "StudyDescription", Treatment.CLEAN),
    ],
)
def test_options_override_the_basic_profile(
    option: str, keyword: str, treatment: Treatment
) -> None:
    assert Profile([option]).treatment(tag_for_keyword(keyword)) is treatment


def test_private_overlays_and_curves() -> None:
    assert Profile().treatment(0x00291010) is Treatment.REMOVE
    assert Profile(["private"]).treatment(0x00291010) is Treatment.CLEAN
    assert Profile().treatment(0x60003000) is Treatment.REMOVE  # overlay data
    assert Profile().treatment(0x60020010) is Treatment.REMOVE  # any overlay element
    assert Profile().treatment(0x50003000) is Treatment.REMOVE  # curve data


def test_codes_name_the_options_used() -> None:
    codes = Profile(["dates", Option.RETAIN_UIDS]).codes
    assert codes == [
        ("113100", "Basic Application Confidentiality Profile"),
        ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
        ("113110", "Retain UIDs Option"),
    ]


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown profile option 'datez'.*dates"):
        Profile(["datez"])


def test_is_identifying() -> None:
    assert is_identifying(tag_for_keyword("PatientBirthDate"))
    assert is_identifying(0x00091001)
    assert not is_identifying(tag_for_keyword("WindowCenter"))
