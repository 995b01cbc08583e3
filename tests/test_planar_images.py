"""2-D images (radiographs, nuclear medicine, ultrasound, multi-frame cine) are images
with a pixel spacing: rendered, exported and described, never refused for lacking a
3-D geometry."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from dicomlens.cli import main
from dicomlens.scanning import scan
from dicomlens.volume import Window, file_windows, window_to_uint8


def _data_store(name: str) -> Path:
    store = pytest.importorskip("data_store", reason="pydicom-data is not installed")
    return Path(store.__file__).parent / "data" / name


def _pixels(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(pydicom.dcmread(path).pixel_array)


def test_radiograph_renders_inverted_with_its_window(tmp_path: Path) -> None:
    """RG3_UNCR: a CR radiograph, MONOCHROME1, no position, orientation or spacing."""
    path = _data_store("RG3_UNCR.dcm")
    assert main(["render", str(path), "-o", str(tmp_path / "cr.png")]) == 0
    picture = np.asarray(Image.open(tmp_path / "cr.png"))
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    values = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(
        ds.get("RescaleIntercept", 0)
    )
    expected = 255 - window_to_uint8(values, file_windows(ds)[0])
    assert picture.shape == ds.pixel_array.shape
    np.testing.assert_array_equal(picture, expected)


def test_radiograph_volume_has_a_planar_geometry(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _data_store("RG3_UNCR.dcm")
    (series,) = scan([path])
    assert series.report.kind == "2-D" and series.report.verdict == "ok"
    assert main(["volume", str(path), "-o", str(tmp_path / "cr.nii.gz")]) == 0
    assert "pixel spacing from none (1 mm assumed)" in capsys.readouterr().err
    image = nib.load(tmp_path / "cr.nii.gz")
    assert image.shape == (1760, 1760, 1)
    data = np.asanyarray(image.dataobj)[:, ::-1, 0].T  # rows flipped as dcm2niix stores them
    np.testing.assert_array_equal(data, _pixels(path))
    np.testing.assert_allclose(image.header.get_zooms(), (1, 1, 1))


def test_nuclear_medicine_spacing_from_pixel_spacing(tmp_path: Path) -> None:
    path = _data_store("JPEG2000_UNC.dcm")  # NM, 1024 x 256, PixelSpacing 2.26
    assert main(["volume", str(path), "-o", str(tmp_path / "nm.npz")]) == 0
    with np.load(tmp_path / "nm.npz") as saved:
        np.testing.assert_array_equal(saved["array"][:, :, 0].T, _pixels(path))
        np.testing.assert_allclose(saved["spacing"], (2.26, 2.26, 1.0))
    sidecar = json.loads((tmp_path / "nm.json").read_text())
    assert "pixel spacing from PixelSpacing" in " ".join(sidecar["geometry"]["notes"])


def test_imager_pixel_spacing_is_used_and_said(make_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(_data_store("RG3_UNCR.dcm"))
    ds.ImagerPixelSpacing = [0.139, 0.143]
    ds.save_as(tmp_path / "dx.dcm")
    (series,) = scan([tmp_path / "dx.dcm"])
    volume = series.volume()
    np.testing.assert_allclose(volume.spacing, (0.143, 0.139, 1.0))
    assert "pixel spacing from ImagerPixelSpacing" in volume.report.notes[0]
    assert series.summary()["spacing"][:2] == [0.139, 0.143]


def test_ultrasound_renders_as_is(tmp_path: Path) -> None:
    path = _data_store("JPGLosslessP14SV1_1s_1f_8b.dcm")  # US, 8-bit, no geometry
    assert main(["render", str(path), "-o", str(tmp_path / "us.png"), "--window", "127.5,256"]) == 0
    picture = np.asarray(Image.open(tmp_path / "us.png"))
    np.testing.assert_allclose(picture, _pixels(path), atol=1)


def test_multiframe_cine_frames(tmp_path: Path) -> None:
    path = _data_store("emri_small.dcm")  # 10 frames of 64 x 64, no functional groups
    frames = _pixels(path)
    assert frames.shape == (10, 64, 64)
    for number in (0, 7):
        out = tmp_path / f"f{number}.png"
        argv = ["render", str(path), "-o", str(out), "--frame", str(number)]
        assert main([*argv, "--window", "1000,2000"]) == 0
        expected = window_to_uint8(frames[number].astype(float), Window(1000, 2000))
        np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["render", str(path), "-o", str(tmp_path / "x.png"), "--frame", "10"]) == 2


def test_multiframe_cine_is_a_volume_of_its_frames(tmp_path: Path) -> None:
    path = _data_store("emri_small.dcm")
    (series,) = scan([path])
    assert series.shape == (64, 64, 10) and series.report.verdict == "ok"
    assert main(["volume", str(path), "-o", str(tmp_path / "cine.npz")]) == 0
    with np.load(tmp_path / "cine.npz") as saved:
        np.testing.assert_array_equal(saved["array"].transpose(2, 1, 0), _pixels(path))


def _rgb_rows(image: nib.Nifti1Image) -> np.ndarray:  # type: ignore[type-arg]
    """A NIfTI RGB24 image as (slice, row, column, sample), rows as DICOM has them."""
    voxels = np.asanyarray(image.dataobj)
    samples = np.stack([voxels["R"], voxels["G"], voxels["B"]], axis=-1)
    return samples[:, ::-1].transpose(2, 1, 0, 3)


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "SC_rgb_rle_2frame.dcm", "US1_J2KR.dcm"])
def test_colour_images_are_rgb_volumes(tmp_path: Path, capsys, name: str) -> None:  # type: ignore[no-untyped-def]
    """8-bit colour (RGB, RLE frames, YBR in JPEG 2000) exports as NIfTI RGB24, the
    voxels pydicom decodes, with no place in the patient (qform/sform code 0)."""
    path = Path(pydicom.data.get_testdata_file(name))
    assert main(["volume", str(path), "-o", str(tmp_path / "rgb.nii")]) == 0
    assert " rgb24, " in capsys.readouterr().out
    image = nib.load(tmp_path / "rgb.nii")
    assert image.header["datatype"] == 128  # NIFTI_TYPE_RGB24
    assert image.header["sform_code"] == image.header["qform_code"] == 0
    expected = pydicom.dcmread(path).pixel_array
    expected = expected if expected.ndim == 4 else expected[np.newaxis]
    np.testing.assert_array_equal(_rgb_rows(image), expected)
    assert json.loads((tmp_path / "rgb.json").read_text())["dtype"] == "rgb24"


def test_colour_series_refuses_another_voxel_type() -> None:
    from dicomlens.errors import SeriesError

    (series,) = scan([pydicom.data.get_testdata_file("SC_rgb.dcm")])
    with pytest.raises(SeriesError, match="colour series loads as RGB"):
        series.volume(dtype=np.float32)


def test_colour_image_as_dcm2niix_writes_it(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("SC_rgb.dcm"), folder)
    subprocess.run(["dcm2niix", "-b", "y", "-z", "n", "-f", "ref", "-o", str(tmp_path),
                    str(folder)], check=True, capture_output=True)  # fmt: skip
    assert main(["volume", str(folder), "-o", str(tmp_path / "ours.nii")]) == 0
    ours, theirs = nib.load(tmp_path / "ours.nii"), nib.load(tmp_path / "ref.nii")
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))
    np.testing.assert_allclose(ours.affine, theirs.affine)  # nibabel's, for an unknown place
    assert ours.header.get_zooms() == theirs.header.get_zooms()
