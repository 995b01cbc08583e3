"""Reading files against the layout of a similar file (dicomlens.reading.layouts): the
result is always what a full read gives, and it is taken for the slices of a series."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from conftest import TEST_FILES, Mutation, _as_read, _element_as_read, bundled, damage, mutations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset

from dicomlens.errors import FileError
from dicomlens.reading import Layout, Likeness, read, read_with_layout

DEFER = 16384
EXAMPLES = int(os.environ.get("DICOMLENS_FUZZ_EXAMPLES", "300"))


def layout_of(path: Path) -> Layout:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = read_with_layout(path, defer_size=DEFER).layout
    assert layout is not None, path
    return layout


def full_outcome(path: Path) -> object:
    """What ``read`` gives: the file meta and data set elements as read, or the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read(path, decode=(), defer_size=DEFER)
    except FileError as exc:
        return ("error", str(exc))
    return _as_read(ds.file_meta), _as_read(ds)


def likeness_outcome(likeness: Likeness, path: Path) -> object:
    """The likeness seen as ``read`` gives it: elements that ``read`` leaves converted
    (character set, group length, transfer syntax) compared by their values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = read(path, decode=(), defer_size=DEFER)
    count = likeness.layout.meta_count
    elements = [likeness.element(i) for i in range(len(likeness.layout.elements))]
    return _seen(elements[:count], ds.file_meta), _seen(elements[count:], ds)


def _seen(
    elements: list[RawDataElement | DataElement], reference: Dataset
) -> list[tuple[object, ...]]:
    assert len(elements) == len(reference)
    seen: list[tuple[object, ...]] = []
    for element, kept in zip(elements, reference.values(), strict=True):
        if isinstance(kept, RawDataElement) or not isinstance(element, RawDataElement):
            seen.append(_element_as_read(element))  # a sequence of undefined length: parsed
        else:
            converted = convert_raw_data_element(element)
            seen.append((converted.tag, converted.VR, repr(converted.value)))
    return seen


def assert_read_alike(layout: Layout, path: Path) -> Likeness | None:
    """``path`` read against ``layout`` gives None or exactly the full read."""
    likeness = layout.read_like(path)
    if likeness is not None:
        assert likeness_outcome(likeness, path) == full_outcome(path), path
        assert likeness.fingerprint == (path.stat().st_size, path.stat().st_mtime_ns,
                                        path.stat().st_ino)  # fmt: skip
    return likeness


def series_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*") if p.is_file() and p.suffix != ".txt"})


# ---------------------------------------------------------------------------
# Series: the layout is taken, and the result is the full read's
# ---------------------------------------------------------------------------


def test_slices_of_a_generated_series_read_against_the_first(
    make_ct_series: Callable[..., Path],
) -> None:
    files = sorted(make_ct_series(12).iterdir())
    layout = layout_of(files[0])
    taken = [assert_read_alike(layout, path) for path in files[1:]]
    assert all(likeness is not None for likeness in taken)
    # what differs from slice to slice: UIDs, position, instance number (not the pixels)
    changed_tags = {layout.elements[i].tag for t in taken if t for i in t.changed}
    assert {0x00020003, 0x00080018, 0x00200013, 0x00200032} <= changed_tags
    assert 0x7FE00010 not in changed_tags


@pytest.mark.shared_data
def test_scanner_series_read_against_their_first_slice(shared_data: Path) -> None:
    """Siemens slices whose values change length (UIDs, positions, the CSA header) and
    mosaics, each read against the layout of the last slice that had to be read whole
    (as the catalog does): most are, all exactly as read whole. (The first file of a
    diffusion series, b=0, lacks the diffusion elements of the others.)"""
    taken = total = 0
    for folder in series_folders(shared_data / "dcm_qa_decubitus" / "In"):
        files = sorted(p for p in folder.iterdir() if p.suffix != ".txt")
        layout = layout_of(files[0])
        for path in files[1:]:
            total += 1
            if assert_read_alike(layout, path) is not None:
                taken += 1
            else:
                layout = layout_of(path)
    assert total > 150 and taken >= 0.95 * total, (taken, total)


@pytest.mark.shared_data
def test_every_scanner_file_against_every_layout(shared_data: Path) -> None:
    """Files of other series, syntaxes and vendors read against each other's layout:
    None, or exactly the full read."""
    files = [p for folder in series_folders(shared_data) for p in sorted(folder.iterdir())[:2]]
    files = [p for p in files if p.suffix != ".txt"]
    layouts = []
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                laid = read_with_layout(path, defer_size=DEFER)
            except FileError:
                continue
        if laid.layout is not None:
            layouts.append(laid.layout)
    assert len(layouts) >= 10
    for layout in layouts:
        for path in files:
            assert_read_alike(layout, path)


def test_bundled_files_against_each_other() -> None:
    """Every file bundled with pydicom (odd syntaxes, damaged values, sequences of
    undefined length...) against every layout among them: itself with nothing
    changed, any other None or exactly its full read."""
    paths = sorted(TEST_FILES.glob("*.dcm"))
    layouts = {}
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                layouts[path] = read_with_layout(path, defer_size=DEFER).layout
            except FileError:
                continue
    assert sum(layout is not None for layout in layouts.values()) >= 20
    for base, layout in layouts.items():
        if layout is None:
            continue
        for path in paths:
            likeness = assert_read_alike(layout, path)
            if path == base:
                assert likeness is not None and not likeness.changed, base.name


def _with_undefined_length_sequences(ds: Dataset, referenced: str, depth: int = 1) -> Dataset:
    """``ds`` with two sequences written with undefined lengths (items too): one the
    same in every file, one naming ``referenced`` inside ``depth`` nested items."""
    constant = Dataset()
    constant.CodeValue, constant.CodingSchemeDesignator = "T-D1100", "SRT"
    ds.AnatomicRegionSequence = [constant]
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = referenced
    for _ in range(depth - 1):
        outer = Dataset()
        outer.ReferencedImageSequence = [item]
        item = outer
    ds.ReferencedImageSequence = [item]
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = True
            for entry in element.value:
                entry.is_undefined_length_sequence_item = True
    return ds


def test_sequences_of_undefined_length_are_compared_and_parsed_again_where_they_differ(
    tmp_path: Path, ct_small: Path
) -> None:
    """pydicom parses sequences of undefined length while reading: one whose bytes are
    the same is taken, one that differs (here by a longer UID, moving what follows) is
    parsed again where it lies, with the full read's positions down to nested items."""
    paths = []
    for number, uid in enumerate(["1.2.3.4", "1.2.3.44", "1.2.3.4444.5", "1.2.3.4"]):
        ds = _with_undefined_length_sequences(pydicom.dcmread(ct_small), uid)
        ds.InstanceNumber = number + 1
        paths.append(tmp_path / f"{number}.dcm")
        ds.save_as(paths[-1])
    layout = layout_of(paths[0])
    kinds = {element.tag: type(element) for element in layout.elements}
    assert kinds[0x00082218] is kinds[0x00081140] is DataElement  # both parsed by pydicom
    changed_tags = []
    for path in paths[1:]:
        likeness = assert_read_alike(layout, path)
        assert likeness is not None, path
        changed_tags.append({layout.elements[i].tag for i in likeness.changed})
    assert all(0x00082218 not in tags for tags in changed_tags)  # the constant one
    assert [0x00081140 in tags for tags in changed_tags] == [True, True, False]
    assert len(layout.read_like(paths[2]).shifts) == 2  # type: ignore[union-attr]


def test_a_sequence_nested_too_deep_in_another_file_means_a_full_read(
    tmp_path: Path, ct_small: Path
) -> None:
    _with_undefined_length_sequences(pydicom.dcmread(ct_small), "1.2.3").save_as(tmp_path / "a.dcm")
    deep = _with_undefined_length_sequences(pydicom.dcmread(ct_small), "1.2.3", depth=70)
    deep.save_as(tmp_path / "b.dcm")
    outcome = full_outcome(tmp_path / "b.dcm")
    assert isinstance(outcome, tuple) and outcome[0] == "error" and "deeper" in outcome[1]
    assert layout_of(tmp_path / "a.dcm").read_like(tmp_path / "b.dcm") is None


def _compressed(paths: list[Path], *, padding: int | None = None) -> list[Path]:
    """The files RLE-compressed in place (encapsulated Pixel Data of undefined length,
    its size differing with the pixels), with ``padding`` bytes of trailing padding
    (CT_small has 126; 0: none)."""
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        if padding == 0:
            del ds.DataSetTrailingPadding
        elif padding is not None:
            ds.DataSetTrailingPadding = b"\0" * padding
        ds.save_as(path)
    return paths


@pytest.mark.parametrize("padding", [None, 0, 6])
def test_compressed_slices_are_read_against_a_layout(
    make_ct_series: Callable[..., Path], padding: int
) -> None:
    """Encapsulated pixel data left in the file: its end is found item by item in each
    file (pydicom does the same), the elements after it are compared where they lie."""
    files = _compressed(sorted(make_ct_series(8).iterdir()), padding=padding)
    assert len({path.stat().st_size for path in files}) > 1  # the values differ in length
    layout = layout_of(files[0])
    (pixels,) = [e for e in layout.elements if e.tag == 0x7FE00010]
    assert isinstance(pixels, RawDataElement) and pixels.length == 0xFFFFFFFF
    taken = [assert_read_alike(layout, path) for path in files[1:]]
    assert all(likeness is not None for likeness in taken)
    assert all(len(likeness.shifts) >= 2 for likeness in taken if likeness)


def test_compressed_slices_that_pydicom_would_read_in_are_read_whole(
    make_ct_series: Callable[..., Path],
) -> None:
    """A value below the defer size is read into memory by pydicom; no element after
    the pixel data (CT_small ends with trailing padding), or a cut value: each one a
    full read."""
    files = _compressed(sorted(make_ct_series(4).iterdir()))
    layout = layout_of(files[0])
    assert layout.elements[-1].tag == 0xFFFCFFFC
    small = pydicom.dcmread(files[1])
    small.PixelData = pydicom.encaps.encapsulate([b"\0" * 64])
    small.save_as(files[1])
    unpadded = pydicom.dcmread(files[2])
    del unpadded.DataSetTrailingPadding
    unpadded.save_as(files[2])
    data = files[3].read_bytes()
    files[3].write_bytes(data[: data.rindex(b"\xfe\xff\xdd\xe0")])  # no sequence delimiter
    for path in files[1:]:
        assert assert_read_alike(layout, path) is None, path.name


@pytest.mark.shared_data
def test_philips_slices_with_sequences_of_undefined_length(philips_dwi: Path) -> None:
    """Philips classic slices (private blocks and sequences of undefined length) read
    against the layout of the last slice read whole: nearly all, each exactly as read."""
    files = sorted(philips_dwi.iterdir())[:120]
    layout = layout_of(files[0])
    assert any(type(element) is DataElement for element in layout.elements)
    taken = 0
    for path in files[1:]:
        if assert_read_alike(layout, path) is not None:
            taken += 1
        else:
            layout = layout_of(path)
    assert taken >= 0.95 * (len(files) - 1), taken


# ---------------------------------------------------------------------------
# What is never read against a layout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("SpecificCharacterSet", "ISO_IR 192"),  # decodes every text that follows
        ("PixelRepresentation", 0),  # settles ambiguous VRs (CT_small's is 1)
        ("BitsAllocated", 8),  # (CT_small's is 16)
    ],
)
def test_a_changed_context_element_means_a_full_read(
    tmp_path: Path, ct_small: Path, keyword: str, value: object
) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.save_as(tmp_path / "a.dcm")
    assert ds.get(keyword) != value
    setattr(ds, keyword, value)
    ds.save_as(tmp_path / "b.dcm")
    layout = layout_of(tmp_path / "a.dcm")
    assert layout.read_like(tmp_path / "a.dcm") is not None
    assert layout.read_like(tmp_path / "b.dcm") is None


def test_a_changed_private_creator_means_a_full_read(tmp_path: Path, ct_small: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.save_as(tmp_path / "a.dcm")
    ds[0x00090010].value = "GEMS_IDEN_02"  # same length: only the value differs
    ds.save_as(tmp_path / "b.dcm")
    assert layout_of(tmp_path / "a.dcm").read_like(tmp_path / "b.dcm") is None


def test_other_transfer_syntax_or_more_bytes_mean_a_full_read(
    tmp_path: Path, ct_small: Path
) -> None:
    layout = layout_of(ct_small)
    data = ct_small.read_bytes()
    (tmp_path / "longer.dcm").write_bytes(data + b"\x00" * 8)
    (tmp_path / "shorter.dcm").write_bytes(data[:-2])
    for name in ("longer.dcm", "shorter.dcm"):
        assert layout.read_like(tmp_path / name) is None
    implicit = pydicom.dcmread(ct_small)
    implicit.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    implicit.save_as(tmp_path / "implicit.dcm", enforce_file_format=True)
    assert layout.read_like(tmp_path / "implicit.dcm") is None
    assert layout.read_like(tmp_path / "missing.dcm") is None
    assert layout.read_like(tmp_path) is None  # a folder


def test_a_file_changed_while_compared_means_a_full_read(
    tmp_path: Path, ct_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy.dcm"
    copy.write_bytes(ct_small.read_bytes())
    layout = layout_of(ct_small)
    assert layout.read_like(copy) is not None
    real_stat = os.stat

    def touched(path: object, *args: object, **kwargs: object) -> os.stat_result:
        found = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        return os.stat_result((*found[:8], found[8] + 1, found[9]))  # a later mtime

    monkeypatch.setattr(os, "stat", touched)
    assert layout.read_like(copy) is None


def test_a_value_grown_past_its_neighbours_is_parsed_where_it_lies(
    tmp_path: Path, ct_small: Path
) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.save_as(tmp_path / "a.dcm")
    ds.SOPInstanceUID = "1.2.3.4"  # shorter: everything after it moves
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ImageComments = "x" * 5000  # much longer than before (LT)
    ds.save_as(tmp_path / "b.dcm")
    likeness = assert_read_alike(layout_of(tmp_path / "a.dcm"), tmp_path / "b.dcm")
    assert likeness is not None and len(likeness.shifts) > 2


# ---------------------------------------------------------------------------
# Never another result than the full read (property tests)
# ---------------------------------------------------------------------------

SEEDS = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]
_TEXT_KEYWORDS = ["PatientName", "SeriesDescription", "SOPInstanceUID", "InstanceNumber",
                  "ImagePositionPatient", "AcquisitionTime", "WindowCenter", "ImageComments",
                  "StudyID", "AccessionNumber"]  # fmt: skip


def edits(keywords: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """New values for some of ``keywords``."""
    value = st.text(alphabet="0123456789.", min_size=0, max_size=70)
    return st.lists(st.tuples(st.sampled_from(keywords), value), min_size=1, max_size=5)


damages = mutations(["overwrite", "lengths", "insert", "cut"], longest=12, most=3)


def _edited(seed: Path, changes: list[tuple[str, str]], out: Path) -> None:
    """The seed with new values (of other lengths; elements it lacks added), written by
    pydicom; invalid values (a UID over 64 characters) included."""
    ds = pydicom.dcmread(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, text in changes:
            if keyword == "InstanceNumber":
                ds.InstanceNumber = int(text.replace(".", "")[:9] or 0)
            elif keyword in ("ImagePositionPatient", "WindowCenter"):  # DS, several values
                setattr(ds, keyword, [v for v in text.split(".") if v][:3] or ["0"])
            else:
                setattr(ds, keyword, text)
        ds.save_as(out)


_PROPERTY = settings(
    max_examples=max(EXAMPLES // 3, 50),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("seed_name", SEEDS)
def test_edited_files_read_against_the_seed_as_read_whole(seed_name: str) -> None:
    seed = bundled(seed_name)
    layout = layout_of(seed)
    present = [keyword for keyword in _TEXT_KEYWORDS if keyword in pydicom.dcmread(seed)]
    taken = []

    @_PROPERTY
    @given(changes=edits(present))
    def check(changes: list[tuple[str, str]]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "edited.dcm"
            _edited(seed, changes, path)
            taken.append(assert_read_alike(layout, path) is not None)

    check()
    assert sum(taken) > len(taken) // 2  # the layout serves most edits


@pytest.mark.parametrize("seed_name", SEEDS)
def test_damaged_files_read_against_the_seed_as_read_whole(seed_name: str) -> None:
    _assert_damaged_copies_read_as_whole(bundled(seed_name))


def test_damaged_compressed_files_read_against_the_seed_as_read_whole(
    make_ct_series: Callable[..., Path],
) -> None:
    (seed,) = _compressed(sorted(make_ct_series(1).iterdir()))
    _assert_damaged_copies_read_as_whole(seed)


def _assert_damaged_copies_read_as_whole(seed: Path) -> None:
    """Copies of ``seed`` damaged anywhere, read against its layout: None or exactly
    the full read."""
    layout = layout_of(seed)

    @_PROPERTY
    @given(changes=damages)
    def check(changes: list[Mutation]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "damaged.dcm"
            path.write_bytes(damage(seed.read_bytes(), changes))
            assert_read_alike(layout, path)

    check()


@pytest.mark.shared_data
def test_scanning_through_layouts_gives_the_slices_of_full_reads(shared_data: Path) -> None:
    """Each series' files after the first are read against its layout, the decoded
    elements of the first shared: the slices are those of a full read of every file."""
    from dicomlens.reading import decode_elements
    from dicomlens.scanning import _scan_one  # the per-file step of scan_folder
    from dicomlens.series import HEADER_TAGS, slice_infos

    compared = 0
    for folder in series_folders(shared_data):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scanned = [
                info for path in files for info in (_scan_one((path, None, True)).value or [])
            ]
        expected = []
        for path in files:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ds = read(path, decode=(), defer_size=16384)
                    decode_elements(ds, path, HEADER_TAGS)
                except FileError:
                    continue  # not DICOM, or damaged: not a slice either way
                expected += slice_infos(ds, path) if "Rows" in ds else []
        assert scanned == expected, folder
        compared += len(expected)
    assert compared > 800
