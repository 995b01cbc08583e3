"""Write a small synthetic CT series for the demo, built from pydicom's bundled CT_small.dcm.

Usage: python scripts/make_sample_series.py OUTDIR [--slices N]
Slices are 2.5 mm apart along z, with shuffled file names (as downloads often are).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--slices", type=int, default=24)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = "synthetic abdomen"
    base = ds.pixel_array.astype(np.int16)
    names = list(range(1, args.slices + 1))
    random.Random(1).shuffle(names)
    for k in range(args.slices):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-158.135803, -179.035797, -75.7 + 2.5 * k]
        shifted = np.roll(base, shift=k, axis=0)
        ds.PixelData = shifted.astype(np.int16).tobytes()
        ds.save_as(args.outdir / f"1-{names[k]:03d}.dcm")
    print(f"{args.slices} slices written to {args.outdir}")


if __name__ == "__main__":
    main()
