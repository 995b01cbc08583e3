"""The Parquet catalog: indexed on a real Dask cluster or local processes, it holds what
the SQLite catalog holds for the same files and answers the same queries the same way."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pydicom
import pytest
from conftest import TEST_FILES, bundled, numbered_copies, shared_data_root
from hostile import ROWS

from dicomlens.catalog import Catalog, index, query, run_sql
from dicomlens.catalog.executors import executor, run_isolating
from dicomlens.catalog.parquet import (
    ParquetCatalog,
    ParquetDataset,
    compact,
    export_catalog,
    import_catalog,
    index_parquet,
)
from dicomlens.catalog.parquet.format import TABLES, write_tables
from dicomlens.cli import main
from dicomlens.errors import CatalogError

distributed = pytest.importorskip("distributed")

QUERIES = [
    [],
    ["Modality=MR"],
    ["Modality!=CT"],
    ["SliceThickness<=3"],
    ["EchoTime>5", "RepetitionTime<3000"],
    ["Rows=64"],
    ["StudyDate>=2018-01-01"],
    ["AcquisitionDate<20200101"],
    ["SeriesDescription~epi"],
    ["PatientName~^ct"],
    ["ImageType=MOSAIC"],
    ["(0019,xx0C)[SIEMENS MR HEADER]>0"],
    ["(0019,xx0B)[SIEMENS MR HEADER]>=50100"],
    ["ReferencedImageSequence[0].ReferencedSOPClassUID=1.2.840.10008.5.1.4.1.1.4"],
    ["PerFrameFunctionalGroupsSequence[*].FrameContentSequence[0].TemporalPositionIndex>1"],
    ["ImagePositionPatient[2]>0"],
]
INSTANCE_COLUMNS = [
    "EchoTime",
    "ImageType",
    "PixelSpacing",
    "(0019,xx0C)[SIEMENS MR HEADER]",
    "ImagePositionPatient[2]",
    "ReferencedImageSequence[0].ReferencedSOPInstanceUID",
]
LEVELS = ["patient", "study", "series", "instance"]
# Columns of a level or above it (a row of a level holds one value of these).
LEVEL_EXTRA = {
    "patient": ["PatientBirthDate"],
    "study": ["StudyID", "PatientSex"],
    "series": ["BodyPartExamined", "StudyTime"],
    "instance": INSTANCE_COLUMNS,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real Dask cluster on this machine: a scheduler and two worker processes. Its
    HTTP server takes a free port (None would mean 8787, and a warning when in use)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as local:
        yield local.scheduler_address


def _copies(folder: Path, source: Path, series: int, slices: int) -> None:
    """Copies of one file as ``series`` series of ``slices`` slices, with new UIDs."""
    ds = pydicom.dcmread(source)
    for number in range(series):
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesNumber = number + 1
        ds.SeriesDescription = f"copy {number}"
        for slice_number in range(slices):
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.InstanceNumber = slice_number + 1
            target = folder / f"series{number}" / f"{slice_number:03d}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated copies in nested folders, pydicom's files, every hostile file, and
    the shared data when it is there."""
    root = tmp_path_factory.mktemp("corpus")
    _copies(root / "generated" / "ct", bundled("CT_small.dcm"), 3, 20)
    _copies(root / "generated" / "mr", bundled("MR_small.dcm"), 2, 10)
    bundled_folder = root / "bundled"
    bundled_folder.mkdir()
    for name in ["rtplan.dcm", "JPEG2000.dcm", "SC_rgb_small_odd.dcm", "liver_1frame.dcm",
                 "badVR.dcm", "nested_priv_SQ.dcm", "UN_sequence.dcm", "reportsi.dcm",
                 "empty_charset_LEI.dcm"]:  # fmt: skip
        shutil.copy(bundled(name), bundled_folder / name)
    shutil.copytree(TEST_FILES / "dicomdirtests", bundled_folder / "dicomdirtests")
    hostile = root / "hostile"
    hostile.mkdir()
    for row in ROWS:
        if not row.sparse_size:
            row.write(hostile / f"{row.name}.dcm")
    shared = shared_data_root()
    if shared.is_dir():
        (root / "shared").symlink_to(shared, target_is_directory=True)
    return root


def _roots(corpus: Path) -> list[Path]:
    """The corpus's folders (a link to the shared data is indexed through its target)."""
    return sorted(p.resolve() if p.is_symlink() else p for p in corpus.iterdir())


def _instances(catalog: Catalog | ParquetCatalog) -> list[tuple[Any, ...]]:
    """Every instance with its elements, slices and key columns, by path."""
    sql = (
        "SELECT f.path, f.size, i.sop_instance_uid, i.rows, i.slice_thickness, i.elements, "
        "i.slices, i.transfer_syntax, i.pixel_offset, i.pixel_length, se.series_instance_uid, "
        "st.study_instance_uid, p.patient_key FROM instances i JOIN files f ON f.id = i.file "
        "JOIN series se ON se.id = i.series JOIN studies st ON st.id = se.study "
        "JOIN patients p ON p.id = st.patient ORDER BY f.path"
    )
    return [tuple(row) for row in catalog.execute(sql).fetchall()]


def _files(catalog: Catalog | ParquetCatalog) -> list[tuple[Any, ...]]:
    sql = "SELECT path, size, mtime_ns, inode, kind, reason FROM files ORDER BY path"
    return [tuple(row) for row in catalog.execute(sql).fetchall()]


def _answers(catalog: Catalog | ParquetCatalog) -> dict[str, list[tuple[Any, ...]]]:
    answers = {}
    for conditions in QUERIES:
        for level in LEVELS:
            result = query(catalog, conditions, level=level, columns=LEVEL_EXTRA[level])
            answers[f"{level} {conditions}"] = result.rows
    return answers


def _assert_same(sqlite_path: Path, parquet_path: Path) -> None:
    with Catalog(sqlite_path, readonly=True) as one, ParquetCatalog(parquet_path) as other:
        assert _files(other) == _files(one)
        assert _instances(other) == _instances(one)
        assert other.counts() == one.counts()
        mine, theirs = _answers(other), _answers(one)
        for question, rows in theirs.items():
            assert mine[question] == rows, question


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("reference") / "catalog.db"
    index(_roots(corpus), db)
    return db


def test_a_file_whose_name_is_not_utf8_is_recorded_as_in_sqlite(tmp_path: Path) -> None:
    folder = tmp_path / "cd"
    folder.mkdir()
    shutil.copy(bundled("CT_small.dcm"), folder / os.fsdecode(b"scan\xe9.dcm"))  # Latin-1
    shutil.copy(bundled("MR_small.dcm"), folder / "b.dcm")
    report = index_parquet([folder], tmp_path / "dataset", workers=1)
    assert [path for path, _ in report.errors] == [str(folder / "scan\\xe9.dcm")]
    index([folder], tmp_path / "catalog.db")
    _assert_same(tmp_path / "catalog.db", tmp_path / "dataset")


def test_index_on_a_dask_cluster_equals_the_sqlite_index(
    corpus: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    dataset = tmp_path / "catalog"
    report = index_parquet(_roots(corpus), dataset, dask=cluster, partition_size=25)
    with Catalog(reference, readonly=True) as sqlite:
        errors = run_sql(sqlite, "SELECT path, reason FROM errors ORDER BY path").rows
        counts = sqlite.counts()
    assert sorted(report.errors) == sorted(errors) and len(errors) >= 10  # the hostile files
    assert report.instances == counts["instances"] >= 80
    parts = ParquetDataset(dataset).parts
    assert len(parts) > 4  # the work went out in many tasks
    _assert_same(reference, dataset)
    with Catalog(reference, readonly=True) as sqlite, ParquetCatalog(dataset) as parquet:
        found = {len(rows) for rows in _answers(parquet).values()}
        assert len(found) > 3  # the questions tell instances apart
        assert (
            run_sql(parquet, "SELECT count(*) FROM others").rows
            == run_sql(sqlite, "SELECT count(*) FROM files WHERE kind = 'other'").rows
        )


def test_local_processes_give_the_same_dataset_as_the_cluster(
    corpus: Path, reference: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "catalog"
    index_parquet(_roots(corpus), dataset, workers=2, partition_size=40)
    _assert_same(reference, dataset)


def test_sqlite_index_with_dask_reads_on_the_cluster(
    corpus: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    db = tmp_path / "catalog.db"
    report = index(_roots(corpus), db, dask=cluster, partition_size=30)
    assert report.read > 100
    with Catalog(db, readonly=True) as one, Catalog(reference, readonly=True) as other:
        assert _files(one) == _files(other)
        assert _instances(one) == _instances(other)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _copies(root / "ct", bundled("CT_small.dcm"), 2, 6)
    shutil.copy(bundled("MR_small.dcm"), root / "mr.dcm")
    (root / "notes.txt").write_text("not DICOM")
    return root


def test_rerun_reads_nothing_then_changes_are_tombstoned_and_compacted(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    dataset, db = tmp_path / "catalog", tmp_path / "catalog.db"
    first = index_parquet([root], dataset, workers=1)
    assert (first.read, first.instances, first.others) == (14, 13, 1)
    manifest = (dataset / "manifest.json").read_bytes()
    again = index_parquet([root], dataset, workers=1)
    assert (again.read, again.unchanged, again.removed) == (0, 14, 0)
    assert (dataset / "manifest.json").read_bytes() == manifest  # nothing written

    index([root], db)
    changed = root / "ct" / "series0" / "002.dcm"
    ds = pydicom.dcmread(changed)
    ds.PatientName = "Changed^Patient"
    ds.save_as(changed)
    (root / "ct" / "series1" / "003.dcm").unlink()
    shutil.copy(bundled("CT_small.dcm"), root / "added.dcm")
    report = index_parquet([root], dataset, workers=1)
    assert (report.read, report.removed, report.unchanged) == (2, 1, 12)
    index([root], db)
    _assert_same(db, dataset)
    with ParquetCatalog(dataset) as parquet:
        names = run_sql(
            parquet, f"SELECT patient_name FROM live_instances WHERE path = '{changed}'"
        ).rows
        assert names == [("Changed^Patient",)]
        tombstones = run_sql(parquet, "SELECT count(*) FROM source_tombstones").rows
        assert tombstones == [(2,)]  # the changed file's old row, the deleted file's

    parts_before = len(ParquetDataset(dataset).parts)
    dataset_handle = ParquetDataset(dataset)
    with dataset_handle.writing():
        assert compact(dataset_handle) == 2
    with ParquetCatalog(dataset) as parquet:
        assert run_sql(parquet, "SELECT count(*) FROM source_tombstones").rows == [(0,)]
    assert len(ParquetDataset(dataset).parts) <= parts_before
    assert {p.name for p in (dataset / "parts").iterdir()} == {
        p["name"] for p in ParquetDataset(dataset).parts
    }
    _assert_same(db, dataset)
    # without tombstones, any Parquet reader sees the live rows by globbing the parts
    glob = str(dataset / "parts" / "*" / "instances.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(13,)]


def test_parts_of_an_earlier_version_are_read_again_and_compaction_keeps_versions(
    tmp_path: Path,
) -> None:
    from dicomlens.catalog.parquet.format import Part, rows_version_of, write_part
    from dicomlens.catalog.schema import ROWS_VERSION

    root = _tree(tmp_path)
    dataset, db = tmp_path / "catalog", tmp_path / "catalog.db"
    index_parquet([root], dataset, workers=1)
    (part,) = ParquetDataset(dataset).parts
    assert part["rows_version"] == rows_version_of(dataset / "parts" / part["name"]) == ROWS_VERSION
    manifest = json.loads((dataset / "manifest.json").read_text())
    for listed in manifest["parts"]:
        del listed["rows_version"]  # as a dicomlens without rows versions wrote it
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    imported = tmp_path / "imported.db"  # copied into SQLite, the rows keep their version
    import_catalog(dataset, imported)
    report = index([root], imported)
    assert (report.read, report.refreshed, report.unchanged) == (14, 14, 0)
    with sqlite3.connect(imported) as connection:
        connection.execute("UPDATE files SET rows_version = 0 WHERE path LIKE '%mr.dcm'")
    exported = tmp_path / "exported"  # and back into Parquet: the part is marked as its oldest
    export_catalog(imported, exported)
    assert [p["rows_version"] for p in ParquetDataset(exported).parts] == [0]
    assert index_parquet([root], exported, workers=1).refreshed == 14
    report = index_parquet([root], dataset, workers=1)
    assert (report.read, report.refreshed, report.unchanged) == (14, 14, 0)
    again = index_parquet([root], dataset, workers=1)
    assert (again.read, again.refreshed, again.unchanged) == (0, 0, 14)
    index([root], db)
    _assert_same(db, dataset)

    # a part of version 0 (rows written before versions were recorded) with a dead row
    handle = ParquetDataset(dataset)
    with handle.writing():
        assert compact(handle) == 14  # the rows read again replace the earlier version's
        (old,) = (p["name"] for p in handle.parts)
        folder = handle.folder / "parts" / old
        tables = {t: pq.read_table(folder / f"{t}.parquet") for t in TABLES}
        write_tables(tables, folder, rows_version=0)
        path = tables["instances"]["path"][0].as_py()
        name, incoming = handle.new_part()
        tombstones = Part(name)
        tombstones.bury([(path, old)])
        write_part(tombstones, incoming)
        handle.commit(name)
        assert compact(handle) == 1
        assert [rows_version_of(handle.folder / "parts" / p["name"]) for p in handle.parts] == [0]
        assert [p["rows_version"] for p in handle.parts] == [0]
    report = index_parquet([root], dataset, workers=1)  # so the next run reads them again
    assert (report.read, report.refreshed) == (14, 13)
    _assert_same(db, dataset)


_KILLED_WORKER = """
import sys
from dicomlens.catalog.parquet import index_parquet
print("ready", flush=True)
index_parquet([sys.argv[1]], sys.argv[2], workers=2, partition_size=40)
"""


def test_killed_run_leaves_a_readable_dataset_and_the_next_run_goes_on(tmp_path: Path) -> None:
    folder = numbered_copies(tmp_path / "many", 1200)
    reference = tmp_path / "reference.db"
    index([folder], reference)
    dataset = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WORKER, str(folder), str(dataset)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it once some parts are in place
        parts = dataset / "parts"
        if parts.is_dir() and len(list(parts.iterdir())) >= 3:
            break
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    with ParquetCatalog(dataset) as parquet:  # readable as the last manifest left it
        kept = parquet.counts()["instances"]
    assert kept < 1200
    report = index_parquet([folder], dataset, workers=2, partition_size=40)
    assert report.read < 1200 or kept == 0  # what was committed is not read again
    assert not (dataset / ".incoming").exists()
    _assert_same(reference, dataset)


def stop_on(paths: tuple[str, ...]) -> list[str]:
    """A task that kills the worker process running it when it meets a file named 'bad'."""
    if any(Path(p).name == "bad" for p in paths):
        os._exit(1)
    return list(paths)


def test_a_task_that_kills_its_worker_costs_only_its_bad_file(cluster: str) -> None:
    tasks = [("a", "b", "c"), ("d", "bad", "e"), ("f",)]
    with executor(cluster) as pool:
        outcomes = dict(run_isolating(pool, stop_on, tasks, lambda run: [(p,) for p in run]))
    assert outcomes[("a", "b", "c")] == ["a", "b", "c"] and outcomes[("f",)] == ["f"]
    assert outcomes[("d",)] == ["d"] and outcomes[("e",)] == ["e"]
    assert isinstance(outcomes[("bad",)], Exception)  # recorded, not retried forever
    assert ("d", "bad", "e") not in outcomes


def test_export_and_import_keep_every_answer(reference: Path, tmp_path: Path) -> None:
    exported = tmp_path / "exported"
    assert main(["catalog", "export", "--catalog", str(reference), "--parquet", str(exported)]) == 0
    _assert_same(reference, exported)
    back = tmp_path / "back.db"
    assert main(["catalog", "import", "--parquet", str(exported), "--catalog", str(back)]) == 0
    _assert_same(back, exported)
    with pytest.raises(CatalogError, match="already"):
        export_catalog(reference, exported)
    with pytest.raises(CatalogError, match="already exists"):
        import_catalog(exported, back)


def test_cli_index_query_and_series_over_parquet(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    dataset, db = tmp_path / "catalog", tmp_path / "catalog.db"
    assert main(["index", str(root), "--parquet", str(dataset), "--dask", cluster]) == 0
    assert "13 instances" in capsys.readouterr().err
    assert main(["index", str(root), "--catalog", str(db)]) == 0
    capsys.readouterr()
    outputs = []
    for source in (["--parquet", str(dataset)], ["--catalog", str(db)]):
        assert main(["query", *source, "Modality=CT", "--level", "instance", "--format", "csv",
                     "--columns", "SliceLocation,PixelSpacing"]) == 0  # fmt: skip
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    rows = list(csv.DictReader(io.StringIO(outputs[0])))
    assert len(rows) == 12 and rows[0]["PixelSpacing"] == "[0.661468,0.661468]"
    sql = "SELECT modality, count(*) AS n FROM series GROUP BY modality ORDER BY 1"
    assert main(["query", "--parquet", str(dataset), "--format", "json", "--sql", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [{"modality": "CT", "n": 2},
                                                   {"modality": "MR", "n": 1}]  # fmt: skip
    assert main(["series", "--parquet", str(dataset), str(root / "ct")]) == 0
    table = capsys.readouterr().out
    assert "128x128x1x6" in table and table.count("CT") == 2  # copies at one position


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["index", "{root}", "--compact"], "--compact is for Parquet"),
        (["index", "{root}", "--parquet", "{dataset}", "--catalog", "x.db"], "two catalogs"),
        (["index", "{root}", "--parquet", "{root}"], "not a dicomlens Parquet catalog"),
        (["index", "{root}", "--parquet", "{dataset}", "--partition-size", "0"], "at least 1"),
        (["index", "{root}", "--parquet", "s3://bucket/catalog"], "URLs are for reading"),
        (["query", "--parquet", "{root}"], "no Parquet catalog here"),
        (["query", "--parquet", "{dataset}", "--sql", "DELETE FROM files"], "read-only"),
        (["query", "--parquet", "{dataset}", "--sql", "COPY files TO 'x.csv'"], "read-only"),
        (["query", "--parquet", "{dataset}", "--sql", "SELECT nothing FROM files"], "nothing"),
        (["view", "--parquet", "{dataset}", "--store", "in"], "--store"),
    ],
)
def test_bad_requests_name_the_reason(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    dataset = tmp_path / "catalog"
    index_parquet([root], dataset, workers=1)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    filled = [a.format(root=root, dataset=dataset) for a in arguments]
    assert main(filled) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing lost


def test_serving_a_parquet_catalog_serves_its_instances(tmp_path: Path) -> None:
    from dicomlens.cli import build_parser
    from dicomlens.cli.viewing import _from_parquet

    root = _tree(tmp_path)
    dataset = tmp_path / "catalog"
    args = build_parser("serve").parse_args(["serve", str(root), "--parquet", str(dataset)])
    served = Path(_from_parquet(args))
    try:
        assert served.stat().st_mode & 0o077 == 0 and served.parent.stat().st_mode & 0o077 == 0
        with Catalog(served, readonly=True) as copy, ParquetCatalog(dataset) as parquet:
            assert _instances(copy) == _instances(parquet) and len(_instances(copy)) == 13
    finally:
        shutil.rmtree(served.parent)


def test_a_dataset_in_object_storage_is_read_through_fsspec(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    root = _tree(tmp_path)
    dataset = tmp_path / "catalog"
    index_parquet([root], dataset, workers=1)
    memory = fsspec.filesystem("memory")
    memory.put(str(dataset), "/bucket/catalog", recursive=True)
    try:
        with ParquetCatalog("memory://bucket/catalog") as remote, ParquetCatalog(dataset) as local:
            assert _instances(remote) == _instances(local) and len(_instances(remote)) == 13
            assert _answers(remote) == _answers(local)
        with pytest.raises(CatalogError, match="no Parquet catalog here"):
            ParquetCatalog("memory://bucket/elsewhere")
    finally:
        memory.rm("/bucket", recursive=True)
