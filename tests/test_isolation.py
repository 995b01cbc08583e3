"""Risky work in a child process: results come back, crashes, hangs and runaway
allocations become one error and leave the caller running (RELIABILITY R22/R23)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from conftest import bundled

from dicomlens.errors import CorruptDicomError, SeriesError
from dicomlens.isolation import run_isolated
from dicomlens.reading import read
from dicomlens.series import slice_infos
from dicomlens.volume.pixels import MAX_IMAGE_BYTES, stored_frame


def _crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)  # as a native decoder would die


def _hang() -> None:
    time.sleep(60)


def _allocate() -> bytes:
    return bytes(8 << 30)


def _refuse() -> None:
    raise CorruptDicomError("bad.dcm: truncated")


def test_result_comes_back_equal() -> None:
    path = bundled("JPEG2000.dcm")
    (info,) = slice_infos(read(path, stop_before_pixels=True), path)
    isolated = run_isolated(stored_frame, info, MAX_IMAGE_BYTES, what=str(path))
    np.testing.assert_array_equal(isolated, read(path).pixel_array)


def test_crash_hang_and_memory_become_errors() -> None:
    crashed = r"^x\.dcm: the decoder crashed on this data \(exit -11\)$"
    with pytest.raises(SeriesError, match=crashed):
        run_isolated(_crash, what="x.dcm")
    start = time.monotonic()
    with pytest.raises(SeriesError, match=r"^x\.dcm: took longer than 0\.5 s; stopped$"):
        run_isolated(_hang, what="x.dcm", seconds=0.5)
    assert time.monotonic() - start < 5
    with pytest.raises(SeriesError, match="needs more memory than allowed"):
        run_isolated(_allocate, what="x.dcm", memory=256 << 20)
    with pytest.raises(CorruptDicomError, match=r"^bad\.dcm: truncated$"):
        run_isolated(_refuse, what="bad.dcm")
    assert run_isolated(sum, [1, 2], what="still working") == 3
