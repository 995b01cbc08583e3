"""Anonymizing 2,000 files: `dicomlens anonymize` (full PS3.15 Basic Profile, every output
verified byte by byte for the removed values, atomic fsynced writes) against dicognito
(PyPI), each from the same input folder into its own output folder, in the same run.

The corpus alternates pydicom's CT_small (GE private groups, nested sequences) and
MR_small, each copy with new UIDs. Both tools are given a seed/key and replace what
they wrote in the previous round.

Target (issue 5): faster than dicognito.
Run: .venv/bin/python bench/anonymize.py [--files N] [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import add_quick_option, median_times, print_times, runs_for, work_folder

WORK = Path(__file__).resolve().parent / "_work"


def make_corpus(count: int) -> Path:
    folder, ready = work_folder(f"anon_{count}", count)
    if ready:
        return folder
    templates = [pydicom.dcmread(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]
    series = [generate_uid() for _ in templates]
    for number in range(count):
        ds = templates[number % 2]
        ds.SeriesInstanceUID = series[number % 2]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number // 2 + 1
        ds.save_as(folder / f"1-{number:04d}.dcm")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (>= 10)")
    add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.files = 300
    bin_dir = Path(sys.executable).parent
    if shutil.which("dicognito", path=str(bin_dir)) is None:
        print("dicognito not found: make bench installs it (.[bench])", file=sys.stderr)
        return 2
    source = make_corpus(args.files)
    out = {name: WORK / f"anon_out_{name}" for name in ("dicomlens", "dicognito")}
    for folder in out.values():
        shutil.rmtree(folder, ignore_errors=True)
    commands = {
        "dicomlens anonymize": [
            str(bin_dir / "dicomlens"), "anonymize", str(source), "-o", str(out["dicomlens"]),
            "--key", "bench", "--overwrite",
        ],
        "dicognito": [
            sys.executable, "-m", "dicognito", str(source), "-o", str(out["dicognito"]),
            "--seed", "bench", "--quiet",
        ],
    }  # fmt: skip
    runs = runs_for(args, least=10)
    times = median_times(commands, runs=runs, warmup=1)
    written = {name: len(list(folder.rglob("*.dcm"))) for name, folder in out.items()}
    print(f"{args.files} files (CT_small and MR_small copies), median of {runs} runs; written: "
          f"{written}")  # fmt: skip
    print_times(times, ours="dicomlens anonymize")
    print("target: < 1.00x dicognito")
    ours, peer = times["dicomlens anonymize"], times["dicognito"]
    return record(
        "anonymize",
        ratios={"dicomlens anonymize / dicognito": (ours.wall / peer.wall, 1.0)},
        figures={
            "files": args.files,
            "dicomlens ms": ours.wall * 1000,
            "dicognito ms": peer.wall * 1000,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
