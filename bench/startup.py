"""CLI start-up: `dicomlens get WindowCenter FILE` against `pydicom show FILE::WindowCenter`
and against the floor `python -c "import pydicom"`, all in this environment.

Targets (issue 2): <= 1.0x pydicom show, and <= 15 ms above the floor.
Run: .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import add_quick_option, median_times, runs_for


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (>= 10)")
    add_quick_option(parser)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    file = get_testdata_file("MR_small.dcm")
    pydicom_cli = shutil.which("pydicom", path=str(bin_dir))
    dicomlens_cli = shutil.which("dicomlens", path=str(bin_dir))
    if not (pydicom_cli and dicomlens_cli):
        print("run inside the project's venv (make install)", file=sys.stderr)
        return 2
    commands = {
        "dicomlens get": [dicomlens_cli, "get", "WindowCenter", str(file)],
        "pydicom show": [pydicom_cli, "show", f"{file}::WindowCenter"],
        "floor (import pydicom)": [sys.executable, "-c", "import pydicom"],
    }
    runs = runs_for(args, least=10)
    times = median_times(commands, runs=runs)
    print(f"median of {runs} runs each, interleaved; wall and CPU (user+system) time")
    for name, timing in times.items():
        print(f"{name:<24} wall {timing.wall * 1000:7.1f} ms   cpu {timing.cpu * 1000:7.1f} ms")
    ours, peer, floor = (
        times["dicomlens get"],
        times["pydicom show"],
        times["floor (import pydicom)"],
    )
    for kind in ("wall", "cpu"):
        mine, theirs, base = getattr(ours, kind), getattr(peer, kind), getattr(floor, kind)
        print(
            f"{kind:>4}: dicomlens/pydicom show {mine / theirs:.2f}x (target <= 1.00x); "
            f"above the floor {(mine - base) * 1000:+.1f} ms (target <= 15 ms)"
        )
    return record(
        "startup",
        ratios={"dicomlens get / pydicom show": (ours.wall / peer.wall, 1.0)},
        figures={
            "dicomlens get ms": ours.wall * 1000,
            "pydicom show ms": peer.wall * 1000,
            "above import pydicom ms": (ours.wall - floor.wall) * 1000,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
