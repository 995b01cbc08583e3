"""The tag grammar: every notation, paths, private tags, errors and suggestions."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.datadict import DicomDictionary

from dicomlens.errors import RetiredTagWarning, TagSyntaxError, UnknownTagError
from dicomlens.tags import WILDCARD, ElementRef, format_tag, lookup, parse_tag, search_tags

WINDOW_CENTER = [
    "WindowCenter",
    "Window Center",
    "window center",
    "WINDOW_CENTER",
    "(0028,1050)",
    "(0028, 1050)",
    "0028,1050",
    "0028|1050",
    "00281050",
    "0x00281050",
    "0x281050",
    "(0x0028, 0x1050)",
    "(0028,1050) WindowCenter",
    "  (0028,1050)  ",
    0x281050,
    (0x0028, 0x1050),
]


@pytest.mark.parametrize("spec", WINDOW_CENTER)
def test_every_notation_gives_window_center(spec: object) -> None:
    path = parse_tag(spec)  # type: ignore[arg-type]
    assert path.tag == 0x00281050
    assert str(path) == "WindowCenter"


def test_human_names_with_apostrophes_and_case() -> None:
    assert parse_tag("Patient's Name").tag == 0x00100010
    assert parse_tag("patient's name").tag == 0x00100010
    assert parse_tag("patients name").tag == 0x00100010


def test_sequence_paths_and_indexes() -> None:
    path = parse_tag("ReferencedImageSequence[0].ReferencedSOPInstanceUID")
    assert [(s.ref.tag, s.subscript) for s in path.steps] == [(0x00081140, 0), (0x00081155, None)]
    path = parse_tag(
        "PerFrameFunctionalGroupsSequence[*].PlanePositionSequence[0].ImagePositionPatient"
    )
    assert [s.subscript for s in path.steps] == [WILDCARD, 0, None]
    assert parse_tag("WindowCenter[1]").steps[0].subscript == 1
    assert parse_tag("WindowCenter[-1]").steps[0].subscript == -1
    assert (
        str(parse_tag("(0008,1140)[2].(0008,1155)"))
        == "ReferencedImageSequence[2].ReferencedSOPInstanceUID"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "(0019,xx0C)[SIEMENS CT VA0  COAD]",
        '"SIEMENS CT VA0  COAD":0019,0C',
        '"SIEMENS CT VA0  COAD":(0019,xx0C)',
        "SIEMENS CT VA0  COAD:(0019,100C)",
        "(0019,100C)[SIEMENS CT VA0  COAD]",
    ],
)
def test_private_tags_with_creator(spec: str) -> None:
    path = parse_tag(spec)
    assert path.leaf == ElementRef(0x0019, 0x0C, "SIEMENS CT VA0  COAD")
    assert str(path) == "(0019,xx0C)[SIEMENS CT VA0  COAD]"
    assert parse_tag(str(path)) == path


def test_private_creator_and_index_together() -> None:
    step = parse_tag("(0029,xx10)[SIEMENS CSA HEADER][2]").steps[0]
    assert step.ref == ElementRef(0x0029, 0x10, "SIEMENS CSA HEADER")
    assert step.subscript == 2


def test_private_tag_knows_its_name() -> None:
    info = lookup("(0019,xx10)[SIEMENS CT VA0  COAD]")
    assert info.creator == "SIEMENS CT VA0  COAD"
    assert (info.name, info.VR) == ("Distance Source to SourceSide Collimator", "IS")
    assert lookup("(0019,xx0C)[SIEMENS CT VA0  COAD]").name == "Private tag data"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty tag"),
        ("(0019,xx0C)", "needs its creator"),
        ("WindowCenter[", "unbalanced"),
        ("Seq..Tag", "empty step"),
        ("(0028,1050) PatientName", "does not name"),
        ('"ACME":0010,10', "even"),
        (0x1_0000_0000, "32-bit"),
        ((1, 2, 3), "two numbers"),
    ],
)
def test_syntax_errors(spec: object, message: str) -> None:
    with pytest.raises(TagSyntaxError, match=message):
        parse_tag(spec)  # type: ignore[arg-type]


def test_misspelt_keyword_suggests_the_closest() -> None:
    with pytest.raises(UnknownTagError) as caught:
        parse_tag("PatientNmae")
    message = str(caught.value)
    assert message.startswith("unknown tag 'PatientNmae'; did you mean (0010,0010) PatientName")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("retired", "successor", "tag"),
    [
        ("ImagePosition", "(0020,0032) ImagePositionPatient", 0x00200030),
        ("ImageOrientation", "(0020,0037) ImageOrientationPatient", 0x00200035),
    ],
)
def test_retired_keyword_warns_and_names_the_current_one(
    retired: str, successor: str, tag: int
) -> None:
    with pytest.warns(
        RetiredTagWarning,
        match=rf"retired .*; you probably want {successor.replace('(', '[(]').replace(')', '[)]')}",
    ):
        path = parse_tag(retired)
    assert path.tag == tag


def test_numbers_never_warn_even_for_retired_tags() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_tag("(0020,0030)").tag == 0x00200030


def test_format_tag() -> None:
    assert format_tag(0x00100010) == "(0010,0010) PatientName"
    assert format_tag((0x0019, 0x0010)) == "(0019,0010) PrivateCreator"
    assert format_tag(0x0019100C, creator="SIEMENS CT VA0  COAD").startswith(
        "(0019,100C) [SIEMENS CT VA0  COAD]"
    )
    assert format_tag(0x00980099) == "(0098,0099)"
    assert format_tag(0x00200030) == "(0020,0030) ImagePosition"
    assert str(parse_tag("(0020,0030)")) == "(0020,0030)"  # retired: paths use the number


def test_lookup_repeating_group_keyword() -> None:
    info = lookup("OverlayData")
    assert info.tag == 0x60003000 and info.VR == "OB or OW"


def test_search_finds_public_private_and_fuzzy() -> None:
    assert str(search_tags("slice thickness")[0]) == "(0018,0050) SliceThickness"
    assert any(hit.creator == "SIEMENS CT VA0  COAD" for hit in search_tags("COAD"))
    assert str(search_tags("windw centr")[0]) == "(0028,1050) WindowCenter"
    assert all(hit.creator is None for hit in search_tags("window center", private=False))
    hits = search_tags("ImagePosition")
    assert [hit.keyword for hit in hits[:2]] == ["ImagePosition", "ImagePositionPatient"]


# --- Property-based round trips over the whole public dictionary -------------

_PUBLIC = sorted(DicomDictionary.items())
_entries = st.sampled_from(_PUBLIC)


@settings(max_examples=400, deadline=None)
@given(_entries)
def test_every_dictionary_tag_round_trips_through_every_number_notation(
    entry: tuple[int, tuple[str, ...]],
) -> None:
    tag = entry[0]
    group, element = tag >> 16, tag & 0xFFFF
    notations = [
        f"({group:04X},{element:04X})",
        f"({group:04x}, {element:04x})",
        f"{group:04X},{element:04X}",
        f"{group:04X}|{element:04X}",
        f"{tag:08X}",
        f"0x{tag:08X}",
        hex(tag),
        tag,
        (group, element),
        format_tag(tag),
    ]
    for spec in notations:
        assert parse_tag(spec).leaf == ElementRef(group, element), spec  # type: ignore[arg-type]
    assert parse_tag(str(parse_tag(tag))) == parse_tag(tag)


@settings(max_examples=400, deadline=None)
@given(_entries)
def test_every_keyword_and_name_resolves_to_its_tag(entry: tuple[int, tuple[str, ...]]) -> None:
    tag, (_vr, _vm, name, retired, keyword) = entry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RetiredTagWarning)
        if keyword:
            assert parse_tag(keyword).tag == tag
        resolved = parse_tag(name).tag if name else tag
    # A handful of retired names are shared by several tags; current names are unique.
    assert resolved == tag or retired


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ReferencedImageSequence", "(0008,1115)", "OtherPatientIDsSequence"]),
            st.one_of(st.none(), st.integers(-3, 20), st.just("*")),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["PatientID", "(0019,xx0C)[SIEMENS CT VA0  COAD]", "WindowCenter[1]"]),
)
def test_paths_round_trip(steps: list[tuple[str, object]], leaf: str) -> None:
    text = (
        ".".join(name + ("" if index is None else f"[{index}]") for name, index in steps)
        + "."
        + leaf
    )
    path = parse_tag(text)
    assert parse_tag(str(path)) == path
    assert len(path.steps) == len(steps) + 1
