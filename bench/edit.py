"""Editing one tag in 2,000 files: `dicomlens edit --in-place` (atomic, fsynced) against a
plain pydicom loop (dcmread + set + save_as over the original, no fsync) and DCMTK's
`dcmodify -nb -m` with all files in one call, each on its own copy, in the same run.

Target (issue 4): no slower than the plain pydicom loop, despite the fsyncs.
Run: .venv/bin/python bench/edit.py [--files N] [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import add_quick_option, median_times, print_times, runs_for
from folder import make_folder

PYDICOM_LOOP = """
import sys, pathlib, pydicom
for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    ds = pydicom.dcmread(path)
    ds.PatientName = "Edited^Bench"
    ds.save_as(path)
"""


# The same edit with fsync made a no-op: what durability costs (for the report only).
WITHOUT_FSYNC = """
import os, sys
os.fsync = lambda fd: None
from dicomlens.cli import main
sys.exit(main(["edit", sys.argv[1], "--set", "PatientName=Edited^Bench", "--in-place"]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (>= 10)")
    add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.files = 300
    source = make_folder(args.files)
    bin_dir = Path(sys.executable).parent
    copies = {}
    for name in ("dicomlens", "nofsync", "pydicom", "dcmodify"):
        copies[name] = source.parent / f"edit_{name}"
        shutil.rmtree(copies[name], ignore_errors=True)
        shutil.copytree(source, copies[name])
    commands = {
        "dicomlens edit": [
            str(bin_dir / "dicomlens"), "edit", str(copies["dicomlens"]),
            "--set", "PatientName=Edited^Bench", "--in-place",
        ],
        "pydicom loop": [sys.executable, "-c", PYDICOM_LOOP, str(copies["pydicom"])],
        "dicomlens, no fsync": [sys.executable, "-c", WITHOUT_FSYNC, str(copies["nofsync"])],
    }  # fmt: skip
    dcmodify = shutil.which("dcmodify")
    if dcmodify:
        files = sorted(str(p) for p in copies["dcmodify"].iterdir())
        commands["dcmodify -nb -m"] = [dcmodify, "-nb", "-m", "PatientName=Edited^Bench", *files]
    else:
        print(
            "dcmodify not found: apt-get install dcmtk (a peer of this benchmark)", file=sys.stderr
        )
    runs = runs_for(args, least=10)
    times = median_times(commands, runs=runs, warmup=1)
    print(f"{args.files} files, one tag each, median of {runs} runs")
    print_times(times, ours="dicomlens edit")
    cost = times["dicomlens edit"].wall - times["dicomlens, no fsync"].wall
    print(f"cost of durability (fsync of each file and folder): {cost * 1000:+.0f} ms")
    print("target: <= 1.00x the pydicom loop")
    ours, loop = times["dicomlens edit"], times["pydicom loop"]
    return record(
        "edit",
        ratios={"dicomlens edit / pydicom loop": (ours.wall / loop.wall, 1.0)},
        figures={
            "files": args.files,
            "dicomlens edit ms": ours.wall * 1000,
            "pydicom loop ms": loop.wall * 1000,
            "fsync cost ms": cost * 1000,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
