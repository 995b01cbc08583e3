"""OHIF (``@ohif/app`` from the npm registry) opens a study of the server's catalog
over DICOMweb in headless Chromium and draws its image (issue 16).

The test setup takes the package with ``npm pack`` into a cache folder once
(``$XDG_CACHE_HOME/dicomlens-tests``); without npm, the registry or Chromium the
test is skipped and says why.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from conftest import bundled, chromium, serving
from PIL import Image
from pydicom.uid import generate_uid

from dicomlens.catalog import index
from dicomlens.viewer import create_app

OHIF_VERSION = "3.13.2"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]  # fmt: skip
TOKEN = "ohif-test-token-0123456789"


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dicomlens-tests" / f"ohif-{OHIF_VERSION}"


@pytest.fixture(scope="module")
def ohif_dist() -> Path:
    """OHIF's ``dist`` folder, packed from the npm registry into the cache once."""
    dist = _cache() / "package" / "dist"
    if (dist / "index.html").is_file():
        return dist
    with tempfile.TemporaryDirectory() as work:
        try:
            packed = subprocess.run(
                ["npm", "pack", f"@ohif/app@{OHIF_VERSION}", "--pack-destination", work],
                capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"npm cannot fetch @ohif/app: {exc}")
        tarballs = list(Path(work).glob("*.tgz"))
        if packed.returncode != 0 or not tarballs:
            reason = (packed.stderr.strip().splitlines() or ["no tarball"])[-1]
            pytest.skip(f"npm pack @ohif/app@{OHIF_VERSION} failed: {reason}")
        _cache().parent.mkdir(parents=True, exist_ok=True)
        unpacked = Path(tempfile.mkdtemp(dir=_cache().parent))
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(unpacked, filter="data")
        os.replace(unpacked, _cache())  # whole, or not at all
    return dist


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pydicom.Dataset]:
    """Twelve CT slices of one series, 2.5 mm apart: a gradient over CT_small's pixels."""
    folder = tmp_path_factory.mktemp("ohif")
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    template.StudyInstanceUID, template.SeriesInstanceUID = generate_uid(), generate_uid()
    template.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    base = template.pixel_array.astype(np.int16)
    for k in range(12):
        template.ImagePositionPatient = [-100.0, -100.0, 2.5 * k]
        template.InstanceNumber = k + 1
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.PixelData = (base + 10 * k).tobytes()
        template.save_as(folder / f"{k:02d}.dcm")
    return folder, template


@pytest.fixture(scope="module")
def server(ohif_dist: Path, study: tuple[Path, pydicom.Dataset]) -> Iterator[str]:
    folder, _ = study
    catalog = folder.parent / f"{folder.name}.db"
    index([folder], catalog)
    with serving(lambda port: create_app(catalog, token=TOKEN, port=port, ohif=ohif_dist)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(CHROMIUM_ARGS) as launched:
        yield launched


def test_ohif_draws_a_study_of_the_catalog(
    browser: Any, server: str, study: tuple[Path, pydicom.Dataset], tmp_path: Path
) -> None:
    _, ct = study
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused: list[str] = []
    page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}"))
    page.goto(f"{server}/?token={TOKEN}")  # the study list, and the cookie
    page.wait_for_selector(f"text={ct.StudyDescription}", timeout=60_000)  # found by QIDO-RS
    page.goto(f"{server}/viewer?StudyInstanceUIDs={ct.StudyInstanceUID}")
    # the dimensions in the same call that finds the image: OHIF may re-create its viewports
    drawn = page.wait_for_function(
        """() => {
            const elements = window.cornerstone?.getEnabledElements?.() ?? [];
            const data = elements[0]?.viewport?.getImageData?.();
            return data && Array.from(data.dimensions);
        }""",
        timeout=120_000,
    )
    dimensions = drawn.json_value()
    assert dimensions[:2] == [ct.Columns, ct.Rows]
    for dismissal in ("Skip all", "Confirm and hide"):  # OHIF's tour and notice dim the page
        button = page.get_by_text(dismissal, exact=True)
        if button.count():
            button.first.click()
    time.sleep(2)  # drawn after the data arrive; the overlays fade out
    canvas = page.locator("canvas.cornerstone-canvas").first
    shot = canvas.screenshot(path=str(tmp_path / "ohif.png"))
    picture = np.asarray(Image.open(io.BytesIO(shot)).convert("L")).astype(int)
    assert picture.shape[0] > 200 and picture.shape[1] > 200
    assert picture.std() > 20, "the viewport is blank"
    assert (picture > 100).mean() > 0.05  # the body is bright under OHIF's CT window
    assert not [r for r in refused if "/dicomweb/" in r], refused
    context.close()


def test_ohif_gets_this_servers_config_and_dicomlens_moves_aside(server: str) -> None:
    import httpx2

    with httpx2.Client(base_url=server, params={"token": TOKEN}) as http:
        config = http.get("/app-config.js")
        assert config.status_code == 200
        assert "window.location.origin + '/dicomweb'" in config.text
        route = http.get("/viewer", params={"StudyInstanceUIDs": "1.2.3"})  # OHIF's own route
        assert route.status_code == 200 and "dicomlens_token" in route.headers["set-cookie"]
        assert "'wasm-unsafe-eval'" in route.headers["content-security-policy"]
        own = http.get("/dicomlens")
        assert own.status_code == 200 and "<title>dicomlens" in own.text
        assert "'unsafe-eval'" not in own.headers["content-security-policy"]
    assert httpx2.get(f"{server}/app-config.js").status_code == 401
