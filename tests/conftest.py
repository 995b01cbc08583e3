"""Shared fixtures: pydicom's bundled test files, the shared scanner data, broken files."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import strategies as st

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
REPO = Path(__file__).resolve().parent.parent


def bundled(name: str) -> Path:
    """A test file shipped inside the pydicom wheel (never downloaded)."""
    path = TEST_FILES / name
    assert path.is_file(), f"{name} is not bundled with this pydicom"
    return path


def readable(paths: list[Path], *, skip: frozenset[str] = frozenset()) -> list[Path]:
    """The files among ``paths`` that dicomlens reads (for parametrising tests)."""
    import warnings

    from dicomlens.errors import FileError
    from dicomlens.reading import read

    found = []
    for path in paths:
        if path.name in skip:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # odd values on purpose in some test files
                read(path)
        except FileError:
            continue
        found.append(path)
    return found


def shared_data_root() -> Path:
    return Path(os.environ.get("DICOMLENS_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real scanner data of ../shared/data (dcm_qa_*); skips when absent."""
    root = shared_data_root()
    if not (root / "dcm_qa_ts").is_dir():
        pytest.skip(f"shared scanner data not found at {root} (set DICOMLENS_TEST_DATA)")
    return root


@pytest.fixture
def philips_dwi(shared_data: Path, tmp_path: Path) -> Path:
    """dcm_qa_philips_dwi's classic slices (sequences of undefined length, private
    blocks), unpacked from their .gz files."""
    folder = tmp_path / "philips"
    folder.mkdir()
    for packed in sorted((shared_data / "dcm_qa_philips_dwi/In/cl/DICOM").glob("*.gz")):
        with gzip.open(packed) as source, (folder / packed.stem).open("wb") as target:
            shutil.copyfileobj(source, target)
    return folder


@pytest.fixture
def ct_small() -> Path:
    return bundled("CT_small.dcm")


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a file in a temporary folder."""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def make_ct_series(tmp_path: Path, ct_small: Path) -> Callable[..., Path]:
    """Write a synthetic axial CT series built from CT_small.

    Slice k sits at z = k * spacing (y shifted by tan(tilt) * z for a gantry
    tilt) and its pixels are CT_small's plus k, so every slice differs.
    ``missing`` leaves slices out, ``duplicate`` writes a copy of a slice under
    another file name (same UID), files are named in shuffled order. ``steps`` gives
    the distance from each slice to the next instead of a regular ``spacing``, and
    ``gantry`` tilts the image plane itself about the x axis (a CT gantry tilt: the
    table moves along z, the slices lean), instead of shifting the positions.
    """
    import math
    import random

    import numpy as np
    from pydicom.uid import generate_uid

    def build(
        count: int = 20,
        *,
        spacing: float = 2.5,
        tilt: float = 0.0,
        missing: tuple[int, ...] = (),
        duplicate: tuple[int, ...] = (),
        folder: str = "series",
        seed: int = 7,
        steps: tuple[float, ...] = (),
        gantry: float = 0.0,
    ) -> Path:
        out = tmp_path / folder
        out.mkdir()
        template = pydicom.dcmread(ct_small)
        template.SeriesInstanceUID = generate_uid()
        lean = math.radians(gantry)
        template.ImageOrientationPatient = [1, 0, 0, 0, math.cos(lean), math.sin(lean)]
        base = template.pixel_array.astype(np.int16)
        depths = np.concatenate(([0.0], np.cumsum(steps))) if steps else None
        count = len(depths) if depths is not None else count
        names = [f"{n:03d}" for n in range(count)]
        random.Random(seed).shuffle(names)
        for k in range(count):
            if k in missing:
                continue
            ds = template.copy()
            z = float(depths[k]) if depths is not None else k * spacing
            ds.ImagePositionPatient = [-100.0, -100.0 + z * math.tan(math.radians(tilt)), z]
            ds.InstanceNumber = k + 1
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PixelData = (base + k).astype(base.dtype).tobytes()
            ds.save_as(out / f"IM{names[k]}.dcm")
            if k in duplicate:
                ds.save_as(out / f"copy_of_{names[k]}.dcm")
        return out

    return build


Mutation = tuple[str, int, bytes]  # kind, where, bytes


def mutations(kinds: list[str], *, longest: int, most: int) -> st.SearchStrategy[list[Mutation]]:
    """Lists of up to ``most`` changes for :func:`damage`, payloads up to ``longest`` bytes."""
    change = st.tuples(
        st.sampled_from(kinds), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=longest)
    )
    return st.lists(change, min_size=1, max_size=most)


_LENGTHS = [b"\xff\xff\xff\xff", b"\xff\xff\x00\x00", b"\x01\x00\x00\x00", b"\x00\x00\x00\x80"]


def damage(seed: bytes, changes: list[Mutation]) -> bytes:
    """The seed with a few bytes overwritten (some with plausible lengths), inserted,
    a slice cut out or the end cut off; positions fall after the preamble."""
    data = bytearray(seed)
    for kind, where, payload in changes:
        at = 128 + where % max(1, len(data) - 128)
        if kind == "overwrite":
            data[at : at + len(payload)] = payload
        elif kind == "lengths":
            data[at : at + 4] = _LENGTHS[payload[0] % len(_LENGTHS)]
        elif kind == "insert":
            data[at:at] = payload
        elif kind == "cut":
            del data[at : at + 1 + payload[0] % 64]
        else:
            del data[at:]
    return bytes(data)


def truncate_inside(path: Path, tag: int = 0x00080018) -> None:
    """Cut a file three bytes into the value of ``tag`` (SOP Instance UID by default),
    so that it is damaged wherever its variable-length values put that element."""
    value_start = pydicom.dcmread(path).get_item(tag).value_tell
    path.write_bytes(path.read_bytes()[: value_start + 3])


def read_both_ways(path: Path, **options: object) -> tuple[object, object]:
    """``read`` as it runs (from memory when it can) and forced through the guarded
    file: each outcome (every element as read, the meta, or the error) with the
    warnings it gave."""
    import warnings

    from dicomlens import reading

    results = []
    for quick in (True, False):
        with warnings.catch_warnings(record=True) as noticed, pytest.MonkeyPatch.context() as patch:
            warnings.simplefilter("always")
            if not quick:
                patch.setattr(reading.files, "_read_in_memory", lambda *args: None)
            outcome = _read_outcome(path, **options)
        results.append((outcome, sorted(str(w.message) for w in noticed)))
    return results[0], results[1]


def _read_outcome(path: Path, **options: object) -> object:
    from dicomlens.errors import FileError
    from dicomlens.reading import read

    try:
        ds = read(path, **options)  # type: ignore[arg-type]
    except FileError as exc:
        return ("error", type(exc).__name__, str(exc))
    return _as_read(ds), _as_read(ds.file_meta), ds.preamble, ds.filename, ds.original_encoding


def _as_read(ds: pydicom.Dataset) -> list[tuple[object, ...]]:
    """The elements as they were read (raw: tag, VR, length, bytes, position), unconverted;
    a sequence parsed while reading (of undefined length) item by item, positions included."""
    return [_element_as_read(raw) for raw in ds.values()]


def _element_as_read(
    raw: pydicom.dataelem.RawDataElement | pydicom.DataElement,
) -> tuple[object, ...]:
    if isinstance(raw, pydicom.dataelem.RawDataElement):
        return (raw.tag, raw.VR, raw.length, raw.value, raw.value_tell)
    if raw.VR == "SQ" and raw.is_undefined_length:
        items = [(item.file_tell, _as_read(item)) for item in raw.value]
        return (raw.tag, raw.VR, raw.file_tell, items)
    return (raw.tag, raw.VR, repr(raw.value))


CHROMIUM = Path("/usr/bin/chromium")


@contextlib.contextmanager
def serving(make_app: Callable[[int], Any]) -> Iterator[int]:
    """``make_app(port)`` served by uvicorn in a thread on a free loopback port, until
    the block ends; the port."""
    import uvicorn

    from dicomlens.viewer import listen

    listening = listen()
    port = int(listening.getsockname()[1])
    running = uvicorn.Server(uvicorn.Config(make_app(port), log_level="error"))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    for _ in range(200):
        if running.started:
            break
        time.sleep(0.02)
    try:
        yield port
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium(args: list[str]) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (the test is skipped without either)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield launched
        finally:
            launched.close()


def numbered_copies(folder: Path, count: int) -> Path:
    """``count`` copies of CT_small in ``folder`` as one series, numbered, new SOP UIDs."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    for number in range(count):
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number + 1}"
        template.InstanceNumber = number + 1
        template.save_as(folder / f"{number:05d}.dcm")
    return folder


def edited_copy(source: Path, target: Path, edit: Callable[[pydicom.Dataset], None]) -> Path:
    """The DICOM files under ``source`` saved into ``target`` (by name) after ``edit``
    changed each: a real series turned into the case a test needs."""
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(target / path.name)
    return target


def replace_nested(ds: pydicom.Dataset, tag: int, old: Any, new: Any) -> None:
    """Replace ``old`` by ``new`` in the value of every element ``tag``, nested ones
    included (Siemens XA keeps its private fields in functional groups)."""
    for element in ds.iterall():
        if element.tag == tag:
            element.value = element.value.replace(old, new)
