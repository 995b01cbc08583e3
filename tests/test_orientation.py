"""3-D acquisitions are written turned to the axes closest to RAS, as dcm2niix writes
them (volume/orientation.py); other volumes keep the flipped rows."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicomlens.export import save_volume
from dicomlens.scanning import scan
from dicomlens.volume.orientation import closest_to_ras

POSITIONS = {"HFS": "3_t1_fl2d_sag", "HFP": "2_t1_fl2d_sag", "HFDL": "2_t1_fl2d_sag",
             "HFDR": "2_t1_fl2d_sag"}  # fmt: skip


def _as_3d_acquisition(source: Path, target: Path) -> Path:
    """The shared sagittal T1 (2-D, gradient echo) marked as a 3-D acquisition."""
    target.mkdir()
    for path in sorted(source.iterdir()):
        if path.suffix != ".dcm":
            continue
        ds = pydicom.dcmread(path)
        ds.MRAcquisitionType = "3D"
        ds.save_as(target / path.name)
    return target


@pytest.mark.parametrize("position", POSITIONS)
def test_3d_acquisition_is_written_as_dcm2niix_writes_it(
    shared_data: Path, tmp_path: Path, position: str
) -> None:
    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    source = shared_data / "dcm_qa_decubitus/In" / position / POSITIONS[position]
    folder = _as_3d_acquisition(source, tmp_path / "t1")
    subprocess.run(["dcm2niix", "-b", "n", "-z", "n", "-f", "ref", "-o", str(tmp_path),
                    str(folder)], check=True, capture_output=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (series,) = scan([folder])
    save_volume(series.volume(), tmp_path / "ours.nii", series=series)
    ours, theirs = nib.load(tmp_path / "ours.nii"), nib.load(tmp_path / "ref.nii")
    assert nib.aff2axcodes(ours.affine) == ("R", "A", "S")
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))


def test_2d_acquisition_keeps_its_flipped_rows(shared_data: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (series,) = scan([shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"])
    volume = series.volume()
    save_volume(volume, tmp_path / "t1.nii", series=series)
    written = np.asanyarray(nib.load(tmp_path / "t1.nii").dataobj)
    np.testing.assert_array_equal(written, volume.array[:, ::-1])


@pytest.mark.parametrize("seed", range(6))
def test_turned_volume_is_the_same_image(seed: int) -> None:
    """Any rotation: the turned voxels sit where they sat, on axes nearest R, A, S."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([0.9, 1.1, 2.5])
    affine[:3, 3] = rng.normal(scale=50, size=3)
    array = rng.integers(0, 1000, size=(5, 6, 7))
    turned, turned_affine = closest_to_ras(array, affine)
    assert nib.aff2axcodes(turned_affine) == nib.aff2axcodes(
        nib.as_closest_canonical(nib.Nifti1Image(array.astype(np.int16), affine)).affine
    )
    for index in np.ndindex(turned.shape):
        world = turned_affine @ (*index, 1)
        source = np.linalg.solve(affine, world)[:3].round().astype(int)
        assert turned[index] == array[tuple(source)]


def test_philips_3d_epi_keeps_its_flipped_rows(philips_dwi: Path, tmp_path: Path) -> None:
    """Philips writes EchoPlanarPulseSequence inside its private item (2005,xx0F): a
    3-D EPI there is still EPI, not turned (dcm2niix reads it there too)."""
    from dicomlens.reading import read
    from dicomlens.volume.orientation import turned_to_ras

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = max(scan([philips_dwi]), key=lambda s: len(s.slices))
    header = read(series.first.path, stop_before_pixels=True)
    header.MRAcquisitionType = "3D"
    one_volume = series.one_volume(0)
    assert not turned_to_ras(header, one_volume.report, one_volume.report.slices)
    header.private_block(0x2005, "Philips MR Imaging DD 005")[0x0F].value[0][
        "EchoPlanarPulseSequence"
    ].value = "NO"
    assert turned_to_ras(header, one_volume.report, one_volume.report.slices)
