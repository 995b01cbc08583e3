"""A 4-D series to NIfTI: `dicomlens volume` against Debian's `dcm2niix`, whole process.

The series is generated once into bench/_work/ from one shared Siemens diffusion mosaic
(../shared/data/dcm_qa_decubitus, 128x128x25): N files, each a volume, with new UIDs,
instance and acquisition numbers and acquisition times, as an fMRI run would have them.
Both tools write an uncompressed .nii and a JSON sidecar into an emptied folder (new
files, as a first conversion makes them); each run is a fresh process.

Two sizes: 120 volumes (98 MB), where a Python process's start-up (interpreter, numpy,
pydicom: ~250 ms here) is most of the time, and 600 (491 MB), where the conversion is.
Target (issue 14): no slower than dcm2niix for uncompressed data.
Run: .venv/bin/python bench/volume4d.py [--volumes N [N ...]] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import Timing, add_quick_option, median_times, print_times, runs_for, work_folder

SHARED = Path(os.environ.get("DICOMLENS_TEST_DATA", Path(__file__).parents[2] / "shared" / "data"))
SOURCE = "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"


def make_series(volumes: int) -> Path:
    folder, ready = work_folder(f"mosaic_4d_{volumes}", volumes)
    if ready:
        return folder
    source = sorted((SHARED / SOURCE).glob("*.dcm"))[0]
    template = pydicom.dcmread(source)
    series_uid = generate_uid()
    for number in range(volumes):
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = ds.AcquisitionNumber = number + 1
        seconds = 15 * 3600 + 6 * 60 + 3.0 * number  # TR 3 s
        hours, rest = divmod(seconds, 3600)
        ds.AcquisitionTime = f"{int(hours):02d}{int(rest // 60):02d}{rest % 60:09.6f}"
        ds.save_as(folder / f"{number + 1:04d}.dcm")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, nargs="+", default=[120, 600],
                        help="series sizes to convert (default: 120 and 600 volumes)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=7)
    add_quick_option(parser)
    args = parser.parse_args()
    sizes = args.volumes  # a quick run: the same series (the same ratios), fewer runs
    if not (SHARED / SOURCE).is_dir():
        print(f"no shared data at {SHARED / SOURCE}", file=sys.stderr)
        return 2
    if shutil.which("dcm2niix") is None:
        print("dcm2niix is not installed (apt-get install dcm2niix)", file=sys.stderr)
        return 2
    ratios: dict[str, tuple[float, float | None]] = {}
    figures: dict[str, float] = {}
    for volumes in sizes:
        times = measure(make_series(volumes), runs_for(args, least=5))
        print(f"{volumes} mosaic files (128x128x25 each) to one 4-D .nii")
        print_times(times, ours="dicomlens")
        ours, peer = times["dicomlens"], times["dcm2niix"]
        ratios[f"{volumes} volumes: dicomlens volume / dcm2niix"] = (ours.wall / peer.wall, 1.0)
        figures[f"{volumes} volumes: dicomlens ms"] = ours.wall * 1000
        figures[f"{volumes} volumes: dcm2niix ms"] = peer.wall * 1000
    print("target: <= 1.0x dcm2niix")
    return record("volume4d", ratios=ratios, figures=figures, quick=args.quick)


def measure(folder: Path, runs: int) -> dict[str, Timing]:
    """Both tools on ``folder``, each run into an emptied output folder."""
    with tempfile.TemporaryDirectory() as work:
        outputs = {name: Path(work) / name for name in ("dicomlens", "dcm2niix")}
        dicomlens = str(Path(sys.executable).with_name("dicomlens"))
        commands = {
            "dicomlens": [dicomlens, "volume", str(folder), "-o", f"{outputs['dicomlens']}/4d.nii"],
            "dcm2niix": ["dcm2niix", "-b", "y", "-z", "n", "-f", "4d", "-o",
                         str(outputs["dcm2niix"]), str(folder)],
        }  # fmt: skip

        def empty_output(name: str) -> None:  # each run writes new files, as a user's first
            shutil.rmtree(outputs[name], ignore_errors=True)
            outputs[name].mkdir()

        return median_times(commands, runs=runs, prepare=empty_output)


if __name__ == "__main__":
    sys.exit(main())
