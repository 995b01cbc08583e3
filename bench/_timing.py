"""Shared helpers for the benchmarks: run commands repeatedly, interleaved, and take medians.

Both wall time and CPU time (user + system, from the child's rusage) are kept:
CPU time is steadier on a shared or virtual machine.
"""

from __future__ import annotations

import compileall
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import dicomlens


class Timing(NamedTuple):
    wall: float
    cpu: float


def median_times(
    commands: dict[str, Sequence[str]],
    *,
    runs: int,
    warmup: int = 2,
    prepare: Callable[[str], None] | None = None,
) -> dict[str, Timing]:
    """Median wall and CPU seconds of each command; rounds interleave the commands in a
    random order so that drift and cache effects hit all alike. dicomlens is byte-compiled
    first, as `pip install` leaves it (an editable install under PYTHONDONTWRITEBYTECODE
    would compile every module in every run, while the peers' are compiled).
    ``prepare(name)`` runs untimed before each run of a command (to empty its output
    folder, say)."""
    compileall.compile_dir(Path(dicomlens.__file__).parent, quiet=1)

    def run(name: str) -> Timing:
        if prepare is not None:
            prepare(name)
        return _run(commands[name])

    for _ in range(warmup):
        for name in commands:
            run(name)
    samples: dict[str, list[Timing]] = {name: [] for name in commands}
    order = list(commands)
    for _ in range(runs):
        random.shuffle(order)  # no command always runs right after the same one
        for name in order:
            samples[name].append(run(name))
    return {
        name: Timing(
            statistics.median(t.wall for t in values), statistics.median(t.cpu for t in values)
        )
        for name, values in samples.items()
    }


def _run(argv: Sequence[str]) -> Timing:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, list(argv))
    return Timing(wall, usage.ru_utime + usage.ru_stime)


def print_times(times: dict[str, Timing], *, ours: str) -> None:
    """One line per command, then the ratio of ``ours`` to each of the others."""
    width = max(len(name) for name in times) + 2
    for name, timing in times.items():
        print(
            f"{name:<{width}} wall {timing.wall * 1000:8.1f} ms   cpu {timing.cpu * 1000:8.1f} ms"
        )
    for name, timing in times.items():
        if name != ours:
            print(f"ratio {ours}/{name}: wall {times[ours].wall / timing.wall:.2f}x")


def add_quick_option(parser: Any) -> None:
    """``--quick``: fewer runs, and smaller inputs where they give the same ratios (where
    start-up would weigh more on a smaller input, the same input with only the peers that
    have a target), for make bench-quick."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 runs, smaller inputs only where the ratios stay the same, failing when a "
        "ratio misses its target by more than 10 %% (make bench-quick)",
    )


def runs_for(args: Any, *, least: int) -> int:
    """Timed runs: 3 for a quick run, else the asked number but at least ``least``."""
    return 3 if args.quick else max(args.runs, least)


WORK = Path(__file__).parent / "_work"


def work_folder(name: str, count: int) -> tuple[Path, bool]:
    """``bench/_work/NAME`` (git ignores it), and whether it already holds ``count``
    files made by an earlier run; otherwise it is emptied for the caller to fill."""
    folder = WORK / name
    if folder.is_dir() and sum(1 for _ in folder.iterdir()) == count:
        return folder, True
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder, False
