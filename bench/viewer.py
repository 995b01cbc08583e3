"""The viewer in headless Chromium: a 500-slice 512x512 CT series (bench/volume.py's),
indexed, served, and timed in the page with performance.now():

* first image: from the click on the series to its first slice on the canvas;
* next slice, warm: request, 16-bit transfer and drawing of a slice not seen before,
  once the server has read the series (median of 50);
* re-windowing: drawing the current slice with another window (median of 50).

Targets (issue 7): next slice <= 30 ms, re-windowing <= 2 ms, first image <= 1 s.
Run: .venv/bin/python bench/viewer.py (needs Debian's chromium: apt-get install chromium)
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import record
from _timing import add_quick_option
from volume import make_series

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    import argparse

    import uvicorn
    from playwright.sync_api import sync_playwright

    from dicomlens.catalog import index
    from dicomlens.viewer import create_app, listen

    parser = argparse.ArgumentParser(description=__doc__)
    add_quick_option(parser)
    quick = parser.parse_args().quick
    series = make_series(100 if quick else 500)
    catalog = series.parent / "viewer_catalog.db"
    for stale in series.parent.glob("viewer_catalog.db*"):  # indexed by this version
        stale.unlink()
    index([series], catalog)
    listening = listen()
    port = listening.getsockname()[1]
    app = create_app(str(catalog), token="bench", port=port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/?token=bench")
        page.wait_for_selector("button.series")
        start = time.perf_counter()
        page.click("button.series")
        page.wait_for_selector("#window-label:not(:empty)")
        first = time.perf_counter() - start
        steps = [page.evaluate("async () => { const t = performance.now();"
                               " await window.dicomlens.step(1, false);"
                               " return performance.now() - t; }") for _ in range(50)]  # fmt: skip
        draws = [page.evaluate("() => { const s = window.dicomlens.state; s.center += 1;"
                               " const t = performance.now(); window.dicomlens.draw();"
                               " return performance.now() - t; }") for _ in range(50)]  # fmt: skip
        browser.close()
    server.should_exit = True
    print(f"{100 if quick else 500} slices of 512x512 CT in headless Chromium")
    print(f"first image after the click: {first * 1000:7.1f} ms (target <= 1000 ms)")
    print(f"next slice, warm (median):   {statistics.median(steps):7.1f} ms (target <= 30 ms)")
    print(f"re-windowing (median):       {statistics.median(draws):7.1f} ms (target <= 2 ms)")
    step, draw = statistics.median(steps), statistics.median(draws)
    return record(  # no peer: the figures against their targets (ms / target ms)
        "viewer",
        ratios={
            "first image / 1 s": (first, 1.0),
            "next slice / 30 ms": (step / 30, 1.0),
            "re-windowing / 2 ms": (draw / 2, 1.0),
        },
        figures={"first image ms": first * 1000, "next slice ms": step, "re-windowing ms": draw},
        quick=quick,
    )


if __name__ == "__main__":
    sys.exit(main())
