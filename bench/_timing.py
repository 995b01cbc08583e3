"""Shared helpers for the benchmarks: run commands repeatedly, interleaved, and take medians."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Sequence


def median_seconds(
    commands: dict[str, Sequence[str]], *, runs: int, warmup: int = 2
) -> dict[str, float]:
    """Median wall time of each command; runs are interleaved so that drift hits all alike."""
    for _ in range(warmup):
        for argv in commands.values():
            _run(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(_run(argv))
    return {name: statistics.median(values) for name, values in samples.items()}


def _run(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start
