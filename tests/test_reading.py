"""Reading files and walking folders, with clear errors for bad input (RELIABILITY R1-R7)."""

from __future__ import annotations

import os
import resource
import warnings
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from conftest import bundled, read_both_ways
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
)

from dicomlens import reading
from dicomlens.errors import CorruptDicomError, DicomlensWarning, FileError, NotDicomError
from dicomlens.reading import iter_files, read, read_files

MakeFile = Callable[[str, bytes], Path]


def test_read_gives_the_dataset_pydicom_gives(ct_small: Path) -> None:
    ours = read(ct_small)
    theirs = pydicom.dcmread(ct_small)
    assert ours == theirs
    assert ours.file_meta == theirs.file_meta
    assert read(ct_small, stop_before_pixels=True).get("PixelData") is None


def test_not_dicom(make_file: MakeFile) -> None:  # R1
    path = make_file("notes.txt", b"hello" * 50)
    with pytest.raises(
        NotDicomError, match=r"notes.txt: not a DICOM file \(no DICM prefix at byte 128\)$"
    ):
        read(path)


def test_jpeg_is_not_dicom(make_file: MakeFile) -> None:  # R1
    path = make_file("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(NotDicomError, match="no DICM prefix"):
        read(path)


@pytest.mark.parametrize("size", [0, 50, 131])
def test_empty_and_short_files_report_their_size(
    make_file: MakeFile, ct_small: Path, size: int
) -> None:  # R2
    path = make_file("short.dcm", ct_small.read_bytes()[:size])
    expected = "empty file (0 bytes)" if size == 0 else f"file too short to be DICOM ({size} bytes)"
    with pytest.raises(
        NotDicomError, match=rf"short.dcm: {expected.replace('(', '[(]').replace(')', '[)]')}$"
    ):
        read(path)


def test_forced_read_of_junk_is_refused(make_file: MakeFile) -> None:  # R3
    path = make_file("junk.bin", b"hello" * 50)
    with pytest.raises(NotDicomError, match="forced read produced no plausible DICOM content"):
        read(path, force=True)


def test_raw_dataset_needs_force_and_then_warns() -> None:  # R4
    path = bundled("ExplVR_LitEndNoMeta.dcm")
    with pytest.raises(NotDicomError, match="use --force"):
        read(path)
    with pytest.warns(
        DicomlensWarning, match="transfer syntax guessed as explicit VR little endian"
    ):
        ds = read(path, force=True)
    assert ds.SOPInstanceUID == pydicom.dcmread(path, force=True).SOPInstanceUID


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (140, r"truncated \(no data set after the file meta; 140 bytes\)"),
        (300, r"truncated \(file meta ends at byte 300, expected 336\)"),
        (
            1000,
            r"truncated: \(0010,1002\) OtherPatientIDsSequence declares 72 bytes but only 6 remain",
        ),
        (2000, "truncated inside an element header at byte 1994"),
    ],
)
def test_truncated_files(
    make_file: MakeFile, ct_small: Path, cut: int, message: str
) -> None:  # R5, R6
    path = make_file("cut.dcm", ct_small.read_bytes()[:cut])
    with pytest.raises(CorruptDicomError, match=rf"cut.dcm: {message}"):
        read(path)


def test_truncated_rtplan_names_the_element() -> None:  # R6
    with pytest.raises(
        CorruptDicomError, match=r"\(300A,00B0\) BeamSequence declares 976 bytes but only 711"
    ):
        read(bundled("rtplan_truncated.dcm"))


def test_every_cut_is_detected_or_leaves_a_correct_prefix(make_file: MakeFile) -> None:  # R6
    original = read(bundled("rtplan.dcm"))
    data = bundled("rtplan.dcm").read_bytes()
    detected = 0
    for cut in range(140, len(data), 7):
        path = make_file("cut.dcm", data[:cut])
        try:
            partial = read(path)
        except CorruptDicomError:
            detected += 1
            continue
        # A cut exactly between two top-level elements leaves a shorter but valid
        # file: everything read must then equal the original, element for element.
        assert len(partial) < len(original)
        for element in partial:
            assert element == original[element.tag], (cut, element.tag)
    assert detected > 300


def test_truncated_pixel_data_reads_with_a_warning(
    make_file: MakeFile, ct_small: Path
) -> None:  # R7
    path = make_file("pixels.dcm", ct_small.read_bytes()[:-5000])
    with pytest.warns(
        DicomlensWarning, match=r"Pixel Data shorter than declared \(27906 of 32768 bytes\)"
    ):
        ds = read(path)
    assert ds.PatientName == "CompressedSamples^CT1"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileError, match=r"nothing.dcm: no such file or directory$"):
        read(tmp_path / "nothing.dcm")
    with pytest.raises(FileError, match="is a directory"):
        read(tmp_path)


def test_undecodable_value_fails_at_read_time(make_file: MakeFile, ct_small: Path) -> None:
    data = bytearray(ct_small.read_bytes())
    # Rows (0028,0010) US with length 2 -> claim length 3 so the US value cannot be decoded.
    position = data.index(b"\x28\x00\x10\x00US\x02\x00")
    data[position + 6 : position + 8] = b"\x03\x00"
    path = make_file("bad_us.dcm", bytes(data))
    with pytest.raises(CorruptDicomError, match=r"bad_us\.dcm: "):
        read(path)


def test_deflated_file_reads() -> None:
    ds = read(bundled("image_dfl.dcm"))
    assert ds.file_meta.TransferSyntaxUID.is_deflated
    assert ds == pydicom.dcmread(bundled("image_dfl.dcm"))


def test_iter_files_natural_order_and_hidden_files(make_file: MakeFile, tmp_path: Path) -> None:
    for name in ["1-10.dcm", "1-2.dcm", "1-1.dcm", ".hidden.dcm", "sub/1-3.dcm"]:
        make_file(name, b"x")
    found = [
        (p.relative_to(tmp_path).as_posix(), err, explicit)
        for p, err, explicit in iter_files([tmp_path])
    ]
    assert found == [
        ("1-1.dcm", None, False),
        ("1-2.dcm", None, False),
        ("1-10.dcm", None, False),
        ("sub/1-3.dcm", None, False),
    ]


def test_iter_files_globs_and_missing(make_file: MakeFile, tmp_path: Path) -> None:
    make_file("a1.dcm", b"x")
    make_file("a2.dcm", b"x")
    found = list(
        iter_files(
            [str(tmp_path / "a*.dcm"), str(tmp_path / "zz*.dcm"), str(tmp_path / "none.dcm")]
        )
    )
    assert [p.name for p, _, _ in found] == ["a1.dcm", "a2.dcm", "zz*.dcm", "none.dcm"]
    assert str(found[2][1]).endswith("no file matches this pattern")
    assert str(found[3][1]).endswith("no such file or directory")


def test_iter_files_does_not_follow_symlink_loops(make_file: MakeFile, tmp_path: Path) -> None:
    make_file("tree/a.dcm", b"x")
    os.symlink(tmp_path / "tree", tmp_path / "tree" / "loop")
    assert [p.name for p, _, _ in iter_files([tmp_path / "tree"])] == ["a.dcm"]


def test_read_files_keeps_going_past_bad_files(
    make_file: MakeFile, ct_small: Path, tmp_path: Path
) -> None:
    make_file("1.dcm", ct_small.read_bytes())
    make_file("2.dcm", ct_small.read_bytes()[:1000])
    make_file("3.txt", b"not dicom" * 30)
    make_file("4.dcm", ct_small.read_bytes())
    results = list(read_files(list(iter_files([tmp_path]))))
    assert [r.path.name for r in results] == ["1.dcm", "2.dcm", "3.txt", "4.dcm"]
    assert [r.dataset is not None for r in results] == [True, False, False, True]
    assert isinstance(results[1].error, CorruptDicomError) and not results[1].ignorable
    assert isinstance(results[2].error, NotDicomError) and results[2].ignorable


def test_all_bundled_and_shared_files_read(shared_data: Path) -> None:
    unreadable = {
        "ExplVR_BigEndNoMeta.dcm",
        "ExplVR_LitEndNoMeta.dcm",
        "no_meta.dcm",
        "rtplan_truncated.dcm",
        "rtstruct.dcm",
    }
    files = sorted(bundled("CT_small.dcm").parent.glob("*.dcm")) + sorted(
        shared_data.glob("*/In/**/*.dcm")
    )
    assert len(files) > 250
    failed = []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom's and ours: odd but readable
                read(path, stop_before_pixels=True)
        except FileError:
            failed.append(path.name)
    assert set(failed) == unreadable


def _with_bad_vr(ct_small: Path) -> bytes:
    """CT_small with PatientName's VR bytes replaced by 'ZZ' (RELIABILITY R16)."""
    data = bytearray(ct_small.read_bytes())
    position = data.index(b"\x10\x00\x10\x00PN")
    data[position + 4 : position + 6] = b"ZZ"
    return bytes(data)


def test_invalid_vr_fails_at_read_time_not_on_access(make_file: MakeFile, ct_small: Path) -> None:
    path = make_file("zz.dcm", _with_bad_vr(ct_small))
    for decode in (None, {0x00280010}):  # even when only other elements are wanted
        with pytest.raises(
            CorruptDicomError, match=r"zz\.dcm: \(0010,0010\) PatientName has an unknown VR 'ZZ'$"
        ):
            read(path, decode=decode)


def _file_start(transfer_syntax: str) -> BytesIO:
    """Preamble, DICM and file meta for hand-written hostile files."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = transfer_syntax
    out = BytesIO()
    out.write(bytes(128) + b"DICM")
    write_file_meta_info(out, meta)
    return out


def _with_lying_element(length: int, vr: bytes = b"OB") -> bytes:
    """Meta, then (0009,1010) declaring ``length`` bytes followed by only 100 (R8, R9)."""
    out = _file_start(ExplicitVRLittleEndian)
    out.write(b"\x08\x00\x16\x00UI\x1a\x00" + b"1.2.840.10008.5.1.4.1.1.7\x00")
    out.write(b"\x09\x00\x10\x10" + vr + b"\x00\x00" + length.to_bytes(4, "little") + bytes(100))
    return out.getvalue()


@pytest.mark.parametrize(("length", "vr"), [(0xFFFFFFF0, b"OB"), (0x7FFFFFF0, b"UN")])
def test_lying_length_is_refused_before_allocation(
    make_file: MakeFile, length: int, vr: bytes
) -> None:
    path = make_file("liar.dcm", _with_lying_element(length, vr))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        CorruptDicomError,
        match=rf"liar\.dcm: .*declares {length} bytes .*but only 100 remain",
    ):
        read(path)
    assert (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    )  # kB: no 2-4 GB attempt


def _nested(depth: int) -> bytes:
    """Meta, then a PatientName inside ``depth`` undefined-length sequences (R12)."""
    out = _file_start(ExplicitVRLittleEndian)
    out.write(
        (b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff")
        * depth
    )
    out.write(b"\x10\x00\x10\x00PN\x04\x00ABCD")
    out.write((b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") * depth)
    return out.getvalue()


def test_deep_nesting_is_one_clear_error(make_file: MakeFile) -> None:  # R12
    from dicomlens.access import find

    shallow = read(make_file("depth50.dcm", _nested(50)))
    (match,) = find(shallow, "PatientName")
    assert match.value == "ABCD" and match.path.count("ContentSequence[0]") == 50
    for depth in (300, 10_000):
        path = make_file(f"depth{depth}.dcm", _nested(depth))
        with pytest.raises(
            CorruptDicomError, match=rf"depth{depth}\.dcm: sequences nested too deeply to read$"
        ):
            read(path)


def _deflated(payload: bytes) -> bytes:
    """A Deflated Explicit VR Little Endian file whose data set is ``payload`` (R10, R11)."""
    out = _file_start(DeflatedExplicitVRLittleEndian)
    out.write(payload)
    return out.getvalue()


def test_deflate_bomb_is_refused_with_bounded_memory(make_file: MakeFile) -> None:  # R10
    import zlib

    size = 200 << 20
    element = b"\x09\x00\x10\x10OB\x00\x00" + size.to_bytes(4, "little")
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(element) + b"".join(packer.compress(bytes(1 << 20)) for _ in range(200))
    path = make_file("bomb.dcm", _deflated(body + packer.flush()))
    assert path.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        CorruptDicomError, match=r"bomb\.dcm: deflated data set expands beyond the limit"
    ):
        read(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # kB


def test_corrupt_deflate_stream_is_one_error(make_file: MakeFile) -> None:  # R11
    path = make_file("noise.dcm", _deflated(bytes(range(256)) * 2))
    with pytest.raises(CorruptDicomError, match=r"noise\.dcm: "):
        read(path)


def test_file_changed_while_being_read_is_refused(
    make_file: MakeFile, ct_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # R26
    path = make_file("moving.dcm", ct_small.read_bytes())
    real = pydicom.dcmread

    def rewritten_meanwhile(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        path.write_bytes(ct_small.read_bytes()[:-100])  # someone else's write lands
        return found

    monkeypatch.setattr(pydicom, "dcmread", rewritten_meanwhile)
    with pytest.raises(FileError, match=r"moving\.dcm: file changed while being read; try again$"):
        read(path)


# ---------------------------------------------------------------------------
# The in-memory read gives what the guarded read gives
# ---------------------------------------------------------------------------


_READ_OPTIONS = [
    {"stop_before_pixels": True, "decode": ()},
    {"defer_size": 16384, "decode": ()},
    {},
]


@pytest.mark.parametrize("options", _READ_OPTIONS, ids=["header", "deferred", "whole"])
def test_in_memory_read_equals_guarded_read_for_every_bundled_file(
    options: dict[str, object],
) -> None:
    files = sorted(bundled("CT_small.dcm").parent.rglob("*.dcm"))
    assert len(files) > 50
    for path in files:
        quick, guarded = read_both_ways(path, **options)
        assert quick == guarded, path.name


def test_in_memory_read_equals_guarded_read_on_scanner_data(shared_data: Path) -> None:
    files = sorted(p for p in shared_data.rglob("*") if p.is_file())[::3]
    for path in files:
        for options in _READ_OPTIONS[:2]:
            quick, guarded = read_both_ways(path, **options)
            assert quick == guarded, path


def test_header_beyond_the_in_memory_prefix_is_read_whole(tmp_path: Path, ct_small: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.add_new(0x00291005, "UT", "x" * (reading.files._IN_MEMORY + 1000))  # longer than the prefix
    ds.add_new(0x00291010, "LT", "after the long value")
    path = tmp_path / "long_header.dcm"
    ds.save_as(path)
    quick, guarded = read_both_ways(path, stop_before_pixels=True, decode=())
    assert quick == guarded
    assert read(path, stop_before_pixels=True)[0x00291010].value == "after the long value"


def test_headers_up_to_the_larger_prefix_are_parsed_in_memory(
    tmp_path: Path, ct_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded = reading.files._read_guarded
    calls: list[Path] = []

    def counted(file: Path, *args: object) -> object:
        calls.append(file)
        return guarded(file, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(reading.files, "_read_guarded", counted)
    for name, length in (("csa_sized", 200_000), ("huge", reading.files._IN_MEMORY_MOST + 10)):
        ds = pydicom.dcmread(ct_small)
        ds.add_new(0x00291020, "OB", b"\x01" * length)  # a header longer than the first prefix
        ds.add_new(0x00291030, "LT", "after the long value")
        ds.save_as(tmp_path / f"{name}.dcm")
        read_back = read(tmp_path / f"{name}.dcm", stop_before_pixels=True)
        assert read_back[0x00291030].value == "after the long value"
        assert read_back[0x00291020].value == b"\x01" * length
    assert calls == [tmp_path / "huge.dcm"]  # only the header past 4 MiB is read the guarded way


def test_elements_after_deferred_pixel_data_are_kept(tmp_path: Path, ct_small: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 16)  # Data Set Trailing Padding, after the pixels
    path = tmp_path / "trailing.dcm"
    ds.save_as(path)
    quick, guarded = read_both_ways(path, defer_size=1024, decode=())
    assert quick == guarded
    assert 0xFFFCFFFC in read(path, defer_size=1024, decode=())


def test_deferred_values_of_an_in_memory_read_come_from_the_file(ct_small: Path) -> None:
    ds = read(ct_small, defer_size=1024, decode=())
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None
    assert ds.PixelData == pydicom.dcmread(ct_small).PixelData


def _reference_files() -> list[Path]:
    folders = [bundled("CT_small.dcm").parent]
    try:
        import data_store

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for folder in folders for p in folder.glob("*.dcm"))


# Refusals listed in ../shared/RELIABILITY.md, as our messages word them.
REFUSALS = (
    "no file meta",
    "shorter than declared",
    "ends inside",
    "cut",
    "truncated",
    "not a DICOM file",
    "unknown VR",
    "zero bytes where data elements should be",
    "past the end",
)


def test_what_pydicom_reads_dicomlens_reads_with_the_same_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every file of pydicom's test files and pydicom-data that pydicom reads without
    force: read by dicomlens too (or refused for a listed reason), and every top-level
    element that pydicom decodes has the value pydicom gives, through dicomlens.get."""
    import pydicom

    import dicomlens as dl

    counts = {"files": 0, "read": 0, "refused": 0, "elements": 0, "kept as bytes": 0}
    for path in _reference_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theirs = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # pydicom does not read it: not ours to compare
                continue
            counts["files"] += 1
            try:
                ours = read(path, stop_before_pixels=True)
            except FileError as exc:
                assert any(reason in str(exc) for reason in REFUSALS), str(exc)
                assert str(exc).startswith(str(path))
                counts["refused"] += 1
                continue
            counts["read"] += 1
            for tag in theirs.keys():  # noqa: SIM118 (iterating a Dataset yields elements)
                try:
                    expected = theirs[tag].value
                except Exception:  # pydicom cannot decode it: we keep its bytes
                    assert ours[tag].VR == "UN" and isinstance(ours[tag].value, bytes)
                    counts["kept as bytes"] += 1
                    continue
                if theirs[tag].VR == "SQ" or tag >> 16 & 1:
                    assert ours[tag].value == expected, f"{path.name} {tag:08X}"
                else:
                    assert dl.get(ours, f"{tag:08X}") == expected, f"{path.name} {tag:08X}"
                counts["elements"] += 1
    with capsys.disabled():
        print("\n" + ", ".join(f"{value} {name}" for name, value in counts.items()))
    assert counts["read"] > 130 and counts["elements"] > 8_000


def test_salvage_reads_up_to_the_cut() -> None:
    """rtplan_truncated.dcm: BeamSequence declares 976 bytes, 711 remain. Refused by
    default; with salvage, every whole element before it, and where the cut is."""
    path = bundled("rtplan_truncated.dcm")
    with pytest.raises(CorruptDicomError, match="BeamSequence declares 976 bytes"):
        read(path)
    with pytest.warns(DicomlensWarning, match=r"salvaged 31 elements, the last ending at byte "
                      r"1410 of 2129; then truncated: \(300A,00B0\) BeamSequence"):  # fmt: skip
        ds = read(path, salvage=True)
    assert "BeamSequence" not in ds and ds.RTPlanLabel and ds.SOPInstanceUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom: implicit VR where explicit was expected
        whole = read(bundled("rtplan.dcm"))
    for element in ds:  # what was salvaged is what the complete plan holds
        assert whole[element.tag].value == element.value


def test_salvage_does_not_hide_other_damage(make_file: MakeFile, ct_small: Path) -> None:
    path = make_file("zz.dcm", _with_bad_vr(ct_small))
    with pytest.raises(CorruptDicomError, match="unknown VR"):
        read(path, salvage=True)
