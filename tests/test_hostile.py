"""Every hostile file of RELIABILITY.md 7.1 gets one clear line, bounded memory and
time, and no traceback; in a batch, the good files are still processed."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import bundled, read_both_ways
from hostile import ROWS, Row

from dicomlens.reading import read

MEMORY_LIMIT_MB = 200
TIME_LIMIT_S = 5.0


# Runs `python -m dicomlens ARGS` and, at exit, writes the process's own peak RSS
# (VmHWM: its memory since exec) to the file named first. The rusage of a forked child
# would count the test process's memory at the fork as well.
_MEASURED = """
import atexit, runpy, sys
record = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(record, "w") as out:
        out.write(kb)
atexit.register(peak)
sys.argv[0] = "dicomlens"
runpy.run_module("dicomlens", run_name="__main__", alter_sys=True)
"""


def _run(argv: list[str]) -> tuple[int, str, float, float]:
    """Exit status, stderr, peak RSS (MB) and wall time of a dicomlens command."""

    def limits() -> None:  # a safety net: a runaway allocation fails instead of swapping
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    with tempfile.NamedTemporaryFile("r") as record:
        start = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", _MEASURED, record.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limits,
            timeout=120,  # a command that waits forever (on a pipe, say) fails the test
        )
        seconds = time.perf_counter() - start
        peak_kb = record.read().strip()
    assert peak_kb, f"the command died before it could say its memory: {child.stderr[-300:]}"
    return child.returncode, child.stderr, int(peak_kb) / 1024, seconds


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_one_clear_line_bounded_memory_and_time(row: Row, tmp_path: Path) -> None:
    path = row.write(tmp_path / f"{row.name}.dcm")
    argv = [*row.command.split(), str(path)]
    if row.command.startswith("render"):
        argv += ["-o", str(tmp_path / "out.png")]
    status, err, memory_mb, seconds = _run(argv)
    lines = err.splitlines()
    assert "Traceback" not in err
    assert memory_mb < MEMORY_LIMIT_MB and seconds < TIME_LIMIT_S, (memory_mb, seconds)
    if row.outcome == "ok":
        assert (status, lines) == (0, [])
        return
    kind = "error" if row.outcome == "error" else "warning"
    assert status == (1 if kind == "error" else 0), err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dicomlens: {kind}: {path}: "), err
    assert row.reason in lines[0], err
    # one line of plain words: about 200 characters after the file name, no pydicom advice
    assert len(lines[0]) - len(str(path)) <= 220 and "pydicom.config" not in lines[0], err


def test_batch_goes_on_past_every_hostile_file(tmp_path: Path) -> None:
    _hostile_folder(tmp_path)
    (tmp_path / "zz-good.dcm").write_bytes(bundled("CT_small.dcm").read_bytes())
    status, err, memory_mb, _ = _run(["get", "Modality", str(tmp_path)])
    assert status == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dicomlens: error: ")]
    # in a folder, files that are not DICOM at all (R1-R4) are skipped and counted;
    # get reads headers only, so what lies after the pixel data (R23) is never parsed
    failing = [r for r in ROWS if r.outcome == "error" and r.command.startswith("show")
               and not r.sparse_size]  # fmt: skip
    skipped = [r for r in failing if r.name.startswith(("R1-", "R2-", "R3-", "R4-"))]
    assert len(errors) == len(failing) - len(skipped)
    assert err.splitlines()[-1].endswith(f"{len(skipped)} non-DICOM skipped")
    assert memory_mb < MEMORY_LIMIT_MB


@pytest.mark.parametrize(
    "command",
    ["series", "volume -o OUT/v.nii", "render -o OUT/r.png", "get Modality", "find Rows",
     "show", "edit --set PatientName=X --dry-run", "edit --set PatientName=X --in-place",
     "anonymize --key k -o OUT/anon", "index --catalog OUT/c.db", "diff SAME"],
)  # fmt: skip
def test_a_pipe_and_a_dangling_link_in_a_folder_are_named_not_waited_on(
    command: str, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = folder / "ct.dcm"
    good.write_bytes(bundled("CT_small.dcm").read_bytes())
    os.mkfifo(folder / "pipe")  # opening it for reading would wait for a writer forever
    (folder / "gone.dcm").symlink_to(tmp_path / "deleted.dcm")
    name, *options = command.replace("OUT", str(tmp_path)).split()
    argv = [name, *(str(folder) if o == "SAME" else o for o in options), str(folder)]
    status, err, _, _ = _run(argv)
    assert "Traceback" not in err
    assert status == (2 if name == "diff" else 1), err
    assert f"{folder / 'pipe'}: not a regular file (a device, a pipe or a socket)" in err
    assert f"{folder / 'gone.dcm'}: no such file or directory" in err.lower()
    if name == "edit" and "--in-place" in options:
        assert str(read(good).PatientName) == "X"


def _hostile_folder(folder: Path) -> list[Row]:
    for row in ROWS:
        row.write(folder / f"{row.name}.dcm")
    return [row for row in ROWS if row.outcome == "error" and row.command.startswith("show")]


def test_index_records_every_bad_file_and_keeps_the_good(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    failing = _hostile_folder(tmp_path / "in")
    catalog = tmp_path / "catalog.db"
    status, err, memory_mb, _ = _run(["index", str(tmp_path / "in"), "--catalog", str(catalog)])
    assert status == 1 and "Traceback" not in err and memory_mb < MEMORY_LIMIT_MB
    not_dicom = [r for r in failing if r.name.startswith(("R1-", "R2-", "R3-", "R4-"))]
    bad = len(failing) - len(not_dicom)
    assert len([line for line in err.splitlines() if line.startswith("dicomlens: error: ")]) == bad
    assert (
        f"read {len(ROWS)} files ({len(ROWS) - len(failing)} instances, {bad} failed, "
        f"{len(not_dicom)} other)" in err.splitlines()[-1]
    )


def test_anonymize_goes_on_past_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    failing = _hostile_folder(tmp_path / "in")
    status, err, memory_mb, _ = _run(["anonymize", str(tmp_path / "in"), "-o",
                                      str(tmp_path / "out"), "--key", "k"])  # fmt: skip
    assert status == 1 and "Traceback" not in err and memory_mb < MEMORY_LIMIT_MB
    errors = [line for line in err.splitlines() if line.startswith("dicomlens: error: ")]
    assert len(errors) >= len(failing) - 5  # the non-DICOM ones are skipped
    assert err.splitlines()[-1].startswith("dicomlens: anonymized ")


def test_encapsulated_pixels_with_delimiter_bytes_round_trip(tmp_path: Path) -> None:  # R24
    """pydicom-data's bad_sequence.dcm: encapsulated pixel data holding item bytes. It
    reads consistently and an edit writes it back with the same elements and pixels."""
    import warnings

    import pydicom

    from dicomlens.editing import edit
    from dicomlens.reading import read

    store = pytest.importorskip("data_store", reason="pydicom-data is not installed")
    source = Path(store.__file__).parent / "data" / "bad_sequence.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its SOP Instance UID is not a valid UID
        before = read(source)
        (result,) = edit([source], set=["PatientName=Round^Trip"], out=tmp_path)
        assert result.written and result.target is not None
        after = read(result.target)
    assert [e.tag for e in after] == [e.tag for e in before]
    assert after.PixelData == before.PixelData
    assert str(after.PatientName) == "Round^Trip"
    assert pydicom.dcmread(result.target).PatientName == "Round^Trip"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_quick_and_guarded_reads_agree(row: Row, tmp_path: Path) -> None:
    """Every hostile file reads the same (or fails with the same message) from memory
    and through the guarded file."""
    path = row.write(tmp_path / f"{row.name}.dcm")
    for options in ({"stop_before_pixels": True}, {"defer_size": 1024}, {}):
        quick, guarded = read_both_ways(path, **options)
        assert quick == guarded, options
