"""Loading a 500-slice 512x512 CT series into a float32 HU volume.

dicomlens (scan + Series.volume) against SimpleITK's ImageSeriesReader,
dicom-numpy's combine_slices and a naive pydicom loop (dcmread + sort + np.stack),
each in a fresh process, in the same run. The series is generated once into
bench/_work/ from pydicom's CT_small.dcm (a real slice, upsampled to 512x512,
500 distinct positions).

Target (issue 3): <= 0.4x SimpleITK's time.
Run: .venv/bin/python bench/volume.py [--slices N] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import add_quick_option, median_times, print_times, runs_for, work_folder

LOADERS = {
    "dicomlens": """
import sys, numpy as np, dicomlens as dl
(series,) = dl.scan([sys.argv[1]])
array = series.volume(dtype=np.float32).array
""",
    "SimpleITK": """
import sys, SimpleITK as sitk
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
reader.SetOutputPixelType(sitk.sitkFloat32)
array = sitk.GetArrayFromImage(reader.Execute())
""",
    "dicom-numpy": """
import sys, glob, numpy as np, pydicom, dicom_numpy
datasets = [pydicom.dcmread(p) for p in glob.glob(sys.argv[1] + "/*.dcm")]
array, affine = dicom_numpy.combine_slices(datasets, rescale=True)
array = array.astype(np.float32, copy=False)
""",
    "naive pydicom": """
import sys, glob, numpy as np, pydicom
datasets = [pydicom.dcmread(p) for p in glob.glob(sys.argv[1] + "/*.dcm")]
datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
array = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                  for ds in datasets]).astype(np.float32)
""",
}


def make_series(count: int) -> Path:
    folder, ready = work_folder(f"ct_{count}x512", count)
    if ready:
        return folder
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = np.kron(ds.pixel_array, np.ones((4, 4), dtype=ds.pixel_array.dtype))
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [float(v) / 4 for v in ds.PixelSpacing]
    ds.SeriesInstanceUID = generate_uid()
    origin = [float(v) for v in ds.ImagePositionPatient]
    for number in range(count):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number + 1
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] - 1.25 * number]
        ds.PixelData = (pixels + number % 7).astype(pixels.dtype).tobytes()
        ds.save_as(folder / f"{(number * 7919) % count:04d}.dcm")  # names not in slice order
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per loader (>= 10)")
    add_quick_option(parser)
    args = parser.parse_args()
    folder = make_series(args.slices)
    targets = {"SimpleITK": 0.4, "dicom-numpy": 0.5, "naive pydicom": None}
    commands = {
        name: [sys.executable, "-c", code, str(folder)]
        for name, code in LOADERS.items()
        if name == "dicomlens" or (_importable(code) and (targets[name] or not args.quick))
    }  # a quick run: the same series (the same ratios), only the peers with a target
    runs = runs_for(args, least=10)
    times = median_times(commands, runs=runs, warmup=1)
    print(f"{args.slices} slices of 512x512, median of {runs} runs each (fresh process each)")
    print_times(times, ours="dicomlens")
    print("target: <= 0.40x SimpleITK, <= 0.5x dicom-numpy")
    ours = times["dicomlens"].wall
    return record(
        "volume",
        ratios={
            f"dicomlens / {name}": (ours / times[name].wall, target)
            for name, target in targets.items()
            if name in times
        },
        figures={
            "slices": args.slices,
            **{f"{name} ms": timing.wall * 1000 for name, timing in times.items()},
        },
        quick=args.quick,
    )


def _importable(code: str) -> bool:
    module = {"SimpleITK": "SimpleITK", "dicom_numpy": "dicom_numpy"}
    for name, importable in module.items():
        if f"import sys, {name}" in code or f", {name}" in code:
            try:
                __import__(importable)
            except ImportError:
                print(f"skipping the {name} peer: pip install -e '.[bench]'", file=sys.stderr)
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
