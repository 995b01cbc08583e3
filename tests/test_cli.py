"""The command line, in process: exit codes, stdout and the exact stderr lines."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import bundled, truncate_inside
from pydicom.dataset import Dataset

from dicomlens.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def folder(tmp_path: Path, ct_small: Path) -> Path:
    """A small 'download': two good slices, a truncated one, a text file."""
    data = tmp_path / "dicom_data"
    data.mkdir()
    shutil.copy(ct_small, data / "1-001.dcm")
    shutil.copy(bundled("MR_small.dcm"), data / "1-002.dcm")
    (data / "1-003.dcm").write_bytes(ct_small.read_bytes()[:1000])
    (data / "README.txt").write_text("downloaded from somewhere\n" * 10)
    return data


# --- get -----------------------------------------------------------------------------


def test_get_as_pasted_from_a_dump(run: Run) -> None:
    path = bundled("examples_overlay.dcm")
    assert run("get", "(0028, 1050)", path) == (0, "450\\200\n", "")
    assert run("get", "WindowCenter[1]", path) == (0, "200\n", "")


def test_get_several_tags_one_file(run: Run, ct_small: Path) -> None:
    code, out, err = run(
        "get", "PatientName", ct_small, "-t", "Rows", "-t", "OtherPatientIDsSequence[*].PatientID"
    )
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "PatientName            Rows  OtherPatientIDsSequence[*].PatientID",
        "CompressedSamples^CT1  128   ABCD1234\\1234ABCD",
    ]


def test_get_folder_continues_past_bad_files(run: Run, folder: Path) -> None:
    code, out, err = run("get", "Modality", folder, "--format", "csv")
    assert code == 1
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["file", "Modality"],
        [str(folder / "1-001.dcm"), "CT"],
        [str(folder / "1-002.dcm"), "MR"],
    ]
    assert err.splitlines() == [
        f"dicomlens: error: {folder / '1-003.dcm'}: truncated: (0010,1002) OtherPatientIDsSequence "
        "declares 72 bytes but only 6 remain",
        "dicomlens: 2 files read, 1 failed, 1 non-DICOM skipped",
    ]


def test_get_json_and_missing_tags_are_empty(run: Run, folder: Path) -> None:
    code, out, _ = run(
        "get",
        "EchoTime",
        folder / "1-001.dcm",
        folder / "1-002.dcm",
        "-t",
        "Rows",
        "--format",
        "json",
    )
    assert code == 0
    rows = json.loads(out)
    assert [(r["EchoTime"], r["Rows"]) for r in rows] == [
        (None, 128),
        (pydicom.dcmread(folder / "1-002.dcm").EchoTime, 64),
    ]


def test_get_tsv_empty_for_missing(run: Run, folder: Path) -> None:
    code, out, _ = run(
        "get", "EchoTime", folder / "1-001.dcm", folder / "1-002.dcm", "--format", "tsv"
    )
    assert code == 0
    assert out.splitlines()[1] == f"{folder / '1-001.dcm'}\t"


def test_get_real_mr_values_match_pydicom(run: Run, shared_data: Path) -> None:
    files = sorted((shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag").glob("*.dcm"))[:5]
    assert len(files) == 5
    code, out, _ = run(
        "get", "ImagePositionPatient", *files, "-t", "InstanceNumber", "--format", "json"
    )
    assert code == 0
    for row, path in zip(json.loads(out), files, strict=True):
        ds = pydicom.dcmread(path)
        assert row["ImagePositionPatient"] == [float(v) for v in ds.ImagePositionPatient]
        assert row["InstanceNumber"] == int(ds.InstanceNumber)


# --- user errors: one line, right exit code ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "line"),
    [
        (
            ["get", "PatientNmae", "x.dcm"],
            2,
            "dicomlens: error: unknown tag 'PatientNmae'; did you mean (0010,0010) PatientName",
        ),
        (
            ["get", "(0019,xx0C)", "x.dcm"],
            2,
            "dicomlens: error: '(0019,xx0C)': a private element written (gggg,xxee) needs its "
            "creator",
        ),
        (
            ["show", "/no/such/file.dcm"],
            1,
            "dicomlens: error: /no/such/file.dcm: no such file or directory",
        ),
    ],
)
def test_user_errors_are_one_line(run: Run, argv: list[str], code: int, line: str) -> None:
    got, out, err = run(*argv)
    assert got == code and out == ""
    assert err.splitlines()[0].startswith(line)
    assert "Traceback" not in err


def test_bad_inputs_one_line_each(run: Run, tmp_path: Path, ct_small: Path) -> None:
    bad = {
        "text.dcm": b"hello" * 50,
        "empty.dcm": b"",
        "cut.dcm": ct_small.read_bytes()[:300],
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    code, out, err = run("show", *(tmp_path / n for n in bad), ct_small, tmp_path / "missing.dcm")
    assert code == 1
    assert f"== {ct_small} ==" in out and "PatientName" in out
    assert err.splitlines() == [
        f"dicomlens: error: {tmp_path / 'text.dcm'}: not a DICOM file (no DICM prefix at byte 128)",
        f"dicomlens: error: {tmp_path / 'empty.dcm'}: empty file (0 bytes)",
        f"dicomlens: error: {tmp_path / 'cut.dcm'}: "
        "truncated (file meta ends at byte 300, expected 336)",
        f"dicomlens: error: {tmp_path / 'missing.dcm'}: no such file or directory",
        "dicomlens: 1 file read, 4 failed",
    ]


def test_warning_is_one_line_and_exit_zero(run: Run, tmp_path: Path, ct_small: Path) -> None:
    (tmp_path / "pixels.dcm").write_bytes(ct_small.read_bytes()[:-5000])
    code, out, err = run("show", "-t", "PatientID", tmp_path / "pixels.dcm")
    assert (code, out.splitlines()[-1].split()) == (0, ["(0010,0020)", "PatientID", "LO", "1CT1"])
    assert (
        err == f"dicomlens: warning: {tmp_path / 'pixels.dcm'}: "
        "Pixel Data shorter than declared (27906 of 32768 bytes)\n"
    )


def test_folder_without_dicom(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 200)
    code, _, err = run("get", "Rows", tmp_path)
    assert code == 1 and err.endswith(f"dicomlens: error: {tmp_path}: no DICOM files found\n")


def test_argparse_usage_errors_exit_2(run: Run) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["show"])
    assert caught.value.code == 2


# --- show --------------------------------------------------------------------------


def test_show_file_meta_first(run: Run, ct_small: Path) -> None:
    code, out, err = run("show", ct_small)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "# File meta information" and "# Data set" in lines
    assert any(line.startswith("(0010,1002) OtherPatientIDsSequence") for line in lines)


def test_show_filters(run: Run, ct_small: Path) -> None:
    _, out, _ = run("show", ct_small, "-t", "(0028,0010)", "-t", "Columns", "--no-private")
    assert out.splitlines() == [
        "# Data set",
        "(0028,0010) Rows                                    US  128",
        "(0028,0011) Columns                                 US  128",
    ]
    _, out, _ = run("show", ct_small, "--grep", "bowtie")
    assert out.splitlines()[-1].endswith("SH  LARGE BOWTIE FIL")
    _, out, _ = run("show", ct_small, "--mask", "--grep", "patientname")
    assert out.splitlines()[-1].endswith("PN  ***")


def test_show_json_loads_back(run: Run, ct_small: Path) -> None:
    code, out, _ = run("show", "--json", ct_small)
    assert code == 0
    model = json.loads(out)
    assert model["path"] == str(ct_small)
    back = Dataset.from_json(model["dataset"])
    ds = pydicom.dcmread(ct_small)
    del ds.PixelData
    assert (
        back.PatientName == ds.PatientName and back.ImagePositionPatient == ds.ImagePositionPatient
    )
    assert Dataset.from_json(model["file_meta"]).TransferSyntaxUID == ds.file_meta.TransferSyntaxUID


def test_show_json_many_files_is_a_list(run: Run, folder: Path) -> None:
    code, out, _ = run("show", "--json", folder)
    assert code == 1
    assert [Path(m["path"]).name for m in json.loads(out)] == ["1-001.dcm", "1-002.dcm"]


def test_show_enhanced_multiframe(run: Run, shared_data: Path) -> None:
    code, out, _ = run(
        "show",
        shared_data / "dcm_qa_enh/In/Siemens/XA10/6_1.dcm",
        "--depth",
        "1",
        "--grep",
        "PerFrame",
    )
    assert code == 0
    assert out.splitlines()[1].startswith("(5200,9230) PerFrameFunctionalGroupsSequence")


# --- tag, find, diff ------------------------------------------------------------------


def test_tag_search(run: Run) -> None:
    code, out, _ = run("tag", "window center", "--limit", "2", "--no-private")
    assert code == 0
    assert out.splitlines()[1].split() == [
        "(0028,1050)",
        "WindowCenter",
        "Window",
        "Center",
        "DS",
        "1-n",
    ]
    _, out, _ = run("tag", "ImagePosition", "--json", "--limit", "2")
    rows = json.loads(out)
    assert [(r["keyword"], r["retired"]) for r in rows] == [
        ("ImagePosition", True),
        ("ImagePositionPatient", False),
    ]


def test_tag_in_file(run: Run, ct_small: Path) -> None:
    code, out, _ = run("tag", "PatientID", "--in", ct_small, "--limit", "1")
    assert code == 0
    assert out.splitlines()[-1] == (
        f"(0010,0020) PatientID in {ct_small}: PatientID, OtherPatientIDsSequence[0].PatientID, "
        "OtherPatientIDsSequence[1].PatientID"
    )


def test_find(run: Run, ct_small: Path) -> None:
    code, out, _ = run("find", "PatientID", ct_small, "--json")
    assert code == 0
    assert [(r["path"], r["value"]) for r in json.loads(out)] == [
        ("PatientID", "1CT1"),
        ("OtherPatientIDsSequence[0].PatientID", "ABCD1234"),
        ("OtherPatientIDsSequence[1].PatientID", "1234ABCD"),
    ]
    code, _, err = run("find", ct_small, "PatientID")  # the other way round
    assert code == 2 and err == (
        f"dicomlens: error: {str(ct_small)!r} is a file or folder, not a tag: the tag comes "
        "first, as in dicomlens find TAG PATH\n"
    )


def test_diff_exit_codes(run: Run, ct_small: Path, tmp_path: Path) -> None:
    assert run("diff", ct_small, ct_small) == (0, "", "")
    ds = pydicom.dcmread(ct_small)
    ds.PatientName = "B"
    ds.save_as(tmp_path / "b.dcm")
    code, out, _ = run("diff", ct_small, tmp_path / "b.dcm")
    assert (code, out) == (1, "~ PatientName: CompressedSamples^CT1 -> B\n")
    code, _, err = run("diff", ct_small, tmp_path / "nope.dcm")
    assert (
        code == 2
        and err == f"dicomlens: error: {tmp_path / 'nope.dcm'}: no such file or directory\n"
    )


def test_diff_folders(run: Run, folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    shutil.copytree(folder, other)
    (other / "1-003.dcm").unlink()
    code, _, err = run("diff", folder, other)
    assert code == 2  # the truncated file in A is trouble
    assert err.splitlines()[-1] == "2 matched, 0 different, 0 only in A, 0 only in B, 1 failed"
    (folder / "1-003.dcm").unlink()
    assert run("diff", folder, other)[0] == 0


# --- process-level smoke tests --------------------------------------------------------


def test_python_dash_m(ct_small: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dicomlens", "get", "Modality", str(ct_small)],
        capture_output=True,
        text=True,
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "CT\n", "")


def test_broken_pipe_is_quiet(ct_small: Path) -> None:
    script = f"{sys.executable} -m dicomlens show {ct_small} | head -1"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert out.stdout == "# File meta information\n"
    assert out.stderr == ""


# --- series, volume, render -----------------------------------------------------------


def test_series_table(run: Run, make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(6, missing=(2,))
    code, out, err = run("series", folder)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split()[:3] == ["#", "DESCRIPTION", "MODALITY"]
    assert row.split() == ["1", "CT", "5", "128x128x5", "3-D", "0.6615x0.6615x2.5", "axial", "gap"]


def test_series_json(run: Run, make_ct_series: Callable[..., Path]) -> None:
    code, out, _ = run("series", "--json", make_ct_series(4, tilt=5.0))
    (series,) = json.loads(out)
    assert code == 0 and series["geometry"]["tilt_degrees"] == pytest.approx(5.0, abs=0.1)
    assert series["verdict"] == "tilt"


def test_volume_writes_nifti_and_sidecar(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    out_path = tmp_path / "out" / "ct.nii.gz"
    code, out, err = run("volume", make_ct_series(4), "-o", out_path)
    assert code == 0 and err == ""
    assert (
        out == f"{out_path}: 128x128x4 int16, geometry ok; sidecar {tmp_path / 'out' / 'ct.json'}\n"
    )
    assert json.loads((tmp_path / "out" / "ct.json").read_text())["shape"] == [128, 128, 4]


def test_volume_needs_a_choice_between_series(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    make_ct_series(3, folder="a")
    make_ct_series(3, folder="b", seed=3)
    code, _, err = run("volume", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "v.npz")
    assert code == 1
    assert err.startswith("dicomlens: error: 2 series found, choose one with --series: 1 '' (")
    assert not (tmp_path / "v.npz").exists()


def test_volume_bad_output_name(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    code, _, err = run("volume", make_ct_series(2), "-o", tmp_path / "v.txt")
    assert code == 2 and "the output must end with one of .nii.gz, .nii, .npz, .npy" in err


def test_render_and_its_errors(run: Run, ct_small: Path, tmp_path: Path) -> None:
    code, out, _ = run("render", ct_small, "--window", "40,400", "-o", tmp_path / "ct.png")
    assert code == 0 and out.startswith(f"{tmp_path / 'ct.png'}: 1 slice of series 1")
    from PIL import Image

    with Image.open(tmp_path / "ct.png") as picture:
        assert picture.size == (128, 128)
    assert run("render", ct_small, "--window", "40", "-o", tmp_path / "x.png")[2] == (
        "dicomlens: error: --window '40': expected CENTER,WIDTH such as 40,400\n"
    )
    code, _, err = run("render", ct_small, "--preset", "nothing", "-o", tmp_path / "x.png")
    assert code == 2 and err.startswith(
        "dicomlens: error: unknown preset 'nothing'; choose from abdomen"
    )


def test_render_of_a_file_whose_frame_count_is_not_a_number(run: Run, tmp_path: Path) -> None:
    # badVR.dcm: NumberOfFrames (IS) is '1A'
    code, _, err = run("render", bundled("badVR.dcm"), "-o", tmp_path / "x.png")
    lines = [line for line in err.splitlines() if "warning" not in line]
    assert code == 1 and lines == [
        f"dicomlens: error: {bundled('badVR.dcm')}: cannot decode pixel data "
        "(image size unknown: invalid literal for int() with base 10: '1A')"
    ]
    assert not (tmp_path / "x.png").exists()


def test_render_montage(run: Run, make_ct_series: Callable[..., Path], tmp_path: Path) -> None:
    code, out, _ = run(
        "render", make_ct_series(5), "--montage", "--preset", "bone", "-o", tmp_path / "m.png"
    )
    assert code == 0 and "5 slices" in out
    from PIL import Image

    with Image.open(tmp_path / "m.png") as picture:
        assert picture.size == (3 * 128, 2 * 128)


# --- edit ---------------------------------------------------------------------------


def test_edit_batch_reports_each_failure(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_ct_series(3)
    victim = sorted(folder.glob("*.dcm"))[0]
    truncate_inside(victim)
    code, out, err = run("edit", folder, "--set", "PatientName=Edited", "-o", tmp_path / "out")
    assert code == 1
    assert len(out.splitlines()) == 2 and all(
        "changed 1 element(s)" in line for line in out.splitlines()
    )
    lines = err.splitlines()
    assert lines[0].startswith(f"dicomlens: error: {victim}: truncated")
    assert lines[-1] == "dicomlens: 2 edited, 1 failed"


def test_edit_dry_run_prints_the_diff(run: Run, ct_small: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "edit", ct_small, "--set", "PatientName=Dry", "--delete", "PatientID", "--dry-run"
    )
    assert code == 0
    assert out.splitlines() == [
        f"{ct_small}: would change 2 element(s)",
        "  ~ PatientName: CompressedSamples^CT1 -> Dry",
        "  - PatientID: 1CT1",
    ]
    assert err == "dicomlens: 1 edited (dry run: nothing written)\n"


def test_edit_usage_errors(run: Run, ct_small: Path) -> None:
    code, _, err = run("edit", ct_small, "--set", "PatientName=X")
    assert code == 2 and "choose where the results go" in err
    code, _, err = run("edit", ct_small, "--set", "PatientNmae=X", "--in-place")
    assert code == 2 and "did you mean (0010,0010) PatientName" in err


def test_volume_stops_at_an_unreadable_file_unless_skip_bad(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:  # V4
    folder = make_ct_series(5)
    victim = sorted(folder.glob("*.dcm"))[1]
    truncate_inside(victim)
    code, _, err = run("volume", folder, "-o", tmp_path / "v.npz")
    assert code == 1 and not (tmp_path / "v.npz").exists()
    assert err.splitlines()[0].startswith(f"dicomlens: error: {victim}: truncated")
    assert "pass --skip-bad to go on without them" in err.splitlines()[1]
    code, out, _ = run("volume", folder, "-o", tmp_path / "v.npz", "--skip-bad")
    assert code == 1 and out.startswith(f"{tmp_path / 'v.npz'}: 128x128x")


def test_get_over_a_large_folder_uses_workers_and_keeps_order(
    run: Run, make_ct_series: Callable[..., Path]
) -> None:
    folder = make_ct_series(70)  # above the size where reads go to a process pool
    truncate_inside(sorted(folder.glob("*.dcm"))[5])
    code, out, err = run("get", "InstanceNumber", folder, "--format", "json")
    rows = json.loads(out)
    assert code == 1 and len(rows) == 69 and err.endswith("dicomlens: 69 files read, 1 failed\n")
    files = [Path(row["file"]) for row in rows]
    assert files == sorted(files)
    assert all(
        row["InstanceNumber"] == pydicom.dcmread(f).InstanceNumber
        for row, f in zip(rows, files, strict=True)
    )


def test_executable_preamble_is_flagged(run: Run, ct_small: Path, tmp_path: Path) -> None:  # R20
    data = bytearray(ct_small.read_bytes())
    data[:4] = b"\x7fELF"
    (tmp_path / "elf.dcm").write_bytes(bytes(data))
    code, out, err = run("get", "Modality", tmp_path / "elf.dcm")
    assert (code, out) == (0, "CT\n")
    assert err == (
        f"dicomlens: warning: {tmp_path / 'elf.dcm'}: the preamble holds an executable signature "
        "(CVE-2019-11687)\n"
    )


def test_show_names_and_grep_by_name(run: Run, ct_small: Path) -> None:
    code, out, _ = run("show", "--names", "--grep", "patient's name", ct_small)
    assert code == 0
    assert out.splitlines()[1].startswith("(0010,0010) Patient's Name ")
    code, out, _ = run("show", "--grep", "Patient's Name", ct_small)  # keywords shown, names found
    assert code == 0 and out.splitlines()[1].startswith("(0010,0010) PatientName ")
    code, out, _ = run("show", "--names", "-t", "(0028,0030)", ct_small)
    assert "Pixel Spacing" in out and "PixelSpacing" not in out


def test_get_takes_several_tags_in_a_row(run: Run, ct_small: Path) -> None:
    code, out, err = run("get", "ImagePositionPatient", "SliceLocation", "Rows", ct_small)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == ["ImagePositionPatient", "SliceLocation", "Rows"]
    assert row.split() == ["-158.135803\\-179.035797\\-75.699997", "-77.2040634155", "128"]
    code, _, err = run("get", "ImagePositionPatient", "SliceLoc", ct_small)
    assert code == 2 and "did you mean (0020,1041) SliceLocation" in err
    code, _, err = run("get", "PatientName", "missing.dcm", ct_small)
    assert code == 1 and "missing.dcm: no such file or directory" in err


def test_get_takes_several_private_tags_in_a_row(run: Run, ct_small: Path) -> None:
    """A private tag's [CREATOR] looks like a glob pattern: it is a tag all the same
    (when no file matches it), wherever it comes in the row of tags."""
    creator = "(0043,xx{:02X})[GEMS_PARM_01]"
    tags = [creator.format(0x10), "Rows", creator.format(0x11)]
    code, out, err = run("get", *tags, ct_small)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == tags
    assert row.split() == ["400", "128", "10431"]


def test_show_salvage(run: Run) -> None:
    from conftest import bundled

    path = bundled("rtplan_truncated.dcm")
    code, _, err = run("show", path)
    assert code == 1 and "BeamSequence declares 976 bytes but only 711 remain" in err
    code, out, err = run("show", "--salvage", path)
    assert code == 0 and "RTPlanLabel" in out and "(300A,00B0)" not in out
    assert err.startswith(f"dicomlens: warning: {path}: salvaged 31 elements")


def test_default_catalog_is_never_created_inside_the_indexed_folder(
    run: Run,
    ct_small: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "ct.dcm").write_bytes(ct_small.read_bytes())
    monkeypatch.chdir(archive)
    monkeypatch.delenv("DICOMLENS_CATALOG", raising=False)
    code, _, err = run("index", ".")
    assert code == 2 and "would be created inside ., which is being indexed" in err
    assert not list(archive.glob("dicomlens-catalog.db*"))
    code, _, err = run("index", ".", "--catalog-inside")
    assert code == 0 and f"dicomlens: {archive / 'dicomlens-catalog.db'}: read 1 file" in err
    for file in archive.glob("dicomlens-catalog.db*"):
        file.unlink()
    monkeypatch.chdir(tmp_path)  # the default, outside the archive: said where it is
    code, _, err = run("index", "archive")
    assert code == 0 and f"dicomlens: {tmp_path / 'dicomlens-catalog.db'}: read 1 file" in err
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    out = capsys.readouterr().out
    assert "dicomlens-catalog.db in the current folder" in " ".join(out.split())


def test_view_with_a_folder_that_is_not_ohif_says_so_before_indexing(
    run: Run, tmp_path: Path, ct_small: Path
) -> None:
    catalog = tmp_path / "catalog.db"
    code, _, err = run("view", ct_small, "--catalog", catalog, "--ohif", tmp_path, "--no-browser")
    assert code == 2
    assert err == (
        f"dicomlens: error: {tmp_path}: not an OHIF Viewer build (no index.html); give the "
        "dist folder of `npm pack @ohif/app` or of an OHIF release\n"
    )
    assert not catalog.exists()


def test_volume_chooses_a_part_of_a_split_series(
    run: Run, make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    """A series split in parts (here one slice of another pixel spacing) keeps its number
    and UID: --series N:P picks a part, --series N says which parts there are, and
    without --series the largest part is taken, said in a note."""
    folder = make_ct_series(4)
    odd = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(odd)
    ds.PixelSpacing = [0.5, 0.5]
    ds.save_as(odd)
    code, _, err = run("volume", folder, "-o", tmp_path / "v.npz")
    assert code == 0 and "series 1 is split by pixel spacing; part 1:" in err
    assert np.load(tmp_path / "v.npz")["array"].shape[2] == 3  # the three regular slices
    code, _, err = run("volume", folder, "--series", "1", "-o", tmp_path / "v.npz")
    assert code == 1 and "series 1 is split in 2 parts: choose one of 1:1, 1:2" in err
    shapes = []
    for part in ("1:1", "1:2"):
        target = tmp_path / f"part{part[-1]}.npz"
        code, _, err = run("volume", folder, "--series", part, "-o", target)
        assert code == 0, err
        shapes.append(np.load(target)["array"].shape)
    assert sorted(shapes) == [(128, 128, 1), (128, 128, 3)]
    code, _, err = run("volume", folder, "--series", "1:3", "-o", tmp_path / "v.npz")
    assert code == 1 and "no single series '1:3' (series here: 1:1, 1:2)" in err
