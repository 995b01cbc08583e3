"""The catalog: incremental indexing that survives bad files and kills, and queries
that agree with a brute-force pydicom scan (RELIABILITY.md 7.5)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import TEST_FILES, bundled, numbered_copies, readable, truncate_inside
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomlens.catalog import SCHEMA_VERSION, Catalog, index, query
from dicomlens.catalog.store import Overrun
from dicomlens.cli import main
from dicomlens.errors import CatalogError, UsageError
from dicomlens.scanning import group_series, scan_folder

GOOD = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb_small_odd.dcm"]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Good files in nested folders, plus broken ones and a non-DICOM file."""
    root = tmp_path / "archive"
    for number, name in enumerate(GOOD):
        target = root / f"patient{number % 2}" / f"study{number}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bundled(name), target)
    broken = root / "broken"
    broken.mkdir()
    (broken / "empty.dcm").write_bytes(b"")
    (broken / "notes.txt").write_text("not DICOM")
    shutil.copy(bundled("CT_small.dcm"), broken / "cut.dcm")
    truncate_inside(broken / "cut.dcm")
    data = bytearray(bundled("MR_small.dcm").read_bytes())
    at = pydicom.dcmread(bundled("MR_small.dcm")).get_item(0x00100010).value_tell
    data[at - 2 : at] = b"\xff\xff"  # PatientName claims 65535 bytes: runs past the end
    (broken / "lying.dcm").write_bytes(bytes(data[: at + 40]))
    return root


def _content(db: Path) -> list[tuple[object, ...]]:
    """Everything the catalog holds, without row ids (which depend on history)."""
    with sqlite3.connect(db) as connection:
        return sorted(
            connection.execute(
                "SELECT f.path, f.size, f.kind, f.reason, i.sop_instance_uid, i.elements, "
                "i.slices, se.series_instance_uid, st.study_instance_uid, p.patient_key "
                "FROM files f LEFT JOIN instances i ON i.file = f.id "
                "LEFT JOIN series se ON se.id = i.series LEFT JOIN studies st ON st.id = se.study "
                "LEFT JOIN patients p ON p.id = st.patient"
            ).fetchall(),
            key=repr,
        )


def test_good_files_indexed_bad_ones_recorded(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    report = index([archive], db)
    assert report.instances == len(GOOD) and report.others == 2  # notes.txt, empty.dcm
    reasons = dict((Path(p).name, reason) for p, reason in report.errors)
    assert set(reasons) == {"cut.dcm", "lying.dcm"}
    assert reasons["cut.dcm"].startswith("truncated")
    assert reasons["lying.dcm"] == (
        "truncated: (0010,0010) PatientName declares 65535 bytes but only 40 remain"
    )
    with Catalog(db, readonly=True) as catalog:
        assert catalog.counts()["instances"] == len(GOOD)
        errors = catalog.execute("SELECT path, reason FROM errors").fetchall()
    assert sorted(Path(p).name for p, _ in errors) == sorted(reasons)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600  # I11: the catalog holds PHI


def test_cli_summary_and_exit_status(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "catalog.db")
    assert main(["index", str(archive), "--catalog", db]) == 1
    err = capsys.readouterr().err
    assert "lying.dcm: truncated" in err and "cut.dcm: truncated" in err
    assert err.splitlines()[-1] == (
        f"dicomlens: {db}: read 9 files (5 instances, 2 failed, 2 other), 0 unchanged, "
        "0 removed; catalog holds 5 patients, 5 studies, 5 series, 5 instances, 2 errors"
    )
    assert "more than one path" not in err
    shutil.copy(bundled("CT_small.dcm"), archive / "copy.dcm")
    assert main(["index", str(archive), "--catalog", db]) == 0  # no new failure this time
    assert "1 instance recorded at more than one path (SELECT * FROM conflicts)" in (
        capsys.readouterr().err
    )


def test_rerun_reads_nothing_and_changes_nothing(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    index([archive], db)
    before = _content(db)
    again = index([archive], db)
    assert again.read == 0 and again.unchanged == 9 and again.removed == 0
    assert _content(db) == before


def test_changed_replaced_and_deleted_files(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    index([archive], db)
    ct = next(archive.rglob("CT_small.dcm"))
    stamp = ct.stat().st_mtime_ns
    os.utime(ct, ns=(stamp, stamp + 10**9))  # touched
    assert index([archive], db).read == 1
    edited = pydicom.dcmread(ct)
    edited.PatientName = "Replaced^Same^Time"
    edited.save_as(tmp_path / "new.dcm")
    os.utime(tmp_path / "new.dcm", ns=(stamp, ct.stat().st_mtime_ns))
    os.replace(tmp_path / "new.dcm", ct)  # cp -p: same mtime, new inode and size
    assert index([archive], db).read == 1
    with Catalog(db, readonly=True) as catalog:
        names = [r[0] for r in catalog.execute("SELECT patient_name FROM patients")]
    assert "Replaced^Same^Time" in names
    ct.unlink()
    report = index([archive], db)
    assert report.removed == 1 and report.read == 0
    with Catalog(db, readonly=True) as catalog:
        assert catalog.counts()["instances"] == len(GOOD) - 1
        assert catalog.counts()["studies"] == len(GOOD) - 1  # pruned with its last instance


def test_an_instance_overwritten_by_another_file_is_forgotten(
    archive: Path, tmp_path: Path
) -> None:
    db = tmp_path / "catalog.db"
    index([archive], db)
    ct = next(archive.rglob("CT_small.dcm"))
    ct.write_bytes(b"not DICOM any more")
    report = index([archive], db)
    assert (report.read, report.others, report.instances) == (1, 1, 0)
    with Catalog(db, readonly=True) as catalog:
        assert catalog.counts()["instances"] == len(GOOD) - 1
        kinds = catalog.execute("SELECT kind FROM files WHERE path = ?", (str(ct),)).fetchall()
    assert kinds == [("other",)]


def test_a_file_whose_name_is_not_utf8_is_reported_and_the_others_indexed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cd"
    folder.mkdir()
    shutil.copy(bundled("CT_small.dcm"), folder / os.fsdecode(b"scan\xe9.dcm"))  # Latin-1
    shutil.copy(bundled("MR_small.dcm"), folder / "b.dcm")
    reason = "its name is not valid UTF-8: not indexed (rename it)"
    shown = str(folder / "scan\\xe9.dcm")  # its bytes escaped: text a catalog can hold
    for _ in range(2):  # reported on every run
        report = index([folder], tmp_path / "catalog.db")
        assert report.errors == [(shown, reason)]
    assert report.unchanged == 1
    with Catalog(tmp_path / "catalog.db", readonly=True) as catalog:
        rows = catalog.execute("SELECT path, kind, reason FROM files ORDER BY path").fetchall()
        assert catalog.counts()["instances"] == 1
    assert rows == [(str(folder / "b.dcm"), "instance", ""), (shown, "error", reason)]


def test_same_instance_at_two_paths_is_kept_twice(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    copy = archive / "copy" / "again.dcm"
    copy.parent.mkdir()
    shutil.copy(next(archive.rglob("MR_small.dcm")), copy)
    index([archive], db)
    with Catalog(db, readonly=True) as catalog:
        rows = catalog.execute("SELECT sop_instance_uid, copies, paths FROM conflicts").fetchall()
    uid = pydicom.dcmread(copy).SOPInstanceUID
    original = str(next(p for p in archive.rglob("MR_small.dcm") if p != copy))
    assert [(u, n, sorted(json.loads(paths))) for u, n, paths in rows] == [
        (uid, 2, sorted([str(copy), original]))
    ]
    os.remove(original)  # re-imported from the new place: the old path goes, the conflict too
    index([archive], db)
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute("SELECT count(*) FROM conflicts").fetchone() == (0,)
        assert catalog.execute(
            "SELECT path FROM files JOIN instances ON instances.file = files.id "
            "WHERE sop_instance_uid = ?",
            (uid,),
        ).fetchall() == [(str(copy),)]


def test_older_schema_is_migrated_when_written_and_read_as_it_is(tmp_path: Path) -> None:  # I8
    from dicomlens.errors import DicomlensWarning

    db = tmp_path / "catalog.db"
    index([bundled("CT_small.dcm")], db)
    with sqlite3.connect(db) as connection:  # as dicomlens' first catalogs were
        connection.execute("DROP VIEW conflicts")
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'instances\\_%' ESCAPE '\\' "
            "AND name NOT IN ('instances_series', 'instances_sop')"
        ).fetchall():
            connection.execute(f"DROP INDEX {name}")
        connection.execute("DROP TABLE series_values")
        connection.execute("DROP TABLE series_varying")
        connection.execute("ALTER TABLE files DROP COLUMN rows_version")
        connection.execute("PRAGMA user_version = 1")
    with Catalog(db, readonly=True) as catalog:
        assert len(query(catalog, ["Modality=CT"]).rows) == 1
        assert len(query(catalog, ["KVP=120"]).rows) == 1  # no series values: every row read
    with pytest.warns(DicomlensWarning, match=f"catalog schema v1 migrated to v{SCHEMA_VERSION}"):
        index([bundled("MR_small.dcm")], db)
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        # the series values of the instance indexed before are filled in, those of the new one
        # written: both are found through them
        assert catalog.dialect.series_values
        assert len(query(catalog, ["KVP=120"]).rows) == 1
        assert len(query(catalog, ["EchoTime=240"], level="instance").rows) == 1
        (values,) = catalog.execute("SELECT count(DISTINCT series) FROM series_values").fetchone()
        assert values == 2
        assert catalog.execute("SELECT count(*) FROM conflicts").fetchone() == (0,)
        plan = catalog.execute("EXPLAIN QUERY PLAN SELECT 1 FROM instances WHERE "
                               "slice_thickness = 1").fetchall()  # fmt: skip
        assert "instances_slice_thickness" in str(plan)  # the v3 indexes are there
        assert _indexed_columns(catalog, "instances_slice_thickness") == [
            "slice_thickness", "series"]  # fmt: skip


def _indexed_columns(catalog: Catalog, index_name: str) -> list[str]:
    return [row[2] for row in catalog.execute(f"PRAGMA index_info({index_name})")]


def test_instance_indexes_gain_the_series_when_migrated(tmp_path: Path) -> None:
    from dicomlens.errors import DicomlensWarning

    db = tmp_path / "catalog.db"
    index([bundled("CT_small.dcm")], db)
    with sqlite3.connect(db) as connection:  # as schema v4 made them
        connection.execute("DROP INDEX instances_rows")
        connection.execute("CREATE INDEX instances_rows ON instances(rows)")
        connection.execute("ALTER TABLE files DROP COLUMN rows_version")
        connection.execute("PRAGMA user_version = 4")
    with Catalog(db, readonly=True) as catalog:  # read as it is
        assert _indexed_columns(catalog, "instances_rows") == ["rows"]
        assert len(query(catalog, ["Rows=128"]).rows) == 1
    with pytest.warns(DicomlensWarning, match="v4 migrated"):
        index([bundled("MR_small.dcm")], db)
    with Catalog(db, readonly=True) as catalog:
        assert _indexed_columns(catalog, "instances_rows") == ["rows", "series"]
        assert len(query(catalog, ["Rows=64"]).rows) == 1


def test_rows_of_an_earlier_version_are_read_again_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A catalog made by an earlier dicomlens (schema v5: no rows version, or rows of an
    older version) reads those files again on its next index, then no more."""
    from dicomlens.catalog.schema import ROWS_VERSION
    from dicomlens.errors import DicomlensWarning

    folder = numbered_copies(tmp_path / "series", 6)
    db = tmp_path / "catalog.db"
    index([folder], db)
    with sqlite3.connect(db) as connection:
        fresh = connection.execute("SELECT slices, elements FROM instances").fetchall()
        connection.execute("UPDATE instances SET slices = '[]'")  # what an older reader lacked
        connection.execute("ALTER TABLE files DROP COLUMN rows_version")
        connection.execute("PRAGMA user_version = 5")
    with pytest.warns(DicomlensWarning, match="v5 migrated"):
        report = index([folder], db)
    assert (report.read, report.refreshed, report.unchanged) == (6, 6, 0)
    with sqlite3.connect(db) as connection:
        again = connection.execute("SELECT slices, elements FROM instances").fetchall()
        versions = connection.execute("SELECT DISTINCT rows_version FROM files").fetchall()
    assert sorted(again) == sorted(fresh) and versions == [(ROWS_VERSION,)]
    report = index([folder], db)
    assert (report.read, report.refreshed, report.unchanged) == (0, 0, 6)
    with sqlite3.connect(db) as connection:  # a row of an older version than this one's
        connection.execute("UPDATE files SET rows_version = ? WHERE path LIKE '%/00003.dcm'",
                           (ROWS_VERSION - 1,))  # fmt: skip
    (folder / "00005.dcm").unlink()  # and a file gone meanwhile is still forgotten
    assert main(["index", str(folder), "--catalog", str(db)]) == 0
    said = capsys.readouterr().err
    assert "dicomlens: 1 file read again: recorded by an earlier dicomlens" in said
    assert "read 1 file (1 instance, 0 failed, 0 other), 4 unchanged, 1 removed" in said


# The slice fields each rows version stores: a new field changes every image's row.
_SLICE_FIELDS_OF_ROWS_VERSION = {
    1: ("path", "frame", "sop_instance_uid", "series_instance_uid", "rows", "columns", "position",
        "orientation", "pixel_spacing", "slice_thickness", "instance_number", "acquisition_time",
        "echo_number", "echo_time", "temporal_position", "image_type", "slope", "intercept",
        "series_number", "series_description", "modality", "study_instance_uid", "mosaic",
        "native_pixels", "acquisition_number", "trigger_time", "b_value", "gradient",
        "volume_order", "mosaic_slices", "mosaic_rows", "frame_time", "imager_pixel_spacing",
        "rows_reversed", "component", "time_after_start", "scale_slope"),
}  # fmt: skip


def test_a_new_slice_field_comes_with_a_new_rows_version() -> None:
    """Raise ROWS_VERSION (and list its fields above) when SliceInfo changes, so that
    catalogs read their files again rather than keep rows without the new field."""
    import dataclasses

    from dicomlens.catalog.schema import ROWS_VERSION
    from dicomlens.series import SliceInfo

    fields = tuple(field.name for field in dataclasses.fields(SliceInfo))
    assert fields == _SLICE_FIELDS_OF_ROWS_VERSION.get(ROWS_VERSION), "raise ROWS_VERSION"


def test_bounded_statements_overrun_and_leave_the_catalog_usable(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    index([bundled("CT_small.dcm")], db)
    endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n"
    with Catalog(db, readonly=True) as catalog:
        started = time.perf_counter()
        with pytest.raises(Overrun), catalog.bounded(0.05):
            catalog.execute(endless).fetchall()
        assert time.perf_counter() - started < 5
        with catalog.bounded(5):  # quick statements are untouched
            assert catalog.execute("SELECT count(*) FROM instances").fetchone() == (1,)
        with pytest.raises(CatalogError, match="no such table"), catalog.bounded(5):
            catalog.execute("SELECT * FROM nowhere")  # other errors stay what they are
        assert catalog.execute("SELECT count(*) FROM files").fetchone() == (1,)


def test_symlink_loop_terminates_and_indexes_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    shutil.copy(bundled("CT_small.dcm"), root / "sub" / "ct.dcm")
    (root / "sub" / "loop").symlink_to(root)
    (root / "alias.dcm").symlink_to(root / "sub" / "ct.dcm")
    report = index([root], tmp_path / "catalog.db")
    assert report.instances == 1


def test_second_indexer_is_refused(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    with (
        Catalog(db) as first,
        first.writer(),
        pytest.raises(CatalogError, match=f"being indexed by PID {os.getpid()}"),
    ):
        index([archive], db)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (RELIABILITY I9); skips where mounting is not allowed."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_disk_full_rolls_back_and_the_catalog_still_opens(
    tiny_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # I9
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(300):  # about 2 MB of catalog rows
        shutil.copy(bundled("CT_small.dcm"), folder / f"{number}.dcm")
    db = tiny_disk / "catalog.db"
    assert main(["index", str(folder), "--catalog", str(db)]) == 1
    err = capsys.readouterr().err
    assert "database or disk is full" in err and "nothing of this batch kept" in err
    assert "Traceback" not in err
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert catalog.counts()["instances"] == 0  # the batch was rolled back whole


def test_foreign_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE other (x)")
        connection.execute("PRAGMA user_version = 7")
    refused = f"catalog schema v7, this dicomlens uses v{SCHEMA_VERSION}"
    with pytest.raises(CatalogError, match=refused):
        index([bundled("CT_small.dcm")], db)
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CatalogError, match="not a dicomlens catalog"):
        Catalog(tmp_path / "junk.db", readonly=True)


_WORKER = """
import sys
from dicomlens.catalog import index
print("ready", flush=True)
index([sys.argv[1]], sys.argv[2], workers=2)
"""


def test_killed_indexer_resumes_to_the_same_catalog(tmp_path: Path) -> None:
    """I5: SIGKILL at random points, then a full run: same catalog as without kills."""
    folder = numbered_copies(tmp_path / "many", 1200)
    reference = tmp_path / "reference.db"
    index([folder], reference)
    db = tmp_path / "killed.db"
    chance = random.Random(20261125)
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(folder), str(db)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(chance.uniform(0.3, 1.5))
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    index([folder], db)
    assert _content(db) == _content(reference)


# Brute force: the same conditions evaluated by reading every file with pydicom.
_QUERIES = {
    "Modality=MR": lambda ds: ds.get("Modality") == "MR",
    "SliceThickness<=2": lambda ds: (
        ds.get("SliceThickness") not in (None, "") and float(ds.SliceThickness) <= 2
    ),
    "StudyDate>=2020-01-01": lambda ds: str(ds.get("StudyDate") or "") >= "20200101",
    "SeriesDescription~sag": lambda ds: "sag" in str(ds.get("SeriesDescription", "")).lower(),
    "EchoTime>5": lambda ds: ds.get("EchoTime") not in (None, "") and float(ds.EchoTime) > 5,
    "Rows=256": lambda ds: ds.get("Rows") == 256,
    "PatientName~^kent": lambda ds: str(ds.get("PatientName", "")).lower().startswith("kent"),
    "ImageType~mosaic": lambda ds: "MOSAIC" in [str(v) for v in ds.get("ImageType") or []],
    "(0019,xx0B)[SIEMENS MR HEADER]>=50100": lambda ds: _siemens_slice_time(ds) >= 50100,
}


def _siemens_slice_time(ds: pydicom.Dataset) -> float:
    try:
        block = ds.private_block(0x0019, "SIEMENS MR HEADER")
        return float(ds[block.get_tag(0x0B)].value)
    except (KeyError, ValueError, TypeError):
        return float("-inf")


@pytest.mark.shared_data
@pytest.mark.parametrize("condition", list(_QUERIES))
def test_queries_match_a_brute_force_scan(
    condition: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = tmp_path_factory.getbasetemp() / "shared_catalog.db"
    if not db.exists():
        index([shared_data, TEST_FILES], db)
    with Catalog(db, readonly=True) as catalog:
        found = {row[-1] for row in query(catalog, [condition], level="instance").rows}
        paths = [row[0] for row in catalog.execute("SELECT f.path FROM instances JOIN files f "
                                                   "ON f.id = file")]  # fmt: skip
    expected = set()
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd values on purpose in pydicom's test files
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        if _QUERIES[condition](ds):
            expected.add(path)
    assert found == expected
    assert expected or condition.startswith("SliceThickness")  # most queries find something


def test_query_levels_columns_and_errors(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    index([bundled(n) for n in GOOD], db)
    with Catalog(db, readonly=True) as catalog:
        series = query(catalog, ["Modality=CT"], columns=["KVP", "(0028,0030)"])
        assert series.columns[-3:] == ["instances", "KVP", "PixelSpacing"]
        assert series.records() == [series.records()[0]] and series.rows[0][-2] == 120.0
        assert query(catalog, level="patient").columns[-3:] == ["studies", "series", "instances"]
        assert len(query(catalog, level="instance").rows) == len(GOOD)
        with pytest.raises(UsageError, match="expected a number"):
            query(catalog, ["SliceThickness<=thin"])
        with pytest.raises(UsageError, match="expected TAG OP VALUE"):
            query(catalog, ["Modality"])
        with pytest.raises(CatalogError, match="readonly"):
            catalog.execute("DELETE FROM files")


@pytest.mark.parametrize("form", ["table", "csv", "json", "parquet"])
def test_query_columns_are_named_as_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """Keywords for public elements however they were written, private tags as written,
    the same in every format, so that a column can be fed back as a tag."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    db = str(tmp_path / "catalog.db")
    index([bundled(n) for n in GOOD], db)
    asked = "Slice Thickness,(0018,0081),(0019,xx0C)[SIEMENS MR HEADER]"
    out = tmp_path / "out.parquet"
    argv = ["query", "--catalog", db, "Modality=CT", "--columns", asked, "--format", form]
    capsys.readouterr()
    assert main([*argv, "-o", str(out)] if form == "parquet" else argv) == 0
    text = capsys.readouterr().out
    expected = ["PatientID", "StudyDate", "SeriesNumber", "Modality", "SeriesDescription",
                "SeriesInstanceUID", "instances", "SliceThickness", "EchoTime",
                "(0019,xx0C)[SIEMENS MR HEADER]"]  # fmt: skip
    if form == "parquet":
        names = pq.read_table(out).column_names
    elif form == "json":
        names = list(json.loads(text)[0])
    elif form == "csv":
        names = next(csv.reader(io.StringIO(text)))
    else:
        names = text.splitlines()[0].split("  ")
        names = [name.strip() for name in names if name.strip()]
    assert names == expected
    with Catalog(db, readonly=True) as catalog:
        uid = query(catalog, ["Modality=CT"]).records()[0]["SeriesInstanceUID"]
    assert main(["query", "--catalog", db, f"SeriesInstanceUID={uid}", "--format", "csv"]) == 0


def test_query_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    db = str(tmp_path / "catalog.db")
    index([bundled(n) for n in GOOD], db)
    capsys.readouterr()
    assert main(["query", "--catalog", db, "Modality=MR", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PatientID,StudyDate,SeriesNumber,Modality")
    assert len(lines) == 1 + 1  # MR_small
    out = tmp_path / "mr.parquet"
    assert main(["query", "--catalog", db, "Modality=MR", "--format", "parquet", "-o",
                 str(out)]) == 0  # fmt: skip
    assert pq.read_table(out).to_pylist()[0]["Modality"] == "MR"
    assert main(["query", "--catalog", db, "--sql", "SELECT count(*) AS n FROM instances",
                 "--format", "json"]) == 0  # fmt: skip
    assert '"n": 5' in capsys.readouterr().out
    assert main(["query", "--catalog", str(tmp_path / "missing.db")]) == 1


@pytest.mark.shared_data
def test_series_and_volumes_from_the_catalog_match_a_scan(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = shared_data / "dcm_qa_decubitus" / "In" / "HFP"
    db = tmp_path / "catalog.db"
    index([folder], db)
    with Catalog(db, readonly=True) as catalog:
        from_catalog = group_series(catalog.slices([folder]))
    scanned = scan_folder([folder]).series
    assert [s.summary() for s in from_catalog] == [s.summary() for s in scanned]
    np.testing.assert_array_equal(from_catalog[0].volume().array, scanned[0].volume().array)


def test_every_bundled_file_indexes_or_names_its_reason(tmp_path: Path) -> None:
    files = sorted(TEST_FILES.glob("*.dcm"))
    report = index(files, tmp_path / "catalog.db")
    assert report.instances == len(readable(files))
    assert report.instances + len(report.errors) + report.others == len(files)


_INDEX_AS_NOBODY = """
import sys
from dicomlens.cli import main
sys.exit(main(["index", sys.argv[1], "--catalog", sys.argv[2]]))
"""


def test_unreadable_folder_is_recorded_not_skipped(ct_small: Path) -> None:  # I2
    import tempfile

    setpriv = shutil.which("setpriv")
    root = Path(tempfile.mkdtemp(prefix="dicomlens-i2-"))
    try:
        root.chmod(0o777)
        (root / "open").mkdir(mode=0o755)
        shutil.copy(ct_small, root / "open" / "ct.dcm")
        (root / "open" / "ct.dcm").chmod(0o644)
        (root / "closed").mkdir()
        shutil.copy(ct_small, root / "closed" / "ct.dcm")
        (root / "closed").chmod(0o000)
        nobody = [setpriv or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*nobody, sys.executable, "-c", "import dicomlens"],
                               capture_output=True)  # fmt: skip
        if setpriv is None or probe.returncode != 0:
            pytest.skip("cannot run this interpreter as an unprivileged user here")
        db = root / "catalog.db"
        out = subprocess.run(
            [*nobody, sys.executable, "-c", _INDEX_AS_NOBODY, str(root), str(db)],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 1, out.stderr
        assert (
            f"dicomlens: error: {root / 'closed'}: cannot list folder (Permission denied)"
            in out.stderr.splitlines()
        )
        with Catalog(db, readonly=True) as catalog:
            assert catalog.counts()["instances"] == 1
            errors = catalog.execute("SELECT path FROM errors").fetchall()
        assert errors == [(str(root / "closed"),)]
    finally:
        (root / "closed").chmod(0o755)
        shutil.rmtree(root)


def test_dicomdir_records_are_never_followed_outside_the_root(tmp_path: Path) -> None:  # R25
    root = tmp_path / "media"
    shutil.copytree(bundled("dicomdirtests/DICOMDIR").parent, root)
    dicomdir = pydicom.dcmread(root / "DICOMDIR")
    record = dicomdir.DirectoryRecordSequence[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # '..' is not a valid CS: that is the point
        record.ReferencedFileID = ["..", "..", "..", "etc", "passwd"]
        dicomdir.save_as(root / "DICOMDIR")
    db = tmp_path / "catalog.db"
    index([root], db)
    with Catalog(db, readonly=True) as catalog:
        paths = [Path(p) for (p,) in catalog.execute("SELECT path FROM files")]
    assert paths and all(root.resolve() in p.parents for p in paths)


def test_dicomdir_is_recorded_as_a_directory_and_its_files_as_instances(tmp_path: Path) -> None:
    root = tmp_path / "media"
    shutil.copytree(bundled("dicomdirtests/DICOMDIR").parent / "TINY_ALPHA", root)
    db = tmp_path / "catalog.db"
    report = index([root], db)
    listed = pydicom.dcmread(root / "DICOMDIR").DirectoryRecordSequence
    images = [r for r in listed if r.DirectoryRecordType == "IMAGE"]
    assert (report.instances, report.others, report.errors) == (len(images), 2, [])  # + README
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute(
            "SELECT kind, reason FROM files WHERE path = ?", (str(root.resolve() / "DICOMDIR"),)
        ).fetchall() == [("other", "a DICOMDIR: the files it lists are indexed as they are found")]
        recorded = {uid for (uid,) in catalog.execute("SELECT sop_instance_uid FROM instances")}
    assert recorded == {r.ReferencedSOPInstanceUIDInFile for r in images}


# ---------------------------------------------------------------------------
# Rows: every element as pydicom decodes it
# ---------------------------------------------------------------------------


def _plain(value: object) -> object:
    """A pydicom value as the catalog's JSON holds it (independent of the catalog's code):
    an empty value as null, each of several values as a number or a string."""
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        return [v if isinstance(v, int | float) else str(v) for v in value]
    return value if isinstance(value, int | float) else str(value)


def test_indexed_values_equal_what_pydicom_decodes(tmp_path: Path) -> None:
    """Every top-level public element of every bundled file (implicit and explicit VR,
    big endian, character sets, UN-encoded): the catalog's value is pydicom's."""
    from dicomlens.catalog import file_rows

    files = readable(sorted(TEST_FILES.rglob("*.dcm")))
    compared = 0
    for row in file_rows(files, workers=2):
        if row.kind == "other":
            assert "DICOMDIR" in Path(row.path).name, row.reason
            continue
        assert row.instance is not None, row.reason
        elements = json.loads(row.instance.elements)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(row.path, stop_before_pixels=True)
            for element in ds:
                key = f"{element.tag:08X}"
                if element.tag.is_private or element.VR in ("SQ", "OB", "OW", "UN", "OF", "OD"):
                    continue
                if element.VR in ("US or SS", "OB or OW"):
                    continue
                assert elements.get(key) == _plain(element.value), (row.path, key)
                compared += 1
    assert compared > 3000


def test_same_bytes_under_other_charsets_and_creators_stay_apart(tmp_path: Path) -> None:
    from dicomlens.catalog import file_rows

    paths = []
    for number, (charset, creator) in enumerate([("ISO_IR 100", "ACME 1"),
                                                 ("ISO_IR 144", "OTHER 2")]):  # fmt: skip
        ds = pydicom.dcmread(bundled("CT_small.dcm"))
        ds.SpecificCharacterSet = charset
        ds[0x00100010] = pydicom.DataElement(0x00100010, "PN", b"M\xfcller")  # the same bytes
        ds.private_block(0x0029, creator, create=True).add_new(0x10, "LO", "same value")
        paths.append(tmp_path / f"{number}.dcm")
        ds.save_as(paths[-1])
    first, second = (json.loads(r.instance.elements) for r in file_rows(paths) if r.instance)
    names = [str(pydicom.dcmread(p).PatientName) for p in paths]
    assert names[0] != names[1]
    assert [first["00100010"], second["00100010"]] == names
    assert first["0029xx10[ACME 1]"] == second["0029xx10[OTHER 2]"] == "same value"
    assert "0029xx10[OTHER 2]" not in first


def test_un_encoded_elements_long_texts_and_pixel_offsets_are_indexed(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    names = ["rtdose_rle.dcm", "examples_ybr_color.dcm", "CT_small.dcm"]
    index([bundled(n) for n in names], db)
    with Catalog(db, readonly=True) as catalog:
        rows = {
            Path(path).name: (modality, uid, offset, length, json.loads(elements))
            for path, modality, uid, offset, length, elements in catalog.execute(
                "SELECT f.path, se.modality, i.sop_instance_uid, i.pixel_offset, "
                "i.pixel_length, i.elements FROM instances i JOIN files f ON f.id = i.file "
                "JOIN series se ON se.id = i.series"
            )
        }
    # rtdose_rle.dcm stores its public elements as UN: pydicom's dictionary gives their VRs
    rtdose = pydicom.dcmread(bundled("rtdose_rle.dcm"))
    assert rows["rtdose_rle.dcm"][:2] == ("RTDOSE", rtdose.SOPInstanceUID)
    assert rows["rtdose_rle.dcm"][4]["00200032"] == [float(v) for v in rtdose.ImagePositionPatient]
    # a 27 kB private XML text (longer than what the header read keeps in memory)
    ybr = pydicom.dcmread(bundled("examples_ybr_color.dcm"))
    assert rows["examples_ybr_color.dcm"][4]["0019xx50[SonoSite Private Data]"] == str(
        ybr[0x00191050].value
    )
    # where the uncompressed pixels are in the file
    ct = pydicom.dcmread(bundled("CT_small.dcm"), defer_size=1024)
    pixels = ct.get_item(0x7FE00010, keep_deferred=True)
    assert rows["CT_small.dcm"][2:4] == (pixels.value_tell, pixels.length)
    data = bundled("CT_small.dcm").read_bytes()
    assert data[pixels.value_tell : pixels.value_tell + pixels.length] == ct.PixelData


def test_a_file_changed_since_indexing_is_read_again_not_at_its_old_offset(
    make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_ct_series(4)
    db = tmp_path / "catalog.db"
    index([folder], db)
    changed = sorted(folder.glob("*.dcm"))[1]
    ds = pydicom.dcmread(changed)
    ds.ImageComments = "moves the pixel data " * 20  # the pixels now start further on
    ds.PixelData = (ds.pixel_array + 1000).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(changed)
    with Catalog(db, readonly=True) as catalog:
        (from_catalog,) = group_series(catalog.slices([folder]))
    (scanned,) = scan_folder([folder]).series
    np.testing.assert_array_equal(from_catalog.volume().array, scanned.volume().array)


def test_purge_deletes_the_catalog_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # I11
    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(bundled("CT_small.dcm"), folder)
    db = tmp_path / "catalog.db"
    index([folder], db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600  # PHI: readable by the owner only
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["purge", "--catalog", str(db)]) == 2  # no confirmation, nothing deleted
    assert "add --yes to confirm" in capsys.readouterr().err and db.exists()
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    def say_no(prompt: str) -> str:
        assert "1 instance of 1 patient" in prompt
        return "n"

    def hang_up(prompt: str) -> str:  # Ctrl-D
        raise EOFError

    for reply in (say_no, hang_up):
        monkeypatch.setattr("builtins.input", reply)
        assert main(["purge", "--catalog", str(db)]) == 0
        assert "nothing deleted" in capsys.readouterr().err and db.exists()
    with Catalog(db) as catalog, catalog.writer(), pytest.raises(CatalogError, match="PID"):
        from dicomlens.catalog import purge

        purge(db)  # being indexed
    assert main(["purge", "--catalog", str(db), "--yes"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]
    assert (folder / "CT_small.dcm").read_bytes() == bundled("CT_small.dcm").read_bytes()
    notes = tmp_path / "notes.db"
    notes.write_text("not a catalog")
    assert main(["purge", "--catalog", str(notes), "--yes"]) == 1
    assert notes.read_text() == "not a catalog"


def test_catalog_on_a_network_file_system_uses_a_rollback_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # I7
    from dicomlens.catalog import store
    from dicomlens.errors import DicomlensWarning

    db = tmp_path / "catalog.db"
    index([bundled("CT_small.dcm")], db)  # created locally: WAL
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    monkeypatch.setattr(store, "is_network_filesystem", lambda path: "nfs4")
    with pytest.warns(DicomlensWarning, match=r"network file system \(nfs4\).*rollback journal"):
        report = index([bundled("MR_small.dcm")], db)
    assert report.instances == 1
    with Catalog(db, readonly=True) as catalog:
        assert catalog.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert catalog.counts()["instances"] == 2
    assert not db.with_name("catalog.db-wal").exists()


def test_filesystem_type_reads_the_mount_table(tmp_path: Path) -> None:
    from dicomlens.catalog.filesystem import filesystem_type

    table = tmp_path / "mountinfo"
    table.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "40 22 0:40 / /mnt/pacs\\040share rw,relatime - nfs4 server:/export rw\n"
        "41 22 0:41 / /mnt/pacs rw - cifs //server/pacs rw\n"
    )
    assert filesystem_type("/mnt/pacs share/a/catalog.db", table) == "nfs4"
    assert filesystem_type("/mnt/pacs/catalog.db", table) == "cifs"
    assert filesystem_type("/mnt/pacs2/catalog.db", table) == "ext4"
    assert filesystem_type("/x", tmp_path / "missing") is None


def _counting(patch: pytest.MonkeyPatch, owner: type, name: str) -> list[bool]:
    """Wrap a method: the list says, call by call, whether it gave something."""
    real = getattr(owner, name)
    given = []

    def counted(self: object, *args: object) -> object:
        found = real(self, *args)
        given.append(found is not None)
        return found

    patch.setattr(owner, name, counted)
    return given


def _rows_both_ways(
    paths: list[Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[object], list[object], int]:
    """file_rows as it runs (files like the last ones read against their templates) and
    with every file read whole; also how many rows came from a template."""
    from dicomlens.catalog import file_rows, rows

    with monkeypatch.context() as patch:
        patch.setattr(rows, "_templates", [])
        used = _counting(patch, rows._Template, "row")
        quick = list(file_rows(paths))
    with monkeypatch.context() as patch:
        patch.setattr(rows, "_templates", [])
        patch.setattr(rows, "_TEMPLATES_KEPT", 0)
        whole = list(file_rows(paths))
    return quick, whole, sum(used)


def test_rows_from_templates_equal_rows_read_whole(
    archive: Path, make_ct_series: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated series (UIDs and positions of other lengths), every bundled file and
    broken ones: the same rows, fingerprints included, whether read whole or not."""
    series = sorted(make_ct_series(15).iterdir())
    paths = series + sorted(TEST_FILES.rglob("*.dcm")) + sorted(archive.rglob("*"))
    quick, whole, used = _rows_both_ways([p for p in paths if p.is_file()], monkeypatch)
    assert quick == whole
    assert used >= len(series) - 1


@pytest.mark.shared_data
def test_scanner_rows_from_templates_equal_rows_read_whole(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Siemens slices and mosaics: most rows come from templates, their per-file
    sequences (Referenced and Source Image Sequence) decoded value by value."""
    from dicomlens.catalog import rows

    sequences = _counting(monkeypatch, rows._SequenceTemplate, "entry_like")
    paths = sorted(p for p in shared_data.rglob("*") if p.is_file() and "In" in p.parts)
    quick, whole, used = _rows_both_ways(paths, monkeypatch)
    assert quick == whole
    assert used >= 170  # of the 196 decubitus slices and mosaics
    assert sum(sequences) >= 150


def test_compressed_rows_from_templates_equal_rows_read_whole(
    make_ct_series: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RLE slices (encapsulated pixel data of undefined length, of another size in
    each file): read against templates, the rows read whole."""
    paths = sorted(make_ct_series(10).iterdir())
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(path)
    quick, whole, used = _rows_both_ways(paths, monkeypatch)
    assert quick == whole
    assert used == len(paths) - 1


@pytest.mark.shared_data
def test_philips_rows_from_templates_equal_rows_read_whole(
    philips_dwi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Philips classic slices, whose sequences have undefined lengths (pydicom parses
    them while reading): rows from templates are the rows read whole."""
    paths = sorted(philips_dwi.iterdir())[:150]
    quick, whole, used = _rows_both_ways(paths, monkeypatch)
    assert quick == whole
    assert used >= 140


def test_two_blocks_of_one_creator_give_one_member(tmp_path: Path) -> None:
    """Two private blocks under the same creator name one key twice: the JSON keeps one
    member (the later value), so that SQLite and Python read the same object."""
    from dicomlens.catalog import file_rows

    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.add_new(0x00290010, "LO", "ACME 1")
    ds.add_new(0x00290011, "LO", "ACME 1")
    ds.add_new(0x00291001, "LO", "first")
    ds.add_new(0x00291101, "LO", "second")
    ds.save_as(tmp_path / "twice.dcm")
    (row,) = file_rows([tmp_path / "twice.dcm"])
    assert row.instance is not None
    assert row.instance.elements.count('"0029xx01[ACME 1]"') == 1
    assert json.loads(row.instance.elements)["0029xx01[ACME 1]"] == "second"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(changes=st.lists(st.tuples(st.integers(0, 1 << 16), st.binary(min_size=1, max_size=6)),
                        min_size=1, max_size=4))  # fmt: skip
def test_sequences_differing_anywhere_give_the_full_read_row(
    tmp_path: Path, changes: list[tuple[int, bytes]]
) -> None:
    """Bytes overwritten anywhere in a sequence's value (item headers, lengths, values,
    nested sequences): the row from the template equals the row read whole."""
    from dicomlens.catalog import rows

    base = tmp_path / "base.dcm"
    if not base.exists():
        ds = pydicom.dcmread(bundled("CT_small.dcm"))
        items = []
        for number in range(3):
            item = pydicom.Dataset()
            item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            item.ReferencedSOPInstanceUID = f"1.2.3.4.{number}"
            item.ReferencedFrameNumber = number + 1
            inner = pydicom.Dataset()
            inner.CodeValue = "12345"
            item.PurposeOfReferenceCodeSequence = pydicom.Sequence([inner])
            items.append(item)
        ds.ReferencedImageSequence = pydicom.Sequence(items)
        ds.save_as(base)
    raw = pydicom.dcmread(base).get_item(0x00081140)
    data = bytearray(base.read_bytes())
    for where, payload in changes:
        at = raw.value_tell + where % raw.length
        data[at : at + len(payload)] = payload[: raw.value_tell + raw.length - at]
    changed = tmp_path / "changed.dcm"
    changed.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows._templates.clear()
        rows._read_whole(str(base))
        assert rows._templates, "the base file makes a template"
        quick = rows._file_row(str(changed))
        rows._templates.clear()
        whole = rows._read_whole(str(changed))
    assert quick == whole


def test_series_values_lead_searches_to_the_right_series(tmp_path: Path) -> None:
    """Searches on elements only the JSON holds look at the series whose values may
    match: values that vary past the cap, changed files and deleted ones included."""
    from dicomlens.catalog.store import VARYING_AFTER

    folder = tmp_path / "series"
    folder.mkdir()
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    for number in range(VARYING_AFTER + 4):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number + 1}"
        ds.ContentTime = f"1200{number:02d}"  # varies: past the cap
        ds.save_as(folder / f"{number:03d}.dcm")
    db = tmp_path / "catalog.db"
    index([folder], db)
    with Catalog(db, readonly=True) as catalog:
        varying = catalog.execute("SELECT key FROM series_varying ORDER BY key").fetchall()
        assert varying == [("00080018",), ("00080033",)]  # SOPInstanceUID, ContentTime
        kvp = catalog.execute("SELECT value FROM series_values WHERE key = '00180060'").fetchall()
        assert kvp == [(120.0,)]
        for number in (0, 7, VARYING_AFTER + 3):
            found = query(catalog, [f"ContentTime=1200{number:02d}"], level="instance").rows
            assert [Path(row[-1]).name for row in found] == [f"{number:03d}.dcm"]
    changed = pydicom.dcmread(folder / "005.dcm")
    changed.KVP = 80
    changed.save_as(folder / "005.dcm")
    (folder / "006.dcm").unlink()
    index([folder], db)
    with Catalog(db, readonly=True) as catalog:
        assert [Path(r[-1]).name for r in query(catalog, ["KVP=80"], level="instance").rows] == [
            "005.dcm"
        ]
        assert len(query(catalog, ["KVP=120"], level="instance").rows) == VARYING_AFTER + 2
        assert query(catalog, ["ContentTime=120006"], level="instance").rows == []
        assert len(query(catalog, ["KVP<100", "ContentTime>=120000"]).rows) == 1


def test_reindexing_an_unchanged_folder_does_not_load_pydicom(
    tmp_path: Path, ct_small: Path
) -> None:
    """Nothing changed, nothing to read: the re-index is file listing and SQLite (the
    catalog's place is checked without pydicom too)."""
    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(ct_small, folder / "ct.dcm")
    from dicomlens.cli import main

    assert main(["index", str(folder), "--catalog", str(tmp_path / "catalog.db")]) == 0
    code = (
        "import sys\nfrom dicomlens.cli import main\n"
        f"status = main(['index', {str(folder)!r}, '--catalog', 'catalog.db'])\n"
        "print(status, 'pydicom' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert found.stdout.split() == ["0", "False"], found.stderr
