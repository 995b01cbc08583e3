"""Render the latest result of every benchmark (bench/results/*.jsonl) into the READMEs.

The table between the ``<!-- bench-results -->`` markers of README.md and
bench/README.md is replaced; nothing else is touched. A benchmark's latest full run
is shown, or its latest quick run (marked) when it has never run in full.
Run: .venv/bin/python bench/report.py (make bench-report)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"
START, END = "<!-- bench-results -->", "<!-- /bench-results -->"
TARGETS = (BENCH.parent / "README.md", BENCH / "README.md")


def latest() -> list[dict[str, Any]]:
    """The latest full run of each benchmark (else its latest quick run), by name."""
    chosen = []
    for path in sorted(RESULTS.glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        full = [line for line in lines if not line["quick"]]
        if lines:
            chosen.append((full or lines)[-1])
    return chosen


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| benchmark | ratio | measured | target | | commit, date |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        when = f"{result['commit']}, {result['date'][:10]}" + (
            " (quick)" if result["quick"] else ""
        )
        for name, ratio in result["ratios"].items():
            value, target = ratio["value"], ratio["target"]
            if target is None:
                verdict, wanted = "", "reported"
            else:
                higher = ratio["better"] == "higher"
                met = value >= target if higher else value <= target
                verdict, wanted = (
                    ("met" if met else "**not met**"),
                    f"{'>=' if higher else '<='} {target:g}",
                )
            rows.append(
                f"| {result['benchmark']} | {name} | {value:.2f} | {wanted} | {verdict} | {when} |"
            )
    return "\n".join(rows)


def main() -> int:
    results = latest()
    if not results:
        print(f"no results in {RESULTS}: run make bench or make bench-quick first", file=sys.stderr)
        return 2
    block = f"{START}\n{table(results)}\n{END}"
    for target in TARGETS:
        text = target.read_text()
        if START not in text or END not in text:
            print(f"{target}: no {START} ... {END} markers", file=sys.stderr)
            return 2
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        target.write_text(before + block + after)
        ratios = sum(len(result["ratios"]) for result in results)
        print(f"{target}: {ratios} ratios of {len(results)} benchmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
