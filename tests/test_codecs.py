"""Every compressed syntax decodes: the preferred plugin first, the others when it
refuses; lossless results equal GDCM's, lossy ones DCMTK's within one grey level."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import TEST_FILES, readable
from pydicom import uid
from pydicom.pixels.decoders.base import get_decoder

from dicomlens.volume.codecs import PREFERRED_PLUGINS, decode_pixel_data, plugins_for

LOSSLESS = {
    uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEG2000Lossless,
    uid.RLELossless,
}  # fmt: skip


def _compressed_files() -> list[Path]:
    folders = [TEST_FILES]
    try:
        import data_store

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    found = []
    for path in readable(sorted(p for folder in folders for p in folder.glob("*.dcm"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        syntax = ds.file_meta.get("TransferSyntaxUID")
        twelve_bit_jpeg = syntax == uid.JPEGExtended12Bit and ds.get("BitsStored", 8) > 8
        if twelve_bit_jpeg:
            continue  # compared with DCMTK below: neither GDCM plugin nor pylibjpeg is right
        if "Rows" in ds and syntax is not None and uid.UID(syntax).is_compressed:
            found.append(path)
    return found


COMPRESSED = _compressed_files()


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.mark.parametrize("path", COMPRESSED, ids=lambda p: p.name)
def test_decodes_like_gdcm(path: Path) -> None:
    ds = _read(path)
    syntax = ds.file_meta.TransferSyntaxUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reference, _ = get_decoder(syntax).as_array(_read(path), decoding_plugin="gdcm")
        except Exception:  # GDCM refuses this one (12-bit JPEG Extended, damaged data)
            reference = None
        try:
            ours = decode_pixel_data(ds, path)
        except ValueError as exc:
            if reference is None:
                pytest.skip(f"no plugin decodes {path.name}, GDCM neither: {exc}")
            raise
    if reference is None:  # then pydicom's own choice of plugin is the oracle
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(ours, _read(path).pixel_array)
        return
    assert ours.shape == reference.shape
    if syntax in LOSSLESS:
        np.testing.assert_array_equal(ours, reference)
    else:
        assert np.abs(ours.astype(np.int64) - reference.astype(np.int64)).max() <= 2


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_twelve_bit_jpeg_extended_equals_dcmtk(tmp_path: Path, name: str) -> None:
    """12-bit JPEG Extended (1.2.840.10008.1.2.4.51): pydicom's GDCM plugin declines it
    and pylibjpeg refuses JPEG-lossy.dcm; GDCM's reader gives DCMTK's pixels exactly."""
    source = TEST_FILES / name
    ds = _read(source)
    assert ds.file_meta.TransferSyntaxUID == uid.JPEGExtended12Bit and ds.BitsStored == 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = decode_pixel_data(ds, source)
    if shutil.which("dcmdjpeg") is None:
        pytest.skip("DCMTK's dcmdjpeg is not installed (apt-get install dcmtk)")
    plain = tmp_path / "plain.dcm"
    subprocess.run(["dcmdjpeg", str(source), str(plain)], check=True)
    np.testing.assert_array_equal(pixels, _read(plain).pixel_array)


def test_a_refusing_plugin_falls_back_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _read(TEST_FILES / "MR_small_jpeg_ls_lossless.dcm")
    syntax = ds.file_meta.TransferSyntaxUID
    order = plugins_for(syntax)
    assert order[: len(PREFERRED_PLUGINS[syntax])] == [
        p for p in PREFERRED_PLUGINS[syntax] if p in order
    ]
    expected = _read(TEST_FILES / "MR_small.dcm").pixel_array
    decoder = get_decoder(syntax)
    original = decoder.as_array
    tried = []

    def refuse_first(*args, decoding_plugin: str = "", **kwargs):  # type: ignore[no-untyped-def]
        tried.append(decoding_plugin)
        if decoding_plugin == order[0]:
            raise RuntimeError(f"{decoding_plugin}: unsupported marker")
        return original(*args, decoding_plugin=decoding_plugin, **kwargs)

    monkeypatch.setattr(decoder, "as_array", refuse_first)
    np.testing.assert_array_equal(decode_pixel_data(ds), expected)
    assert tried[:2] == order[:2]


def test_every_plugin_refusing_names_each_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _read(TEST_FILES / "MR_small_jpeg_ls_lossless.dcm")
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)

    def refuse(*args, decoding_plugin: str = "", **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("cannot")

    monkeypatch.setattr(decoder, "as_array", refuse)
    with pytest.raises(ValueError) as raised:
        decode_pixel_data(ds)
    for plugin in plugins_for(ds.file_meta.TransferSyntaxUID):
        assert f"{plugin}: cannot" in str(raised.value)
