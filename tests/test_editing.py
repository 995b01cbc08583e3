"""Editing: values, round trips, safe writes and batch rules (RELIABILITY W1-W18)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from conftest import TEST_FILES, bundled, readable, shared_data_root, truncate_inside
from pydicom.dataset import Dataset

from dicomlens.editing import Edit, apply_edits, edit, remove_stale_temporaries
from dicomlens.errors import EditError, FileError, UsageError
from dicomlens.reading import read


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# MR_truncated.dcm has short pixel data, which edit refuses (tested below).
ROUND_TRIP_FILES = readable(
    sorted(TEST_FILES.glob("*.dcm")) + sorted(shared_data_root().glob("*/In/**/*.dcm")),
    skip=frozenset({"MR_truncated.dcm"}),
)


@pytest.mark.parametrize("path", ROUND_TRIP_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_round_trip_keeps_everything_else(path: Path, tmp_path: Path) -> None:  # W18
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some test files hold odd values on purpose
        (result,) = edit([path], set=["ImageComments=edited by dicomlens"], out=tmp_path)
        assert result.error is None, result.error
        before, after = read(path), read(tmp_path / path.name)
    assert after.ImageComments == "edited by dicomlens"
    syntax = "TransferSyntaxUID"
    assert after.file_meta.get(syntax) == before.file_meta.get(syntax)
    for element in before:
        if element.tag == 0x00204000 or element.tag.element == 0:
            continue  # the edited element; group lengths are retired and dropped (documented)
        assert after[element.tag] == element, element.tag
    assert set(after.keys()) - set(before.keys()) <= {0x00204000}
    if "PixelData" in before:
        assert after.PixelData == before.PixelData


def test_values_are_checked_against_their_vr() -> None:  # W10
    ds = read(bundled("CT_small.dcm"))
    cases = {
        "StudyDate=2024-13-45": "Invalid value for VR DA",
        "StudyDate=20241345": "Invalid value for VR DA",
        "StudyDate=20240230": "is not a calendar date",
        "PatientID=" + "x" * 70: "exceeds the maximum length of 64 allowed for VR LO",
        "SOPInstanceUID=1.2.abc": "Invalid value for VR UI",
        "Rows=many": "US needs a number",
        "PixelData=00": "a OW value cannot be given as text",
    }
    for text, message in cases.items():
        with pytest.raises(EditError, match=message):
            apply_edits(ds, [Edit.parse("set", text)])
    with pytest.warns(UserWarning, match="Invalid value for VR DA"):
        apply_edits(ds, [Edit.parse("set", "StudyDate=20241345")], allow_invalid=True)
    assert ds.StudyDate == "20241345"


def test_sequences_private_tags_and_deletes() -> None:
    ds = read(bundled("CT_small.dcm"))
    changes = apply_edits(
        ds,
        [
            Edit.parse("add", "ReferencedImageSequence[1].ReferencedSOPInstanceUID=1.2.3"),
            Edit.parse("add", "(0011,xx01)[ACME 1.0][LO]=MRN-123"),
            Edit.parse("delete", "OtherPatientIDsSequence[0]"),
            Edit.parse("delete", "ImageType[2]"),
            Edit.parse("set", "OtherPatientIDsSequence[*].TypeOfPatientID=RFID"),
        ],
    )
    assert [str(c) for c in changes] == [
        "+ ReferencedImageSequence[1].ReferencedSOPInstanceUID: 1.2.3",
        "+ (0011,xx01)[ACME 1.0]: MRN-123",
        "~ OtherPatientIDsSequence: <2 items> -> <1 items>",
        "~ ImageType: ORIGINAL\\PRIMARY\\AXIAL -> ORIGINAL\\PRIMARY",
        "~ OtherPatientIDsSequence[0].TypeOfPatientID: TEXT -> RFID",
    ]
    assert len(ds.ReferencedImageSequence) == 2
    assert ds.private_block(0x0011, "ACME 1.0")[0x01].VR == "LO"
    with pytest.raises(EditError, match="private element of unknown VR"):
        apply_edits(ds, [Edit.parse("add", "(0013,xx01)[OTHER]=x")])
    with pytest.raises(EditError, match="no such element"):
        apply_edits(
            ds, [Edit.parse("set", "ReferencedImageSequence[9].ReferencedSOPInstanceUID=1")]
        )


def test_sop_instance_uid_keeps_file_meta_in_sync(ct_small: Path, tmp_path: Path) -> None:  # W14
    edit([ct_small], set=["SOPInstanceUID=1.2.826.0.1.3680043.2.1125.1"], out=tmp_path)
    ds = pydicom.dcmread(tmp_path / ct_small.name)
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.826.0.1.3680043.2.1125.1"


def test_non_ascii_gets_a_character_set(tmp_path: Path) -> None:  # W13
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    del ds.SpecificCharacterSet
    ds.save_as(tmp_path / "plain.dcm")
    edit([tmp_path / "plain.dcm"], set=["PatientName=Müller^Jürgen"], in_place=True)
    again = pydicom.dcmread(tmp_path / "plain.dcm")
    assert again.SpecificCharacterSet == "ISO_IR 192" and again.PatientName == "Müller^Jürgen"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm"])
def test_private_elements_survive_later_edits(name: str, tmp_path: Path) -> None:  # W11
    path = bundled(name)
    edit([path], add=["(0011,xx01)[ACME 1.0][LO]=kept"], out=tmp_path)
    edit([tmp_path / name], set=["ImageComments=second pass"], in_place=True)
    again = read(tmp_path / name)
    assert again.file_meta.TransferSyntaxUID == read(path).file_meta.TransferSyntaxUID
    element = again.private_block(0x0011, "ACME 1.0")[0x01]
    if again.file_meta.TransferSyntaxUID.is_implicit_VR:
        assert (element.VR, element.value) == ("UN", b"kept")  # implicit VR stores no VR
    else:
        assert (element.VR, element.value) == ("LO", "kept")


def test_deflated_file_stays_deflated(tmp_path: Path) -> None:  # W15
    path = bundled("image_dfl.dcm")
    edit([path], set=["PatientName=Deflated^Again"], out=tmp_path)
    again = read(tmp_path / path.name)
    assert again.file_meta.TransferSyntaxUID.is_deflated and again.PatientName == "Deflated^Again"


def test_encapsulated_pixels_are_kept_byte_for_byte(tmp_path: Path) -> None:
    path = bundled("JPEG2000.dcm")
    edit([path], set=["PatientName=J2K"], out=tmp_path)
    assert read(tmp_path / path.name).PixelData == read(path).PixelData


def test_executable_preamble_is_zeroed(ct_small: Path, tmp_path: Path) -> None:  # R20
    data = bytearray(ct_small.read_bytes())
    data[:4] = b"MZ\x90\x00"
    (tmp_path / "pe.dcm").write_bytes(bytes(data))
    with pytest.warns(Warning, match="preamble holds an executable signature"):
        edit([tmp_path / "pe.dcm"], set=["PatientName=X"], in_place=True)
    assert (tmp_path / "pe.dcm").read_bytes()[:128] == bytes(128)


def test_invalid_value_leaves_the_original_byte_identical(ct_small: Path, tmp_path: Path) -> None:
    target = tmp_path / "ct.dcm"
    target.write_bytes(ct_small.read_bytes())
    (result,) = edit([target], set=["StudyDate=2024-99-99"], in_place=True)
    assert isinstance(result.error, EditError) and str(result.error).startswith(
        f"{target}: StudyDate"
    )
    assert target.read_bytes() == ct_small.read_bytes()
    assert os.listdir(tmp_path) == ["ct.dcm"]


def test_dry_run_writes_nothing(make_ct_series: Callable[..., Path], tmp_path: Path) -> None:
    folder = make_ct_series(4)
    before = _hashes(tmp_path)
    results = edit([folder], set=["PatientName=Dry^Run"], dry_run=True, in_place=True)
    assert [len(r.changes) for r in results] == [1, 1, 1, 1]
    assert _hashes(tmp_path) == before


def test_batch_continues_past_bad_files(
    make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:  # W9
    folder = make_ct_series(5)
    victim = sorted(folder.glob("*.dcm"))[2]
    truncate_inside(victim)
    (folder / "notes.txt").write_text("a text file among the images")
    results = edit([folder], set=["PatientName=Batch"], out=tmp_path / "out")
    failed = [r for r in results if r.error is not None]
    assert [r.source for r in failed] == [victim]
    assert len([r for r in results if r.changes]) == 4
    assert [r.skipped for r in results if r.source.name == "notes.txt"] == ["not a DICOM file"]
    with pytest.raises(FileError):
        edit([folder], set=["PatientName=Batch"], out=tmp_path / "again", fail_fast=True)


def test_output_mirrors_tree_and_refuses_collisions(ct_small: Path, tmp_path: Path) -> None:  # W16
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "in" / "a" / "1.dcm").write_bytes(ct_small.read_bytes())
    edit([tmp_path / "in"], set=["PatientName=One"], out=tmp_path / "out")
    assert (tmp_path / "out" / "a" / "1.dcm").is_file()
    (result,) = edit([tmp_path / "in"], set=["PatientName=Two"], out=tmp_path / "out")
    assert "output exists (use --overwrite)" in str(result.error)
    (result,) = edit(
        [tmp_path / "in"], set=["PatientName=Two"], out=tmp_path / "out", overwrite=True
    )
    assert result.error is None and read(tmp_path / "out" / "a" / "1.dcm").PatientName == "Two"


def test_output_inside_input_is_not_edited_again(ct_small: Path, tmp_path: Path) -> None:  # W17
    (tmp_path / "1.dcm").write_bytes(ct_small.read_bytes())
    edit([tmp_path], set=["PatientName=Once"], out=tmp_path / "out")
    results = edit([tmp_path], set=["PatientName=Twice"], out=tmp_path / "out", overwrite=True)
    assert [r.source.name for r in results] == ["1.dcm"]


def test_where_backup_and_symlink(ct_small: Path, tmp_path: Path) -> None:  # W6
    real = tmp_path / "real.dcm"
    real.write_bytes(ct_small.read_bytes())
    real.chmod(0o640)
    link = tmp_path / "link.dcm"
    link.symlink_to(real)
    (skipped,) = edit([link], set=["PatientName=X"], where=["Modality=MR"], in_place=True)
    assert skipped.skipped == "does not match --where"
    (done,) = edit([link], set=["PatientName=X"], where=["Modality=CT"], in_place=True, backup=True)
    assert done.target == real and link.is_symlink()
    assert (
        read(link).PatientName == "X"
        and (tmp_path / "real.dcm.bak").read_bytes() == ct_small.read_bytes()
    )
    assert real.stat().st_mode & 0o777 == 0o640  # W7


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="an output folder"):
        edit(["x.dcm"], set=["PatientName=X"])
    with pytest.raises(UsageError, match="nothing to do"):
        edit(["x.dcm"], in_place=True)
    with pytest.raises(UsageError, match="expected TAG=VALUE"):
        edit(["x.dcm"], set=["PatientName"], in_place=True)


_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from dicomlens.editing import edit
(result,) = edit([sys.argv[1]], set=["PatientName=Full^Disk"], in_place=True)
print(result.error)
"""


def test_disk_full_leaves_the_original(ct_small: Path, tmp_path: Path) -> None:  # W1
    target = tmp_path / "ct.dcm"
    target.write_bytes(ct_small.read_bytes())  # 39 kB: the limit stops the write half way
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(target)], capture_output=True, text=True
    )
    assert "cannot write" in out.stdout and "File too large" in out.stdout
    assert target.read_bytes() == ct_small.read_bytes()
    assert os.listdir(tmp_path) == ["ct.dcm"]


def test_writes_are_synced_before_the_rename(
    ct_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # W3
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    target = tmp_path / "ct.dcm"
    target.write_bytes(ct_small.read_bytes())
    edit([target], set=["PatientName=Synced"], in_place=True)
    assert calls == ["fsync", "replace", "fsync"]


_KILLED_BATCH = """
import sys
from dicomlens.editing import edit
edit([sys.argv[1]], set=["PatientName=New^Version"], in_place=True)
"""


def test_sigkill_leaves_every_file_old_or_new(make_ct_series: Callable[..., Path]) -> None:  # W2
    """Killed at random moments, a batch leaves each file old or new; the temporary
    file it was writing stays hidden (walks skip it) until the next run removes it."""
    folder = make_ct_series(30)
    old = _hashes(folder)
    rng = random.Random(3)
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", _KILLED_BATCH, str(folder)])
        time.sleep(rng.uniform(0.3, 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        for name, digest in _hashes(folder).items():
            if name.startswith(".") and ".tmp." in name and f".{os.getpid()}.tmp." not in name:
                continue  # what the killed run (or one of its worker processes) was writing
            assert name in old, f"stray file {name}"
            if digest != old[name]:
                assert read(folder / name).PatientName == "New^Version"
    results = edit([folder], set=["PatientName=New^Version"], in_place=True)
    assert all(r.error is None for r in results) and len(results) == 30
    assert sorted(_hashes(folder)) == sorted(old)  # the killed runs' temporaries removed
    assert {str(read(p).PatientName) for p in folder.iterdir()} == {"New^Version"}


def test_only_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:  # W2
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [f".abc123.{dead.pid}.tmp.a.dcm", f".def456.{os.getpid()}.tmp.b.dcm",
             ".hidden.dcm", "c.dcm", f"x.{dead.pid}.tmp.c.dcm"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    remove_stale_temporaries([tmp_path, tmp_path / "missing"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


_EDITOR = """
import sys
from dicomlens.editing import edit
for n in range(int(sys.argv[3])):
    (result,) = edit([sys.argv[1]], set=[f"{sys.argv[2]}={n}"], in_place=True)
    if result.error is not None:
        print("refused")
"""


def test_two_editors_never_lose_an_update(ct_small: Path, tmp_path: Path) -> None:  # W8
    target = tmp_path / "shared.dcm"
    target.write_bytes(ct_small.read_bytes())
    runs = 15
    editors = [
        subprocess.Popen(
            [sys.executable, "-c", _EDITOR, str(target), tag, str(runs)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("SeriesNumber", "AcquisitionNumber")
    ]
    refused = [editor.communicate()[0].count("refused") for editor in editors]
    final = read(target)
    # Every run either landed or was refused loudly; the last one of each editor that
    # landed is visible, and the file is whole.
    assert final.SeriesNumber in range(runs) and final.AcquisitionNumber in range(runs)
    assert sum(refused) < 2 * runs
    assert isinstance(final, Dataset) and final.PixelData == read(ct_small).PixelData


def test_transfer_syntax_relabel_is_refused(tmp_path: Path) -> None:  # W12
    path = bundled("JPEG2000.dcm")
    (result,) = edit([path], set=["TransferSyntaxUID=1.2.840.10008.1.2.1"], out=tmp_path)
    assert "changing it needs transcoding" in str(result.error)
    assert not (tmp_path / path.name).exists()


def test_odd_length_values_are_padded(ct_small: Path, tmp_path: Path) -> None:  # R18
    edit([ct_small], set=["PatientName=ODD"], out=tmp_path)
    raw = pydicom.dcmread(tmp_path / ct_small.name).get_item(0x00100010)
    assert raw.length % 2 == 0 and raw.value == b"ODD "


def test_hard_links_are_warned_about(ct_small: Path, tmp_path: Path) -> None:  # W6
    target = tmp_path / "a.dcm"
    target.write_bytes(ct_small.read_bytes())
    os.link(target, tmp_path / "b.dcm")
    with pytest.warns(Warning, match="1 other hard link"):
        edit([target], set=["PatientName=Linked"], in_place=True)
    assert read(tmp_path / "b.dcm").PatientName == "CompressedSamples^CT1"


def test_unwritable_output_fails_per_file_and_keeps_going(
    ct_small: Path, tmp_path: Path
) -> None:  # W5
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    results = edit([ct_small, bundled("MR_small.dcm")], set=["PatientName=X"], out=blocker / "out")
    assert [type(r.error).__name__ for r in results] == ["WriteError", "WriteError"]
    assert all("cannot write" in str(r.error) for r in results)


def _big_slice(ct_small: Path, folder: Path) -> Path:
    """CT_small upsampled to 512x512 (about 0.5 MiB), for filling small disks."""
    import numpy as np

    ds = pydicom.dcmread(ct_small)
    pixels = np.kron(ds.pixel_array, np.ones((4, 4), dtype=ds.pixel_array.dtype))
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds.save_as(folder / "big.dcm")
    return folder / "big.dcm"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_tmpfs_leaves_the_original(ct_small: Path, tmp_path: Path) -> None:  # W1
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        original = _big_slice(ct_small, tmp_path)
        target = disk / "big.dcm"
        target.write_bytes(original.read_bytes())
        (result,) = edit([target], set=["PatientName=No^Space"], in_place=True)
        assert "No space left on device" in str(result.error)
        assert target.read_bytes() == original.read_bytes()
        assert os.listdir(disk) == ["big.dcm"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


_AS_NOBODY = """
import sys
from dicomlens.cli import main
sys.exit(main(["edit", sys.argv[1], "--set", "PatientName=Nobody", "--in-place"]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_read_only_folder_as_an_unprivileged_user(ct_small: Path) -> None:  # W5
    import shutil
    import tempfile

    setpriv = shutil.which("setpriv")
    folder = Path(tempfile.mkdtemp(prefix="dicomlens-ro-"))
    try:
        folder.chmod(0o755)  # others may read and enter, not write
        target = folder / "ct.dcm"
        target.write_bytes(ct_small.read_bytes())
        target.chmod(0o644)
        nobody = [setpriv or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run(
            [*nobody, sys.executable, "-c", "import dicomlens"], capture_output=True
        )
        if setpriv is None or probe.returncode != 0:
            pytest.skip("cannot run this interpreter as an unprivileged user here")
        out = subprocess.run(
            [*nobody, sys.executable, "-c", _AS_NOBODY, str(target)], capture_output=True, text=True
        )
        assert out.returncode == 1
        assert (
            out.stderr.splitlines()[0]
            == f"dicomlens: error: {target}: cannot write (Permission denied)"
        )
        assert "Traceback" not in out.stderr
        assert target.read_bytes() == ct_small.read_bytes() and os.listdir(folder) == ["ct.dcm"]
    finally:
        shutil.rmtree(folder)


def test_short_pixel_data_is_not_written_back(ct_small: Path, tmp_path: Path) -> None:  # R7
    (tmp_path / "short.dcm").write_bytes(ct_small.read_bytes()[:-5000])
    (result,) = edit([tmp_path / "short.dcm"], set=["PatientName=X"], out=tmp_path / "out")
    assert str(result.error) == (
        f"{tmp_path / 'short.dcm'}: Pixel Data shorter than declared (27906 of 32768 bytes)"
    )
    assert not (tmp_path / "out").exists()
