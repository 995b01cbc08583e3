"""The viewer: its API in process, its security rules, and the page in real headless
Chromium (Debian's, driven by Playwright) when it is installed (RELIABILITY.md 7.6)."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from conftest import bundled, chromium, serving
from pydicom.filewriter import write_file_meta_info
from pydicom.pixels import apply_windowing
from starlette.testclient import TestClient

from dicomlens.catalog import Catalog, index
from dicomlens.viewer import create_app, listen
from dicomlens.viewer.data import Library
from dicomlens.volume import load_slice

XSS = "<img src=x onerror=alert(1)>"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CT series of 12 slices, MR_small, a file whose PatientName is a script, and a
    file replaced by a deflate bomb after it was indexed."""
    root = tmp_path_factory.mktemp("viewer")
    series = root / "ct"
    series.mkdir()
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    template.SeriesInstanceUID = pydicom.uid.generate_uid()
    template.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    template.WindowCenter, template.WindowWidth = [40, -600], [400, 1500]
    template.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG WINDOW"]
    base = template.pixel_array.astype(np.int16)
    for k in range(12):
        template.ImagePositionPatient = [-100.0, -100.0, 2.5 * k]
        template.InstanceNumber = k + 1
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = (
            pydicom.uid.generate_uid()
        )
        template.PixelData = (base + 10 * k).tobytes()
        template.save_as(series / f"{k:02d}.dcm")
    split = root / "split"  # five axial slices and a sagittal localizer in one series
    split.mkdir()
    template.SeriesInstanceUID = pydicom.uid.generate_uid()
    template.SeriesDescription = "with localizer"
    for k in range(6):
        if k == 5:  # the localizer, with a comment the others lack
            template.ImageComments = "scout"
            template.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
            template.ImagePositionPatient = [0.0, -100.0, 100.0]
        else:
            template.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            template.ImagePositionPatient = [-100.0, -100.0, 5.0 * k]
        template.InstanceNumber = k + 1
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = (
            pydicom.uid.generate_uid()
        )
        template.save_as(split / f"{k:02d}.dcm")
    colour = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm"))  # RGB, RLE, two frames
    colour.SeriesDescription = "colour"
    colour.save_as(root / "colour.dcm")
    shutil.copy(bundled("MR_small.dcm"), root / "mr.dcm")
    hostile = pydicom.dcmread(bundled("MR_small.dcm"))
    hostile.PatientName = XSS
    hostile.PatientID = "xss"
    hostile.StudyInstanceUID = hostile.SeriesInstanceUID = pydicom.uid.generate_uid()
    hostile.SOPInstanceUID = pydicom.uid.generate_uid()
    hostile.save_as(root / "xss.dcm")
    bomb = root / "bomb.dcm"
    shutil.copy(bundled("CT_small.dcm"), bomb)
    db = root / "catalog.db"
    index([root], db)
    bomb.write_bytes(_deflate_bomb())
    return db


def _deflate_bomb() -> bytes:
    """A deflated-syntax file whose data set inflates to 300 MB of zeros (RELIABILITY R10)."""
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    head = BytesIO()
    head.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    element = b"\x09\x00\x10\x10OB\x00\x00" + (300 << 20).to_bytes(4, "little")
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = squeeze.compress(element)
    zeros = bytes(1 << 20)
    for _ in range(300):
        body += squeeze.compress(zeros)
    return head.getvalue() + body + squeeze.flush()


PORT = 8123
TOKEN = "test-token"


@pytest.fixture(scope="module")
def client(catalog: Path) -> TestClient:
    app = create_app(str(catalog), token=TOKEN, port=PORT)
    return TestClient(app, base_url=f"http://127.0.0.1:{PORT}", raise_server_exceptions=False)


def _get(client: TestClient, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return client.get(path, params={**(params or {}), "token": TOKEN}, **kwargs)


def _ct_series(client: TestClient) -> dict[str, Any]:
    tree = _get(client, "/api/tree").json()
    for patient in tree:
        for study in patient["studies"]:
            for series in study["series"]:
                if series["instances"] == 12:
                    return series  # type: ignore[no-any-return]
    raise AssertionError("the CT series is not in the tree")


def test_tree_lists_every_series_with_counts(client: TestClient, catalog: Path) -> None:
    tree = _get(client, "/api/tree").json()
    counts = sorted(s["instances"] for p in tree for st in p["studies"] for s in st["series"])
    with Catalog(catalog, readonly=True) as db:
        assert len(counts) == db.counts()["series"]
    assert 12 in counts
    assert XSS in [p["name"] for p in tree]  # JSON carries it as text; the page escapes it


def test_frames_are_modality_values(client: TestClient, catalog: Path) -> None:
    info = _get(client, f"/api/series/{_ct_series(client)['id']}").json()
    (part,) = info["parts"]
    assert [s["number"] for s in part["slices"]] == list(range(1, 13))
    assert part["orientation"] == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    assert part["report"]["verdict"] == "ok"
    middle = part["slices"][6]
    response = _get(client, f"/api/frame/{middle['instance']}/0")
    assert response.status_code == 200 and response.headers["x-dtype"] == "int16"
    values = np.frombuffer(response.content, "<i2").reshape(128, 128)
    expected = load_slice(Library(catalog).slice_info(middle["instance"], 0))
    np.testing.assert_array_equal(values, expected)
    names = [p["name"] for p in info["presets"]]
    assert names[:3] == ["SOFT TISSUE", "LUNG WINDOW", "brain"] and "lung" in names
    assert "00200032" in info["varying"] and "00280010" not in info["varying"]


def test_elements_that_vary_across_a_series(client: TestClient) -> None:
    tree = _get(client, "/api/tree").json()
    (series,) = [s for p in tree for st in p["studies"] for s in st["series"]
                 if s["description"] == "with localizer"]  # fmt: skip
    varying = _get(client, f"/api/series/{series['id']}").json()["varying"]
    assert {"00200037", "00200032", "00204000", "00080018"} <= set(varying)  # 00204000: one has it
    assert "00280010" not in varying and "00080060" not in varying


def test_colour_frames_and_thumbnails_are_rgb(client: TestClient) -> None:
    tree = _get(client, "/api/tree").json()
    (series,) = [s for p in tree for st in p["studies"] for s in st["series"]
                 if s["description"] == "colour"]  # fmt: skip
    (part,) = _get(client, f"/api/series/{series['id']}").json()["parts"]
    response = _get(client, f"/api/frame/{part['slices'][0]['instance']}/0")
    assert response.status_code == 200 and response.headers["x-dtype"] == "rgb8"
    rgb = np.frombuffer(response.content, np.uint8).reshape(100, 100, 3)
    expected = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm")).pixel_array[0]
    np.testing.assert_array_equal(rgb, expected)  # the first frame
    thumbnail = _get(client, f"/api/series/{series['id']}/thumbnail.png")
    assert thumbnail.status_code == 200
    from PIL import Image

    assert Image.open(BytesIO(thumbnail.content)).mode == "RGB"


def test_tag_search_by_any_notation(client: TestClient) -> None:
    series = _get(client, f"/api/series/{_ct_series(client)['id']}").json()
    instance = series["parts"][0]["slices"][0]["instance"]
    for search in ("window center", "(0028,1050)", "0x00281050", "WindowCenter"):
        rows = _get(client, f"/api/instance/{instance}/tags", params={"q": search}).json()
        assert "(0028,1050)" in [r["tag"] for r in rows], search
    rows = _get(client, f"/api/instance/{instance}/tags", params={"q": "GE MEDICAL"}).json()
    assert [r["keyword"] for r in rows] == ["Manufacturer"]


def test_thumbnail_is_a_png(client: TestClient) -> None:
    response = _get(client, f"/api/series/{_ct_series(client)['id']}/thumbnail.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_security_rules(client: TestClient) -> None:
    assert client.get("/api/tree").status_code == 401  # no token
    assert client.get("/api/tree?token=wrong").status_code == 401
    wrong_host = _get(client, "/api/tree", headers={"Host": "evil.example:8123"})
    assert wrong_host.status_code == 403  # DNS rebinding
    assert client.post(f"/api/tree?token={TOKEN}").status_code == 405
    for path in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                 "/static/..%5c..%5cetc%5cpasswd", "/api/frame/..%2f..%2fetc%2fpasswd/0",
                 "/api/frame/99999/0", "/api/series/abc"):  # fmt: skip
        response = _get(client, path)
        assert response.status_code == 404, path
        assert b"root:" not in response.content
    assert not 300 <= _get(client, "//evil.com").status_code < 400  # no open redirect
    page = _get(client, "/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # scripts are files, never inline


def test_hostile_file_gives_an_error_and_the_server_goes_on(
    client: TestClient, catalog: Path
) -> None:
    with Catalog(catalog, readonly=True) as db:
        (instance,) = db.execute(
            "SELECT i.id FROM instances i JOIN files f ON f.id = i.file "
            "WHERE f.path LIKE '%bomb.dcm'"
        ).fetchone()
    response = _get(client, f"/api/frame/{instance}/0")
    assert response.status_code == 422
    assert "deflated data set expands beyond the limit" in response.json()["error"]
    assert "/" not in response.json()["error"]  # no paths, no traceback
    assert _get(client, "/api/tree").status_code == 200


# ---------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(catalog: Path) -> Iterator[str]:
    with serving(lambda port: create_app(str(catalog), token=TOKEN, port=port)) as port:
        yield f"http://127.0.0.1:{port}/?token={TOKEN}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(CHROMIUM_ARGS) as launched:
        yield launched


@pytest.fixture
def page(browser: Any, server: str, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 800})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.goto(server)
    opened.wait_for_selector("button.series")
    yield opened
    opened.screenshot(path=str(tmp_path / "view.png"))  # for looking at, outside the repo
    assert dialogs == []  # no script from tag values ever ran
    context.close()


def _open_ct(page: Any) -> None:
    page.click("button.series:has-text('(12)')")
    page.wait_for_selector("#window-label:not(:empty)")


def _label(page: Any) -> str:
    return str(page.text_content("#slice-label"))


def _wait(page: Any, condition: Callable[[], bool]) -> None:
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("condition not met in 5 s")


def test_page_lists_the_series(page: Any, client: TestClient) -> None:
    tree = _get(client, "/api/tree").json()
    count = sum(len(st["series"]) for p in tree for st in p["studies"])
    assert page.locator("button.series").count() == count


def test_wheel_and_keys_scroll_slices(page: Any) -> None:
    _open_ct(page)
    assert _label(page).startswith("slice 7 / 12")
    page.hover("#image")
    page.mouse.wheel(0, 100)
    _wait(page, lambda: _label(page).startswith("slice 8 / 12"))
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    _wait(page, lambda: _label(page).startswith("slice 6 / 12"))


def test_canvas_after_a_preset_matches_pydicom_windowing(page: Any, catalog: Path) -> None:
    _open_ct(page)
    page.click("#presets button:has-text('lung')")
    _wait(page, lambda: "[-600, 1500]" in str(page.text_content("#window-label")))
    grey = np.array(
        page.evaluate(
            "() => Array.from(document.getElementById('image').getContext('2d')"
            ".getImageData(0, 0, 128, 128).data.filter((_, i) => i % 4 === 0))"
        ),
        dtype=np.int16,
    ).reshape(128, 128)
    state = page.evaluate("() => window.dicomlens.state.series.parts[0].slices[6]")
    values = load_slice(Library(catalog).slice_info(state["instance"], 0))
    voi = pydicom.Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored, voi.PixelRepresentation = 16, 1  # output range: -32768 to 32767
    voi.WindowCenter, voi.WindowWidth = -600, 1500
    windowed = apply_windowing(values.astype(np.float64), voi)
    expected = (windowed + 32768) / 65535 * 255  # scaled to 8 bits
    assert np.abs(grey - np.round(expected)).max() <= 1


def test_a_split_series_opens_on_its_largest_part_and_shows_the_others(page: Any) -> None:
    page.click("button.series:has-text('with localizer')")
    page.wait_for_selector("#part:not([hidden])")
    options = page.locator("#part option").all_text_contents()
    assert len(options) == 2 and "5 slices" in " ".join(options)
    _wait(page, lambda: _label(page).startswith("slice 3 / 5"))  # the axial part, not the localizer
    assert "part" in str(page.text_content("#series-title"))
    localizer = next(n for n, text in enumerate(options) if "1 slice " in text)
    page.select_option("#part", str(localizer))
    _wait(page, lambda: _label(page).startswith("slice 1 / 1"))
    assert page.text_content("#edge-left") != ""  # orientation letters of the sagittal part
    page.click("button.series:has-text('(12)')")
    page.wait_for_selector("#part[hidden]", state="attached")


def test_a_thumbnail_that_fails_keeps_the_size_of_one_that_loads(page: Any) -> None:
    # else the tree shifts under the pointer while thumbnails load, and a click opens another series
    page.wait_for_selector("span.thumb")
    failed = page.locator("span.thumb").first.bounding_box()
    loaded = page.locator("img.thumb").first.bounding_box()
    assert (failed["width"], failed["height"]) == (loaded["width"], loaded["height"])


def test_a_series_answered_late_does_not_replace_the_one_opened_after_it(page: Any) -> None:
    held: list[Any] = []
    # the first series asked for is held back, the next ones pass
    page.route("**/api/series/*?token=*",
               lambda route: route.continue_() if held else held.append(route))  # fmt: skip
    page.click("button.series:has-text('with localizer')")
    _wait(page, lambda: len(held) == 1)
    _open_ct(page)
    held[0].continue_()  # the earlier series' answer arrives last
    page.wait_for_timeout(300)
    assert _label(page).startswith("slice 7 / 12")
    assert page.is_hidden("#part")


def test_colour_image_is_drawn_as_the_file_holds_it(page: Any) -> None:
    page.click("button.series:has-text('colour')")
    _wait(page, lambda: page.text_content("#window-label") == "colour")
    drawn = np.array(
        page.evaluate(
            "() => Array.from(document.getElementById('image').getContext('2d')"
            ".getImageData(0, 0, 100, 100).data)"
        ),
        dtype=np.uint8,
    ).reshape(100, 100, 4)
    # the two frames are the series' slices: it opens on the middle one, the second
    expected = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm")).pixel_array[1]
    np.testing.assert_array_equal(drawn[:, :, :3], expected)  # exactly
    assert (drawn[:, :, 3] == 255).all()


def test_tag_search_finds_window_center_by_name(page: Any) -> None:
    _open_ct(page)
    page.fill("#search", "window center")
    _wait(page, lambda: page.locator("#tags tr").count() == 1)
    assert page.text_content("#tags tr td") == "(0028,1050)"


def test_script_in_a_patient_name_is_shown_as_text(page: Any) -> None:
    assert page.locator(f"text={XSS}").count() >= 1
    assert page.locator("img[src='x']").count() == 0


def test_view_command_prints_the_address_and_stops_on_ctrl_c(catalog: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    child = subprocess.Popen(
        [sys.executable, "-m", "dicomlens", "view", "--catalog", str(catalog), "--no-browser"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        assert line.startswith("dicomlens: viewer at http://127.0.0.1:")
        url = line.split()[3]
        # Asked the moment it is announced, once: the socket already listens.
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) in (0, 130)
        assert "Traceback" not in child.stderr.read()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        if child.stderr is not None:
            child.stderr.close()


def test_hostile_file_shows_an_error_tile(page: Any) -> None:
    page.click("button.series:has-text('CT (1)')")
    page.wait_for_selector("#error-tile:not([hidden])")
    assert "expands beyond the limit" in str(page.text_content("#error-tile"))
    page.click("button.series:has-text('(12)')")  # the page and the server go on
    page.wait_for_selector("#error-tile", state="hidden")


def test_a_taken_port_is_one_clear_line(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dicomlens.cli import main

    with listen() as taken:
        port = taken.getsockname()[1]
        code = main(["view", "--catalog", str(catalog), "--port", str(port), "--no-browser"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"dicomlens: error: cannot listen on 127.0.0.1:{port}: ")
    assert err.count("\n") == 1


@pytest.mark.shared_data
def test_mosaic_tiles_are_slices(shared_data: Path, tmp_path: Path) -> None:
    """A Siemens EPI series of two mosaic files: ten slices in the viewer (five tiles a
    file), each tile's values those of the unpacked volume."""
    import warnings

    from dicomlens.catalog import index
    from dicomlens.scanning import scan

    folder = shared_data / "dcm_qa_nih/In/20180918Si/mr_0003"
    db = tmp_path / "mosaic.db"
    index([folder], db)
    client = TestClient(create_app(str(db), token=TOKEN, port=PORT),
                        base_url=f"http://127.0.0.1:{PORT}")  # fmt: skip
    (patient,) = _get(client, "/api/tree").json()
    (series,) = patient["studies"][0]["series"]
    (part,) = _get(client, f"/api/series/{series['id']}").json()["parts"]
    assert [s["frame"] for s in part["slices"]] == [0, 1, 2, 3, 4] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (scanned,) = scan([folder])
        volume = scanned.volume()
    for number, entry in enumerate(part["slices"]):
        response = _get(client, f"/api/frame/{entry['instance']}/{entry['frame']}")
        assert response.status_code == 200
        shape = (int(response.headers["x-rows"]), int(response.headers["x-columns"]))
        values = np.frombuffer(response.content, response.headers["x-dtype"]).reshape(shape)
        np.testing.assert_array_equal(values, volume.array[:, :, number % 5, number // 5].T)
