"""Which decoder plugin pydicom should use for compressed pixel data: per transfer syntax,
the median time of pydicom.pixels.pixel_array with each installed plugin, in one run.

Uses the one-slice-in-nine-transfer-syntaxes set ../shared/data/dcm_qa_ts (or
$DICOMLENS_TEST_DATA). Plugins that cannot decode a syntax are shown as "-", those
whose pixels differ from the uncompressed slice's as "wrong". The fastest correct
plugin of each syntax is what dicomlens.volume.codecs.PREFERRED_PLUGINS tries first.
Run: .venv/bin/python bench/codecs.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_quick_option
from pydicom.pixels import pixel_array

PLUGINS = ("pylibjpeg", "pillow", "gdcm", "pyjpegls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    root = Path(
        os.environ.get("DICOMLENS_TEST_DATA", Path(__file__).parents[2] / "shared" / "data")
    )
    files = sorted((root / "dcm_qa_ts" / "In").glob("*.dcm"))
    if not files:
        print(f"no dcm_qa_ts data under {root}", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    print(f"{'transfer syntax':<48}" + "".join(f"{p:>12}" for p in PLUGINS) + "   (ms per decode)")
    expected = pixel_array(files[0])  # 1.dcm: explicit VR little endian, uncompressed
    for path in files:
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        cells = [_time(path, plugin, args.runs, expected) for plugin in PLUGINS]
        print(f"{syntax.name[:47]:<48}" + "".join(f"{c:>12}" for c in cells))
    return 0


def _time(path: Path, plugin: str, runs: int, expected: np.ndarray) -> str:  # type: ignore[type-arg]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            pixels = pixel_array(path, decoding_plugin=plugin)
        except Exception:  # the plugin is missing or cannot decode this syntax
            return "-"
        samples.append(time.perf_counter() - start)
        if not np.array_equal(pixels, expected):
            return "wrong"
    return f"{statistics.median(samples) * 1000:.2f}"


if __name__ == "__main__":
    sys.exit(main())
