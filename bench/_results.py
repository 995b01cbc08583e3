"""Benchmark results as JSON lines in bench/results/, so that no figure outlives its code.

Every benchmark ends with :func:`record`: one line per run in
``bench/results/BENCHMARK.jsonl`` with its figures, its ratios against the peers and
their targets, the commit, the date and a summary of the machine. ``bench/report.py``
(``make bench-report``) renders the latest full run of each into the READMEs.
A quick run (``--quick``, what ``make bench-quick`` runs) fails when a ratio misses its
target by more than 10 %.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
QUICK_SLACK = 1.10
"""A quick run fails when a ratio is worse than its target by more than this factor."""


def record(
    benchmark: str,
    *,
    ratios: dict[str, tuple[float, float | None]],
    figures: dict[str, float],
    quick: bool,
    higher_is_better: frozenset[str] = frozenset(),
) -> int:
    """Append one result line; the exit status for the benchmark (1: a quick run missed).

    ``ratios`` maps a name to (value, target): a time ratio against a peer, at most the
    target (or at least, for names in ``higher_is_better``; None: reported only);
    ``figures`` are the measured numbers (ms, files/s) behind them.
    """
    RESULTS.mkdir(exist_ok=True)
    line = {
        "benchmark": benchmark,
        "quick": quick,
        "ratios": {
            name: {
                "value": round(value, 4),
                "target": target,
                "better": "higher" if name in higher_is_better else "lower",
            }
            for name, (value, target) in ratios.items()
        },
        "figures": {name: round(value, 3) for name, value in figures.items()},
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    with (RESULTS / f"{benchmark}.jsonl").open("a") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
    missed = [
        (name, value, target)
        for name, (value, target) in ratios.items()
        if target is not None and _misses(value, target, higher=name in higher_is_better)
    ]
    for name, value, target in missed:
        print(f"{benchmark}: {name} {value:.2f} misses its target {target:g} by more than 10 %")
    return 1 if quick and missed else 0


def _misses(value: float, target: float, *, higher: bool) -> bool:
    return value < target / QUICK_SLACK if higher else value > target * QUICK_SLACK


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    versions = {}
    for package in ("pydicom", "numpy", "nibabel"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        **versions,
    }


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "src"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return found.stdout.strip() + ("+changes" if dirty else "")
