"""Indexing 20,000 files: `dicomlens index` (every non-bulk element of every file into
SQLite) against a plain pydicom loop (`dcmread(stop_before_pixels=True)` of every file,
nothing kept) and gdcm.Scanner collecting 15 key tags, each a fresh process, in the same
run; then re-indexing the unchanged tree, and a series-level query on a 100,000-instance
catalog. gdcm.Scanner parses a file only up to the last tag it is asked for, (0028,0011)
here, leaving out the private groups and functional groups that follow; it is also run
with one more tag placed after every header element (reported, no target), so that it
parses the whole header, as the index must.

The corpus: pydicom's CT_small and MR_small copied with new UIDs into
patient/study/series folders (20 slices per series, each slice at its own position,
slice location and instance number, as in a scanner's series).

Targets (issue 6): index >= 7,000 files/s (>= gdcm.Scanner); re-index of an unchanged
tree >= 50,000 files/s; a series-level query on 100,000 instances <= 50 ms.

When the shared scanner data is there, the same three commands also run on real Siemens
series (dcm_qa_decubitus: slices whose UIDs, positions, times and CSA headers change
from file to file, mosaics), copied with new study, series and instance UIDs.
With --quick: the mixed archive alone (5 copies: on fewer files start-up would weigh more
and change the ratios), without the whole-header gdcm.Scanner, 3 runs.
Run: .venv/bin/python bench/index.py [--files N] [--runs N] [--scanner-copies N] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import Timing, add_quick_option, median_times, print_times, runs_for

WORK = Path(__file__).resolve().parent / "_work"
PER_SERIES = 20
SHARED = Path(os.environ.get("DICOMLENS_TEST_DATA", Path(__file__).resolve().parents[2] /
                             "shared" / "data"))  # fmt: skip

PYDICOM_LOOP = """
import os, sys, pydicom
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True)
"""

GDCM_SCANNER = """
import sys, gdcm
KEYS = [(0x0010, 0x0020), (0x0010, 0x0010), (0x0020, 0x000D), (0x0020, 0x000E), (0x0008, 0x0018),
        (0x0008, 0x0060), (0x0008, 0x0020), (0x0008, 0x103E), (0x0020, 0x0011), (0x0020, 0x0013),
        (0x0028, 0x0010), (0x0028, 0x0011), (0x0018, 0x0050), (0x0020, 0x0032), (0x0020, 0x0037)]
if sys.argv[2:] == ["whole"]:  # a tag past every header element: the whole header is parsed
    KEYS.append((0x7FDF, 0x0010))
directory = gdcm.Directory()
directory.Load(sys.argv[1], True)
scanner = gdcm.Scanner()
for group, element in KEYS:
    scanner.AddTag(gdcm.Tag(group, element))
assert scanner.Scan(directory.GetFilenames())
"""

FRESH_INDEX = """
import os, sys
from dicomlens.cli import main
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(sys.argv[2] + suffix):
        os.remove(sys.argv[2] + suffix)
sys.exit(main(["index", sys.argv[1], "--catalog", sys.argv[2]]))
"""


def make_corpus(count: int) -> Path:
    folder = WORK / f"series_{count}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.dcm")) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    templates = [pydicom.dcmread(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]
    starts = [[float(v) for v in t.ImagePositionPatient] for t in templates]
    for number in range(count):
        series, slice_number = divmod(number, PER_SERIES)
        ds = templates[series % 2]
        if slice_number == 0:
            ds.StudyInstanceUID = generate_uid() if series % 4 < 2 else ds.StudyInstanceUID
            ds.SeriesInstanceUID = generate_uid()
            ds.PatientID = f"P{series // 8:05d}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = slice_number + 1
        x, y, z = starts[series % 2]
        ds.ImagePositionPatient = [x, y, round(z + 2.5 * slice_number, 2)]
        ds.SliceLocation = ds.ImagePositionPatient[2]
        target = folder / ds.PatientID / ds.StudyInstanceUID[-12:] / f"s{series:05d}"
        target.mkdir(parents=True, exist_ok=True)
        ds.save_as(target / f"{slice_number:03d}.dcm")
    return folder


def make_scanner_corpus(copies: int) -> Path | None:
    """The Siemens series of dcm_qa_decubitus, ``copies`` times, each copy with new UIDs
    (as another patient's examination); None without the shared data."""
    return make_copies("scanner", [SHARED / "dcm_qa_decubitus" / "In"], copies)


def make_mixed_corpus(copies: int) -> Path | None:
    """Every set of the shared data (CT-like slices in nine transfer syntaxes, 12-bit,
    Siemens classic and mosaics, enhanced, GE fMRI, Philips DWI), ``copies`` times in
    nested folders, each copy with new UIDs: an archive as users meet it."""
    roots = sorted(SHARED.glob("dcm_qa_*/In"))
    return make_copies("mixed", roots, copies) if roots else None


def make_copies(label: str, roots: list[Path], copies: int) -> Path | None:
    """The DICOM files under ``roots`` (``.gz`` ones unpacked), ``copies`` times under
    bench/_work/LABEL_COPIES/copyNNN/, study, series, instance and frame of reference
    UIDs replaced consistently within a copy."""
    if not all(root.is_dir() for root in roots):
        return None
    skipped = (".txt", ".md")
    files = sorted(
        p for root in roots for p in root.rglob("*")
        if p.is_file() and p.suffix not in skipped and p.name != "DICOMDIR"
    )  # fmt: skip
    folder = WORK / f"{label}_{copies}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.dcm")) == copies * len(files):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    common = Path(os.path.commonpath([str(root.parent.parent) for root in roots]))
    for copy in range(copies):
        uids: dict[str, str] = {}
        for path in files:
            ds = _read_copy_source(path)
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                            "FrameOfReferenceUID"):  # fmt: skip
                if keyword in ds:
                    old = str(ds.data_element(keyword).value)
                    ds.data_element(keyword).value = uids.setdefault(old, generate_uid())
            if "SOPInstanceUID" in ds and hasattr(ds, "file_meta"):
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"COPY{copy:03d}"
            relative = path.relative_to(common).with_suffix("").with_suffix(".dcm")
            target = folder / f"copy{copy:03d}" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target)
    return folder


def _read_copy_source(path: Path) -> pydicom.Dataset:
    if path.suffix == ".gz":
        with gzip.open(path) as stream:
            return pydicom.dcmread(stream, force=True)
    return pydicom.dcmread(path, force=True)


def index_commands(corpus: Path, catalog: str, *, quick: bool = False) -> dict[str, list[str]]:
    """The commands timed on ``corpus``; a quick run leaves out the peer without a target."""
    commands = {
        "dicomlens index": [sys.executable, "-c", FRESH_INDEX, str(corpus), catalog],
        "pydicom loop": [sys.executable, "-c", PYDICOM_LOOP, str(corpus)],
        "gdcm.Scanner (15 tags)": [sys.executable, "-c", GDCM_SCANNER, str(corpus)],
        "gdcm.Scanner (whole header)": [sys.executable, "-c", GDCM_SCANNER, str(corpus), "whole"],
    }
    if quick:
        del commands["gdcm.Scanner (whole header)"]
    return commands


def report_index(
    corpus: Path, catalog: str, runs: int, label: str, *, quick: bool = False
) -> dict[str, Timing]:
    files = sum(1 for p in corpus.rglob("*") if p.is_file())
    times = median_times(index_commands(corpus, catalog, quick=quick), runs=runs, warmup=1)
    print(f"{label}: {files} files, median of {runs} runs each")
    print_times(times, ours="dicomlens index")
    for name, timing in times.items():
        print(f"{name}: {files / timing.wall:,.0f} files/s")
    return times


def query_latency(corpus: Path, instances: int) -> tuple[float, int]:
    """Median seconds of a series-level query on a catalog of ``instances`` rows
    (the corpus' rows, repeated under other paths and UIDs)."""
    from dicomlens.catalog import Catalog, file_rows, query

    rows = list(file_rows(sorted(str(p) for p in corpus.rglob("*.dcm")), workers=2))
    db = Path(tempfile.mkdtemp()) / "big.db"
    with Catalog(db) as catalog:
        for copy in range(-(-instances // len(rows))):
            batch = []
            for row in rows[: instances - copy * len(rows)]:
                assert row.instance is not None
                series = dict(row.instance.series)
                series["series_instance_uid"] = f"{series['series_instance_uid']}.{copy}"
                instance = row.instance._replace(series=series)
                batch.append(row._replace(path=f"{row.path}.{copy}", instance=instance))
            catalog.write(batch)
    with Catalog(db, readonly=True) as catalog:
        found = len(query(catalog, ["Modality=CT"], level="series").rows)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            query(catalog, ["Modality=CT"], level="series")
            times.append(time.perf_counter() - start)
    return statistics.median(times), found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (>= 5)")
    parser.add_argument("--query-instances", type=int, default=100000)
    parser.add_argument("--scanner-copies", type=int, default=25,
                        help="copies of the shared Siemens series (0: leave them out)")  # fmt: skip
    parser.add_argument("--mixed-copies", type=int, default=5,
                        help="copies of all the shared data (0: leave them out)")  # fmt: skip
    add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:  # the mixed archive of issue 18 alone, full size: the same ratios
        args.files, args.query_instances, args.scanner_copies = 1000, 10000, 0
    try:
        import gdcm  # noqa: F401
    except ImportError:
        print("python-gdcm not found: make bench installs it (.[bench])", file=sys.stderr)
        return 2
    corpus = make_corpus(args.files)
    catalog = str(WORK / "bench_catalog.db")
    runs = runs_for(args, least=5)
    generated = None
    if not args.quick:
        generated = report_index(corpus, catalog, runs, "CT_small and MR_small copies")
    scanner = make_scanner_corpus(args.scanner_copies) if args.scanner_copies else None
    copies = mixed = None
    if scanner is not None:
        copies = report_index(
            scanner, str(WORK / "scanner_catalog.db"), runs, "Siemens series copies"
        )
    mixed_corpus = make_mixed_corpus(args.mixed_copies) if args.mixed_copies else None
    if mixed_corpus is not None:
        mixed = report_index(mixed_corpus, str(WORK / "mixed_catalog.db"), runs,
                             "copies of all the shared data", quick=args.quick)  # fmt: skip
    bin_dir = Path(sys.executable).parent
    reindex = {"dicomlens index (unchanged)": [str(bin_dir / "dicomlens"), "index", str(corpus),
                                               "--catalog", catalog]}  # fmt: skip
    again = median_times(reindex, runs=runs, warmup=1)["dicomlens index (unchanged)"]
    print(f"re-index of the unchanged tree: wall {again.wall * 1000:.0f} ms, "
          f"{args.files / again.wall:,.0f} files/s (target >= 50,000)")  # fmt: skip
    latency, found = query_latency(corpus, args.query_instances)
    print(f"series-level query (Modality=CT, {found} series) on {args.query_instances:,} "
          f"instances: {latency * 1000:.1f} ms (target <= 50 ms)")  # fmt: skip
    print("target: index >= 2x a pydicom loop's files/s and >= gdcm.Scanner's (issue 18)")
    ratios: dict[str, tuple[float, float | None]] = {}
    for label, times in (("generated", generated), ("Siemens copies", copies), ("mixed", mixed)):
        if times is None:
            continue
        ours = times["dicomlens index"].wall
        ratios[f"{label}: index / pydicom loop"] = (ours / times["pydicom loop"].wall, 0.5)
        ratios[f"{label}: index / gdcm.Scanner"] = (
            ours / times["gdcm.Scanner (15 tags)"].wall,
            1.0,
        )
        if "gdcm.Scanner (whole header)" in times:
            ratios[f"{label}: index / gdcm.Scanner whole header"] = (
                ours / times["gdcm.Scanner (whole header)"].wall,
                None,
            )
    figures = {
        "files": args.files,
        "re-index files/s": args.files / again.wall,
        "series query ms": latency * 1000,
    }
    if generated is not None:
        figures["index ms"] = generated["dicomlens index"].wall * 1000
    return record(
        "index",
        ratios=ratios,
        figures=figures,
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
