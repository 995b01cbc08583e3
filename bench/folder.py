"""`dicomlens get TAG DIR` over a folder of 2,000 files against DCMTK's `dcmdump +P TAG`
given all the files in one call (Debian package dcmtk), in the same run.

The folder is generated from pydicom's bundled MR_small.dcm (new SOP Instance UIDs) into
bench/_work/, which git ignores. Target (issue 2): report the ratio.
Run: .venv/bin/python bench/folder.py [--files N] [--runs N]
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


def make_folder(count: int) -> Path:
    folder, ready = work_folder(f"mr_{count}", count)
    if ready:
        return folder
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    for number in range(1, count + 1):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
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
    dcmdump = shutil.which("dcmdump")
    dicomlens = shutil.which("dicomlens", path=str(Path(sys.executable).parent))
    if not dicomlens:
        print("run inside the project's venv (make install)", file=sys.stderr)
        return 2
    if not dcmdump:
        print(
            "dcmdump not found: apt-get install dcmtk (the peer of this benchmark)", file=sys.stderr
        )
        return 2
    folder = make_folder(args.files)
    files = sorted(str(path) for path in folder.iterdir())
    commands = {
        "dicomlens get DIR": [dicomlens, "get", "WindowCenter", str(folder)],
        "dcmdump +P": [dcmdump, "+P", "WindowCenter", *files],
    }
    runs = runs_for(args, least=10)
    times = median_times(commands, runs=runs, warmup=1)
    print(f"{args.files} files, median of {runs} runs each")
    print_times(times, ours="dicomlens get DIR")
    ours, peer = times["dicomlens get DIR"], times["dcmdump +P"]
    return record(
        "folder",
        ratios={"dicomlens get DIR / dcmdump +P": (ours.wall / peer.wall, None)},
        figures={
            "files": args.files,
            "dicomlens ms": ours.wall * 1000,
            "dcmdump ms": peer.wall * 1000,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
