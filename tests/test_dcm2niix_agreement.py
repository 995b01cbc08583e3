"""Volumes and affines agree with dcm2niix's output on the shared scanner data.

Every reference volume in ../shared/data/*/Ref is compared with ours after both are
reoriented to the closest canonical orientation (nibabel): voxels equal, affines within
1e-3 mm (translations) and 1e-4 (direction cosines).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomlens.scanning import scan
from dicomlens.volume import Volume

ROOT_TOLERANCE_MM = 1e-3
DIRECTION_TOLERANCE = 1e-4


def assert_agrees(volume: Volume, reference: nib.Nifti1Image) -> None:
    ours = nib.as_closest_canonical(nib.Nifti1Image(volume.array, volume.affine_ras))
    theirs = nib.as_closest_canonical(reference)
    ours_data, theirs_data = np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj)
    assert ours_data.shape == theirs_data.shape
    if np.issubdtype(theirs.get_data_dtype(), np.integer) and volume.array.dtype.kind in "iu":
        np.testing.assert_array_equal(ours_data, theirs_data)
    else:
        np.testing.assert_allclose(ours_data, theirs_data, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(ours.affine[:3, 3], theirs.affine[:3, 3], atol=ROOT_TOLERANCE_MM)
    spacing = np.linalg.norm(theirs.affine[:3, :3], axis=0)
    np.testing.assert_allclose(
        np.linalg.norm(ours.affine[:3, :3], axis=0), spacing, atol=ROOT_TOLERANCE_MM
    )
    np.testing.assert_allclose(
        ours.affine[:3, :3] / spacing, theirs.affine[:3, :3] / spacing, atol=DIRECTION_TOLERANCE
    )


def _quiet_scan(path: Path) -> list:  # type: ignore[type-arg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes about vendors' odd values
        return scan([path])


@pytest.mark.parametrize("number", range(1, 10))
def test_transfer_syntaxes(shared_data: Path, number: int) -> None:
    (series,) = _quiet_scan(shared_data / f"dcm_qa_ts/In/{number}.dcm")
    assert_agrees(series.volume(), nib.load(shared_data / f"dcm_qa_ts/Ref/{number}.nii"))


@pytest.mark.parametrize(
    "name", ["12bitUnsigned.dcm", "12bitUnsigned_0x0F0F.dcm", "12bitSigned_0x0F0F.dcm"]
)
def test_12_bit(shared_data: Path, name: str) -> None:
    (series,) = _quiet_scan(shared_data / "dcm_qa_12bit/In" / name)
    reference = nib.load(shared_data / f"dcm_qa_12bit/Ref/{series.number}.nii")
    volume = series.volume()
    assert_agrees(volume, reference)
    if "Signed" in name and "Unsigned" not in name:
        assert volume.array.min() < 0  # the sign bit in bit 11 was honoured


def test_enhanced_multiframe_4d(shared_data: Path) -> None:
    reference = nib.load(shared_data / "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii")
    (series,) = _quiet_scan(shared_data / "dcm_qa_enh/In")
    assert series.shape == (64, 64, 6, 4) and series.report.kind == "fMRI"
    volume = series.volume()
    assert [row["volume"] for row in volume.slices] == [t for t in range(4) for _ in range(6)]
    assert_agrees(volume, reference)


NIH_SERIES = {
    "20180918GE/mr_0004": "DCM2NIIX_regression_test_4",
    "20180918GE/mr_0005": "DCM2NIIX_regression_test_5",
    "20180918GE/mr_0006": "DCM2NIIX_regression_test_6",
    "20180918GE/mr_0007": "DCM2NIIX_regression_test_7",
    "20180918Si/mr_0003": "EPI_PE=AP_3",
    "20180918Si/mr_0004": "EPI_PE=PA_4",
    "20180918Si/mr_0005": "EPI_PE=RL_5",
    "20180918Si/mr_0006": "EPI_PE=LR_6",
}


@pytest.mark.parametrize("folder", NIH_SERIES)
def test_nih_fmri_4d(shared_data: Path, folder: str) -> None:
    """GE fMRI as classic slices (15 x 10 in one folder) and Siemens EPI mosaics."""
    reference = nib.load(shared_data / f"dcm_qa_nih/Ref/{NIH_SERIES[folder]}.nii")
    (series,) = _quiet_scan(shared_data / "dcm_qa_nih/In" / folder)
    assert series.shape == reference.shape and series.report.kind == "fMRI"
    assert series.report.verdict == "ok"
    assert_agrees(series.volume(), reference)


def _decubitus_references() -> list[Path]:
    from conftest import shared_data_root

    return sorted((shared_data_root() / "dcm_qa_decubitus/Ref").glob("*.json"))


@pytest.mark.parametrize("sidecar", _decubitus_references(), ids=lambda p: p.stem)
def test_decubitus_positions(shared_data: Path, sidecar: Path) -> None:
    meta = json.loads(sidecar.read_text())
    folder = shared_data / "dcm_qa_decubitus/In" / meta["PatientPosition"]
    folder = folder / f"{meta['SeriesNumber']}_{meta['ProtocolName']}"
    reference = nib.load(sidecar.with_suffix(".nii.gz"))
    (series,) = _quiet_scan(folder)
    if len(reference.shape) == 3:
        assert series.report.orientation == "sagittal" and series.report.verdict == "ok"
        assert_agrees(series.volume(), reference)
        return
    assert series.shape == reference.shape and series.report.kind == "DWI"
    volume = series.volume()  # diffusion: one mosaic file per volume
    assert_agrees(volume, reference)
    assert volume.bvals is not None
    np.testing.assert_allclose(volume.bvals, np.loadtxt(sidecar.with_suffix(".bval")), atol=1)
