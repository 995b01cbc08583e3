"""Fuzzing: damaged variants of real files go through read -> walk every element ->
write -> re-read, and only dicomlens' documented errors may come out.

The budget is small in CI (``DICOMLENS_FUZZ_EXAMPLES``, default 300 per seed file);
run it longer by hand, e.g. ``DICOMLENS_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py``.
A crash found this way becomes a generator in tests/hostile.py.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest
from conftest import Mutation, bundled, damage, mutations, read_both_ways
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomlens.access import iter_elements
from dicomlens.editing import edit
from dicomlens.errors import DicomlensError
from dicomlens.reading import read
from dicomlens.values import value_text

SEEDS = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "image_dfl.dcm"]
EXAMPLES = int(os.environ.get("DICOMLENS_FUZZ_EXAMPLES", "300"))


damages = mutations(["overwrite", "lengths", "cut", "truncate"], longest=4, most=4)


def _round_trip(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.dcm"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd values are expected; failures are not
            try:
                ds = read(path)
            except DicomlensError:
                return
            for match in iter_elements(ds, "(0008,0016)"):
                value_text(match.value)
            for element in ds.iterall():
                value_text(element.value, limit=80)
            out = Path(folder) / "out"
            (result,) = edit([path], set=["PatientName=Fuzzed^Round^Trip"], out=out)
            if result.error is not None or not result.written:
                return
            assert result.target is not None
            again = read(result.target)
            assert str(again.PatientName) == "Fuzzed^Round^Trip"


@pytest.mark.parametrize("seed_name", SEEDS)
def test_damaged_files_raise_only_documented_errors(seed_name: str) -> None:
    seed = bundled(seed_name).read_bytes()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases on every CI run; longer runs explore more
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(changes=damages)
    def check(changes: list[Mutation]) -> None:
        _round_trip(damage(seed, changes))

    check()


@pytest.mark.parametrize("seed_name", SEEDS)
def test_damaged_files_read_the_same_from_memory_and_guarded(seed_name: str) -> None:
    """The quick in-memory read never gives another result (or error) than the guarded one."""
    seed = bundled(seed_name).read_bytes()

    @settings(
        max_examples=max(EXAMPLES // 3, 50),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(changes=damages, header_only=st.booleans())
    def check(changes: list[Mutation], header_only: bool) -> None:
        options = {"stop_before_pixels": True} if header_only else {"defer_size": 1024}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fuzzed.dcm"
            path.write_bytes(damage(seed, changes))
            quick, guarded = read_both_ways(path, decode=(), **options)
        assert quick == guarded

    check()
