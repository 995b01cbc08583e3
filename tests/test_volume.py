"""Volumes, windowing, rendering and export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import bundled
from pydicom.pixels import apply_modality_lut
from pydicom.pixels.processing import apply_windowing

from dicomlens.editing import atomic_output
from dicomlens.errors import WriteError
from dicomlens.export import montage, save_volume, sidecar_path
from dicomlens.rendering import render_series
from dicomlens.scanning import scan
from dicomlens.volume import PRESETS, Window, file_windows, window_to_uint8


def test_rescale_gives_hounsfield_units(ct_small: Path) -> None:
    (series,) = scan([ct_small])
    ds = pydicom.dcmread(ct_small)
    hu = apply_modality_lut(ds.pixel_array, ds)
    volume = series.volume()
    np.testing.assert_array_equal(volume.array[:, :, 0], hu.T)
    assert volume.array.dtype == np.int16 and volume.rescaled
    stored = series.volume(rescale=False)
    np.testing.assert_array_equal(stored.array[:, :, 0], ds.pixel_array.T)


def test_affine_maps_the_first_voxel_and_spacing(ct_small: Path) -> None:
    (series,) = scan([ct_small])
    volume = series.volume()
    ds = pydicom.dcmread(ct_small)
    np.testing.assert_allclose(
        volume.affine_lps[:3, 3], [float(v) for v in ds.ImagePositionPatient]
    )
    column_spacing = float(ds.PixelSpacing[1])
    np.testing.assert_allclose(volume.affine_lps[:3, 0], np.array([1, 0, 0]) * column_spacing)
    np.testing.assert_allclose(volume.affine_ras, np.diag([-1, -1, 1, 1]) @ volume.affine_lps)
    assert volume.spacing[0] == pytest.approx(column_spacing)


def _pydicom_8bit(values: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:  # type: ignore[type-arg]
    """pydicom's windowing of modality values, scaled from its output range to 0..255."""
    out = apply_windowing(values.astype(float), ds)
    bits = int(ds.BitsStored)
    low, high = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    )
    low = low * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    high = high * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return (out - low) / (high - low) * 255


@pytest.mark.parametrize("preset", ["brain", "lung", "bone", "abdomen"])
def test_render_equals_pydicom_windowing(ct_small: Path, preset: str) -> None:
    (series,) = scan([ct_small])
    (image,) = render_series(series, preset=preset)
    ds = pydicom.dcmread(ct_small)
    ds.WindowCenter, ds.WindowWidth = PRESETS[preset]
    expected = _pydicom_8bit(apply_modality_lut(ds.pixel_array, ds), ds)
    assert image.dtype == np.uint8 and image.shape == (128, 128)
    assert np.abs(image.astype(float) - expected).max() <= 1.0


def test_file_windows_with_explanations() -> None:
    ds = pydicom.dcmread(bundled("examples_overlay.dcm"))
    widths = [float(w) for w in ds.WindowWidth]
    assert file_windows(ds) == [
        Window(450.0, widths[0], "WINDOW1"),
        Window(200.0, widths[1], "WINDOW2"),
    ]


def test_monochrome1_is_inverted(ct_small: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    (normal,) = render_series(scan([ct_small])[0], window=(40, 400))
    (inverted,) = render_series(scan([tmp_path / "m1.dcm"])[0], window=(40, 400))
    np.testing.assert_array_equal(inverted, 255 - normal)


def test_colour_images_as_they_are() -> None:
    path = bundled("SC_rgb_rle.dcm")
    (image,) = render_series(scan([path])[0])
    np.testing.assert_array_equal(image, pydicom.dcmread(path).pixel_array)


def test_window_function_matches_pydicom_for_all_values() -> None:
    values = np.arange(-1200, 2000, 7, dtype=float).reshape(1, -1)
    ours = window_to_uint8(values, Window(40, 400))
    ds = pydicom.Dataset()
    ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME2", 16, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.WindowCenter, ds.WindowWidth = 40, 400
    assert np.abs(ours - _pydicom_8bit(values, ds)).max() <= 1.0


def test_montage_tiles_row_by_row() -> None:
    tiles = [np.full((2, 3), n, dtype=np.uint8) for n in range(5)]
    sheet = montage(tiles)  # 3 columns, 2 rows of 2x3 tiles
    assert sheet.shape == (4, 9)
    assert [sheet[0, 0], sheet[0, 3], sheet[0, 6], sheet[2, 0], sheet[2, 3]] == [0, 1, 2, 3, 4]
    assert sheet[3, 8] == 0  # no sixth tile: black


def test_save_nifti_and_sidecar(make_ct_series: Callable[..., Path], tmp_path: Path) -> None:
    (series,) = scan([make_ct_series(6)])
    volume = series.volume()
    written = save_volume(volume, tmp_path / "ct.nii.gz", info={"series": series.summary()})
    sidecar = tmp_path / "ct.json"
    assert written == [tmp_path / "ct.nii.gz", sidecar]
    image = nib.load(tmp_path / "ct.nii.gz")
    # stored as dcm2niix stores it: rows flipped, the affine following
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), volume.array[:, ::-1])
    flipped = volume.affine_ras.copy()
    flipped[:3, 1] *= -1
    flipped[:3, 3] = (volume.affine_ras @ [0, 127, 0, 1])[:3]  # the last row comes first
    np.testing.assert_allclose(image.affine, flipped, atol=1e-5)
    meta = json.loads(sidecar.read_text())
    assert meta["geometry"]["verdict"] == "ok" and meta["shape"] == [128, 128, 6]
    assert len(meta["slices"]) == 6 and meta["series"]["files"] == 6
    assert not list(tmp_path.glob(".*tmp*"))


def test_save_npz(make_ct_series: Callable[..., Path], tmp_path: Path) -> None:
    (series,) = scan([make_ct_series(3)])
    volume = series.volume()
    save_volume(volume, tmp_path / "ct.npz")
    with np.load(tmp_path / "ct.npz") as data:
        np.testing.assert_array_equal(data["array"], volume.array)
        np.testing.assert_allclose(data["affine_lps"], volume.affine_lps)
    assert sidecar_path(tmp_path / "ct.npz") == tmp_path / "ct.json"


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("original")
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "original"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(WriteError, match="already exists"), atomic_output(target, overwrite=False):
        pass


def test_atomic_output_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "mode.txt"
    target.write_text("x")
    target.chmod(0o640)
    with atomic_output(target) as temporary:
        temporary.write_text("y")
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_text() == "y"


def test_float32_volume_built_directly_equals_converted(
    make_ct_series: Callable[..., Path],
) -> None:
    (series,) = scan([make_ct_series(5, missing=(2,))])
    converted = series.volume().array.astype(np.float32)
    direct = series.volume(dtype=np.float32)
    assert direct.array.dtype == np.float32
    np.testing.assert_array_equal(direct.array, converted)
    stored = series.volume(rescale=False, dtype=np.int32).array
    np.testing.assert_array_equal(stored, series.volume(rescale=False).array.astype(np.int32))


def test_direct_reads_equal_pydicom_with_unused_bits(ct_small: Path, tmp_path: Path) -> None:
    """12 bits stored in 16, signed, garbage in the top bits: pydicom's rules apply."""
    ds = pydicom.dcmread(ct_small)
    raw = np.frombuffer(ds.PixelData, dtype="<i2").copy()
    noisy = (raw & 0x0FFF) | 0x5000  # garbage in bits 12-15
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 1
    ds.PixelData = noisy.astype("<i2").tobytes()
    ds.save_as(tmp_path / "twelve.dcm")
    (series,) = scan([tmp_path / "twelve.dcm"])
    assert series.slices[0].native_pixels is not None
    expected = pydicom.dcmread(tmp_path / "twelve.dcm").pixel_array
    np.testing.assert_array_equal(series.volume(rescale=False).array[:, :, 0], expected.T)
    assert expected.min() < 0


def test_worked_example_of_docs_coordinates(ct_small: Path) -> None:
    (series,) = scan([ct_small])
    volume = series.volume()
    np.testing.assert_allclose(
        volume.affine_lps @ [10, 20, 0, 1], [-151.521123, -165.806437, -75.699997, 1]
    )
    np.testing.assert_allclose(
        volume.affine_ras @ [10, 20, 0, 1], [151.521123, 165.806437, -75.699997, 1]
    )


def _ct_series(folder: Path, count: int, *, slope: float = 1.0) -> Path:
    folder.mkdir()
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    template.RescaleSlope = slope
    for k in range(count):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.{k + 1}"
        template.InstanceNumber = k + 1
        template.ImagePositionPatient = [-100.0, -100.0, 2.5 * k]
        template.PixelData = (template.pixel_array + 3 * k).astype("<i2").tobytes()
        template.save_as(folder / f"{k:02d}.dcm")
    return folder


@pytest.mark.parametrize("slope", [1.0, 0.5])  # 0.5: float32 values, not in the map
def test_nii_filled_in_place_equals_nibabels_file(tmp_path: Path, slope: float) -> None:
    from dicomlens.cli import main

    folder = _ct_series(tmp_path / "ct", 6, slope=slope)
    assert main(["volume", str(folder), "-o", str(tmp_path / "direct.nii")]) == 0
    (series,) = scan([folder])
    volume = series.volume()
    save_volume(volume, tmp_path / "copy.nii", info={"series": series.summary()}, series=series)
    assert (tmp_path / "direct.nii").read_bytes() == (tmp_path / "copy.nii").read_bytes()
    written = nib.load(tmp_path / "direct.nii")
    assert written.get_data_dtype() == (np.int16 if slope == 1 else np.float32)
    assert float(written.dataobj[:, :, 3].sum()) == float(volume.array[:, ::-1, 3].sum())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_loading_in_place_keeps_no_copy_and_a_failure_leaves_nothing(tmp_path: Path) -> None:
    from dicomlens.export import nifti_in_place, nifti_layout

    folder = _ct_series(tmp_path / "ct", 4)
    (series,) = scan([folder])
    target = tmp_path / "out.nii"
    with nifti_in_place(target) as in_place:
        volume = series.volume(allocate=in_place.allocate)
        assert in_place.holds(nifti_layout(volume)[0])  # the volume is the file's data
        save_volume(volume, target, in_place=in_place)
    assert np.array_equal(nib.load(target).get_fdata(), nifti_layout(volume)[0])
    (folder / "02.dcm").write_bytes(b"DICM" * 10)  # unreadable once scanned
    with pytest.raises(Exception, match=r"02\.dcm"), nifti_in_place(tmp_path / "bad.nii") as bad:
        series.volume(allocate=bad.allocate)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "out.json", "out.nii"]


def test_a_file_system_that_cannot_map_files_gets_the_volume_written_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dicomlens.cli import main

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")  # as mmap on some FUSE file systems

    folder = _ct_series(tmp_path / "ct", 3)
    assert main(["volume", str(folder), "-o", str(tmp_path / "mapped.nii")]) == 0
    monkeypatch.setattr(np, "memmap", refuse)
    assert main(["volume", str(folder), "-o", str(tmp_path / "written.nii")]) == 0
    assert (tmp_path / "mapped.nii").read_bytes() == (tmp_path / "written.nii").read_bytes()
