"""4-D series (fMRI, diffusion): sidecars, b-values and gradients agree with dcm2niix's
references in ../shared/data; incomplete series are refused or converted as asked."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import edited_copy, replace_nested
from test_dcm2niix_agreement import assert_agrees

from dicomlens.cli import main
from dicomlens.errors import SeriesError
from dicomlens.export import save_volume
from dicomlens.scanning import Series, scan
from dicomlens.series import seconds_of_day

# Fields the issue names; compared wherever dcm2niix writes them.
BIDS_FIELDS = (
    "Manufacturer", "ManufacturersModelName", "MagneticFieldStrength", "RepetitionTime",
    "EchoTime", "EchoNumber", "FlipAngle", "SliceThickness", "SpacingBetweenSlices",
    "PhaseEncodingDirection", "EffectiveEchoSpacing", "TotalReadoutTime",
    "MultibandAccelerationFactor", "ImageType", "SeriesDescription", "ProtocolName",
    "PhaseEncodingPolarityGE", "ScanningSequence", "SequenceVariant", "ScanOptions",
    "SoftwareVersions",
    "AcquisitionTime", "AcquisitionNumber", "SeriesNumber", "Modality",
    "PhilipsRescaleSlope", "PhilipsRescaleIntercept", "PhilipsScaleSlope",
    "UsePhilipsFloatNotDisplayScaling", "PixelBandwidth", "PercentPhaseFOV", "PercentSampling",
    "AcquisitionMatrixPE", "ReconMatrixPE", "SAR", "EchoTrainLength", "InversionTime",
    "ParallelReductionFactorInPlane", "CoilString", "ProcedureStepDescription",
    "InstitutionAddress", "StudyDescription", "ImageComments",
    "BodyPartExamined", "BaseResolution", "PhaseResolution", "TxRefAmp", "ReceiveCoilName",
    "PulseSequenceDetails", "ConsistencyInfo", "CoilCombinationMethod",
    "ShimSetting", "RefLinesPE", "DwellTime", "BandwidthPerPixelPhaseEncode",
    "DerivedVendorReportedEchoSpacing", "PartialFourier", "PhaseEncodingSteps",
    "NonlinearGradientCorrection", "RawImage", "ImagingFrequency", "ParallelAcquisitionTechnique",
    "ImageTypeText", "SequenceName", "SpoilingState", "SpoilingType", "AcquisitionDuration",
    "DiffusionScheme", "WaterFatShift", "EstimatedEffectiveEchoSpacing",
    "EstimatedTotalReadoutTime", "EchoTime1", "EchoTime2", "RepetitionTimeExcitation",
    "RepetitionTimeInversion",
)  # fmt: skip
SLICE_TIMING_MS = 2.5
NIH_SIEMENS_EPI = "dcm_qa_nih/In/20180918Si/mr_0003"  # two mosaics, fMRI

REFERENCES = {
    "dcm_qa_nih/In/20180918GE/mr_0004": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4",
    "dcm_qa_nih/In/20180918GE/mr_0005": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_5",
    "dcm_qa_nih/In/20180918GE/mr_0006": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_6",
    "dcm_qa_nih/In/20180918GE/mr_0007": "dcm_qa_nih/Ref/DCM2NIIX_regression_test_7",
    "dcm_qa_nih/In/20180918Si/mr_0003": "dcm_qa_nih/Ref/EPI_PE=AP_3",
    "dcm_qa_nih/In/20180918Si/mr_0004": "dcm_qa_nih/Ref/EPI_PE=PA_4",
    "dcm_qa_nih/In/20180918Si/mr_0005": "dcm_qa_nih/Ref/EPI_PE=RL_5",
    "dcm_qa_nih/In/20180918Si/mr_0006": "dcm_qa_nih/Ref/EPI_PE=LR_6",
    "dcm_qa_enh/In": "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6",
    "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2": (
        "dcm_qa_decubitus/Ref/ep2d_diff_mddw_20_p2_20220407150138"
    ),
    "dcm_qa_decubitus/In/HFDR/3_ep2d_diff_mddw_20_p2": (
        "dcm_qa_decubitus/Ref/ep2d_diff_mddw_20_p2_20220407151157"
    ),
    "dcm_qa_decubitus/In/HFP/3_ep2d_diff_mddw_20_p2": (
        "dcm_qa_decubitus/Ref/ep2d_diff_mddw_20_p2_20220407151756"
    ),
    "dcm_qa_decubitus/In/HFDL/3_ep2d_diff_mddw_20_p2": (
        "dcm_qa_decubitus/Ref/ep2d_diff_mddw_20_p2_20220407152351"
    ),
}


def _scan(path: Path) -> list[Series]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vendors' odd values
        return scan([path])


def _convert(series: Series, target: Path) -> dict[str, object]:
    save_volume(series.volume(), target, series=series)
    sidecar: dict[str, object] = json.loads(target.with_name("x.json").read_text())
    return sidecar


def _assert_same_fields(ours: dict[str, object], theirs: dict[str, object]) -> None:
    compared = 0
    for name in BIDS_FIELDS:
        if name not in theirs:
            continue
        expected = theirs[name]
        if name == "ImageType" and "M" in expected[1:-1] and "MAGNITUDE" not in expected:  # type: ignore[index]
            expected = [*expected, "MAGNITUDE"]  # type: ignore[misc]  # dcm2niix < 2023 omits it
        if isinstance(expected, float | list) and name not in ("ImageType", "ImageTypeText"):
            assert ours[name] == pytest.approx(expected, rel=1e-5), name
        else:
            assert ours[name] == expected, name
        compared += 1
    assert compared >= 12
    if "SliceTiming" in theirs:
        np.testing.assert_allclose(
            ours["SliceTiming"], theirs["SliceTiming"], atol=SLICE_TIMING_MS / 1000
        )


@pytest.mark.parametrize("folder", REFERENCES)
def test_sidecar_and_diffusion_match_dcm2niix(
    shared_data: Path, tmp_path: Path, folder: str
) -> None:
    reference = shared_data / REFERENCES[folder]
    (series,) = _scan(shared_data / folder)
    target = tmp_path / "x.nii.gz"
    ours = _convert(series, target)
    theirs = json.loads(reference.with_suffix(".json").read_text())
    _assert_same_fields(ours, theirs)
    image = nib.load(target)
    assert image.header.get_xyzt_units() == ("mm", "sec")
    assert image.header.get_zooms()[3] == pytest.approx(theirs["RepetitionTime"])
    if reference.with_suffix(".bval").exists():
        np.testing.assert_allclose(
            np.loadtxt(target.with_name("x.bval")), np.loadtxt(reference.with_suffix(".bval")),
            atol=1,
        )  # fmt: skip
        # Same voxel layout as dcm2niix's NIfTI: the bvecs compare as written.
        np.testing.assert_allclose(
            np.loadtxt(target.with_name("x.bvec")), np.loadtxt(reference.with_suffix(".bvec")),
            atol=1e-3,
        )  # fmt: skip
        reference_image = nib.load(reference.with_name(reference.name + ".nii.gz"))
        np.testing.assert_allclose(image.affine, reference_image.affine, atol=1e-3)


def test_philips_classic_dwi(philips_dwi: Path, shared_data: Path, tmp_path: Path) -> None:
    """Scrambled instance numbers: volumes ordered as Philips' own private order."""
    reference = shared_data / "dcm_qa_philips_dwi/Ref/701_DTI_Biobank_2mm_MB3S2_EPI_cl"
    series = max(_scan(philips_dwi), key=lambda s: len(s.slices))
    assert series.shape == (112, 112, 32, 17) and series.report.kind == "DWI"
    ours = _convert(series, tmp_path / "x.nii.gz")
    theirs = json.loads(reference.with_suffix(".json").read_text())
    _assert_same_fields(ours, theirs)
    bvals = np.loadtxt(tmp_path / "x.bval")
    np.testing.assert_allclose(bvals, np.loadtxt(reference.with_suffix(".bval")), atol=1)
    ours_vectors = np.loadtxt(tmp_path / "x.bvec")
    theirs_vectors = np.loadtxt(reference.with_suffix(".bvec"))
    weighted = bvals > 0  # dcm2niix copies Philips' b = 0 direction unchanged
    np.testing.assert_allclose(ours_vectors[:, weighted], theirs_vectors[:, weighted], atol=1e-3)
    assert not ours_vectors[:, ~weighted].any()


def test_philips_values_are_its_floating_point_values_as_dcm2niix_writes_them(
    philips_dwi: Path, tmp_path: Path
) -> None:
    """Philips' scale slope (2005,xx0E): the voxels are (stored x RS + RI) / (RS x SS),
    dcm2niix's default; --philips-display gives the display values (stored x RS + RI)."""
    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    import subprocess

    subprocess.run(["dcm2niix", "-b", "y", "-z", "n", "-f", "ref", "-o", str(tmp_path),
                    str(philips_dwi)], check=True, capture_output=True)  # fmt: skip
    series = max(_scan(philips_dwi), key=lambda s: len(s.slices))
    precise = series.volume()
    save_volume(precise, tmp_path / "ours.nii", series=series)
    theirs = nib.load(tmp_path / "ref.nii")
    ours = nib.load(tmp_path / "ours.nii")
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_allclose(ours.get_fdata(), theirs.get_fdata(), rtol=1e-6, atol=1e-6)
    sidecar = json.loads((tmp_path / "ours.json").read_text())
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert sidecar["UsePhilipsFloatNotDisplayScaling"] == 1
    for name in ("PhilipsRescaleSlope", "PhilipsRescaleIntercept", "PhilipsScaleSlope"):
        assert sidecar[name] == pytest.approx(reference[name], rel=1e-5), name
    display = series.volume(philips_precise=False)
    assert not display.precise and precise.precise
    rs, ss = sidecar["PhilipsRescaleSlope"], sidecar["PhilipsScaleSlope"]
    np.testing.assert_allclose(display.array / (rs * ss), precise.array, rtol=1e-5)
    assert main(["volume", str(philips_dwi), "--series", f"{series.number}:1",
                 "--philips-display", "-o", str(tmp_path / "display.nii")]) == 0  # fmt: skip
    written = nib.load(tmp_path / "display.nii").get_fdata()
    assert written.sum() == pytest.approx(float(display.array.sum(dtype=np.float64)), rel=1e-6)
    shown = json.loads((tmp_path / "display.json").read_text())
    assert shown["UsePhilipsFloatNotDisplayScaling"] == 0


def test_fmri_volume_sums_per_time_point(shared_data: Path) -> None:
    reference = nib.load(shared_data / "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")
    (series,) = _scan(shared_data / "dcm_qa_nih/In/20180918GE/mr_0004")
    volume = series.volume()
    assert volume.volumes == 10 and volume.array.shape == (64, 64, 15, 10)
    sums = np.asanyarray(reference.dataobj).sum(axis=(0, 1, 2))
    np.testing.assert_array_equal(volume.array.sum(axis=(0, 1, 2)), sums)
    assert [row["volume"] for row in volume.slices[:16]] == [0] * 15 + [1]


def _copy_without(source: Path, target: Path, leave_out: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(leave_out, "*.txt"))
    return target


def test_incomplete_series_is_refused_or_converted(shared_data: Path, tmp_path: Path) -> None:
    folder = _copy_without(
        shared_data / "dcm_qa_nih/In/20180918GE/mr_0004",
        tmp_path / "fmri",
        "axial_epi_fmri_interleaved_i_to_s-00020.dcm",
    )
    (series,) = _scan(folder)
    assert series.report.volumes == 10 and series.report.verdict == "incomplete volumes"
    with pytest.raises(SeriesError, match=r"incomplete 4-D series: position \(.*\) has 9"):
        series.volume()
    volume = series.volume(allow_incomplete=True)
    assert volume.array.shape == (64, 64, 15, 10)
    k = [row["k"] for row in volume.slices if row["volume"] == 9]
    missing = sorted(set(range(15)) - set(k))
    assert len(missing) == 1 and not volume.array[:, :, missing[0], 9].any()
    assert any(note.startswith("incomplete:") for note in volume.report.notes)


def test_cli_volume_4d_split_and_refusal(shared_data: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    dwi = shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["volume", str(dwi), "-o", str(tmp_path / "dwi.nii.gz")]) == 0
        out = capsys.readouterr().out
        assert "128x128x25x13" in out and str(tmp_path / "dwi.bvec") in out
        assert main(["volume", str(dwi), "-o", str(tmp_path / "s.nii.gz"), "--split"]) == 0
    capsys.readouterr()
    parts = sorted(tmp_path.glob("s_*.nii.gz"))
    assert len(parts) == 13 and nib.load(parts[0]).shape == (128, 128, 25)
    whole = np.asanyarray(nib.load(tmp_path / "dwi.nii.gz").dataobj)
    np.testing.assert_array_equal(np.asanyarray(nib.load(parts[12]).dataobj), whole[..., 12])
    assert json.loads(parts[3].with_name("s_0004.json").read_text())["volume"] == 3
    folder = _copy_without(
        shared_data / "dcm_qa_nih/In/20180918GE/mr_0005", tmp_path / "bold", "*-00033.dcm"
    )
    assert main(["volume", str(folder), "-o", str(tmp_path / "b.nii.gz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "incomplete 4-D series" in err and "--allow-incomplete" in err
    assert not (tmp_path / "b.nii.gz").exists()


def test_series_table_shows_4d_shape_and_kind(shared_data: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["series", str(shared_data / "dcm_qa_nih/In/20180918Si/mr_0003")]) == 0
    out = capsys.readouterr().out
    assert "72x72x5x2" in out and "fMRI" in out


def test_mosaic_volume_equals_reference(shared_data: Path) -> None:
    folder = "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    (series,) = _scan(shared_data / folder)
    reference = nib.load(shared_data / (REFERENCES[folder] + ".nii.gz"))
    volume = series.volume()
    assert_agrees(volume, reference)
    assert volume.gradients is not None and volume.gradients.shape == (13, 3)
    assert not volume.gradients[0].any()  # b = 0
    np.testing.assert_allclose(np.linalg.norm(volume.gradients[1:], axis=1), 1, atol=1e-6)


PLANES = {  # row and column cosines of the image plane
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def _ge_dwi(shared_data: Path, folder: Path, plane: str, *, real_life: bool = False) -> Path:
    """GE's fMRI slices turned into a DWI series: b = 0, then nine directions, written
    in GE's private fields (0043,xx39)[GEMS_PARM_01] and (0019,xxBB-BD)[GEMS_ACQU_01];
    ``real_life`` as GE's DTI files have them too: the b-value also as the standard
    DiffusionBValue (with no standard direction) and the unweighted volume saying
    b = 1000 with a zero direction."""

    row, column = (np.array(v) for v in PLANES[plane])
    normal = np.cross(row, column)
    directions = np.random.default_rng(3).normal(size=(10, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    folder.mkdir()
    for path in sorted((shared_data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        volume, place = divmod(int(ds.InstanceNumber) - 1, 15)
        b_value = 0 if volume == 0 else 1000
        written = 1000 if real_life else b_value
        ds.private_block(0x0043, "GEMS_PARM_01")[0x39].value = [written + 10**9, 8, 0, 0]
        if real_life:  # a DTI of nine directions, saying so in (0019,xxE0)
            ds.DiffusionBValue = written
            ds.private_block(0x0019, "GEMS_ACQU_01")[0xE0].value = "9"
        block = ds.private_block(0x0019, "GEMS_ACQU_01")
        for offset, value in zip(
            (0xBB, 0xBC, 0xBD), directions[volume] * (b_value > 0), strict=True
        ):
            block[offset].value = f"{value:.6f}"
        ds.ImageOrientationPatient = [*row, *column]
        ds.ImagePositionPatient = list(-120 * (row + column) + (place * 5 - 17.6875) * normal)
        ds.save_as(folder / path.name)
    return folder


def test_ge_standard_b_value_and_b0_written_as_weighted(shared_data: Path, tmp_path: Path) -> None:
    """The direction comes from GE's private fields even when the b-value is also a
    standard element; a DTI's zero-direction image is its b = 0 (as dcm2niix reads it)."""
    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    import subprocess

    folder = _ge_dwi(shared_data, tmp_path / "dwi", "axial", real_life=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["dcm2niix", "-b", "y", "-z", "n", "-f", "ref", "-o", str(out), str(folder)],
                   check=True, capture_output=True)  # fmt: skip
    (series,) = _scan(folder)
    save_volume(series.volume(), out / "ours.nii", series=series)
    bvals = np.loadtxt(out / "ours.bval")
    np.testing.assert_allclose(bvals, np.loadtxt(out / "ref.bval"))
    assert bvals[0] == 0 and (bvals[1:] == 1000).all()
    ours = _world_directions(out / "ours.bvec", out / "ours.nii")
    theirs = _world_directions(out / "ref.bvec", out / "ref.nii")
    np.testing.assert_allclose(np.abs(np.sum(ours * theirs, axis=1))[1:], 1.0, atol=1e-3)


def _world_directions(bvec: Path, image: Path) -> np.ndarray:  # type: ignore[type-arg]
    """FSL bvecs back in world (RAS) coordinates, through their image's affine."""
    affine = nib.load(image).affine[:3, :3]
    axes = affine / np.linalg.norm(affine, axis=0)
    vectors = np.loadtxt(bvec)
    if np.linalg.det(axes) > 0:
        vectors[0] = -vectors[0]
    return (axes @ vectors).T


@pytest.mark.parametrize("plane", PLANES)
def test_ge_diffusion_matches_dcm2niix(shared_data: Path, tmp_path: Path, plane: str) -> None:
    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    import subprocess

    folder = _ge_dwi(shared_data, tmp_path / "dwi", plane)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["dcm2niix", "-b", "y", "-z", "n", "-f", "ref", "-o", str(out), str(folder)],
                   check=True, capture_output=True)  # fmt: skip
    (series,) = _scan(folder)
    assert series.report.kind == "DWI"
    save_volume(series.volume(), out / "ours.nii", series=series)
    np.testing.assert_allclose(np.loadtxt(out / "ours.bval"), np.loadtxt(out / "ref.bval"))
    ours = _world_directions(out / "ours.bvec", out / "ours.nii")
    theirs = _world_directions(out / "ref.bvec", out / "ref.nii")
    agreement = np.abs(np.sum(ours * theirs, axis=1))  # a direction and its negative agree
    np.testing.assert_allclose(agreement[1:], 1.0, atol=1e-3)
    assert not ours[0].any()


def _siemens_classic_dwi(shared_data: Path, folder: Path) -> Path:
    """The sagittal Siemens T1 slices (classic, one file each) as a 4-volume DWI: the
    b-value and direction in (0019,xx0C/0E)[SIEMENS MR HEADER], interleaved
    acquisition times (the CSA image header, which has the T1's own slice times, goes),
    new UIDs, the pixels offset per volume."""
    from pydicom.uid import generate_uid

    directions = [(0.0, 0.0, 0.0), (0.6, -0.48, 0.64), (-0.36, 0.8, 0.48), (0.0, 0.6, -0.8)]
    series_uid = generate_uid()
    folder.mkdir()
    sources = sorted((shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag").glob("*.dcm"))
    for volume, direction in enumerate(directions):
        for path in sources:
            ds = pydicom.dcmread(path)
            place = int(ds.InstanceNumber) - 1
            del ds[ds.private_block(0x0029, "SIEMENS CSA HEADER").get_tag(0x10)]
            block = ds.private_block(0x0019, "SIEMENS MR HEADER")
            block.add_new(0x0C, "IS", 0 if volume == 0 else 1000)
            if volume:
                block.add_new(0x0E, "FD", list(direction))
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.AcquisitionNumber = volume + 1
            ds.InstanceNumber = volume * len(sources) + place + 1
            rank = place // 2 if place % 2 == 0 else (len(sources) + 1) // 2 + place // 2
            seconds = 15 * 3600 + 5 * 60 + volume * 7.0 + rank * 0.2
            ds.AcquisitionTime = f"1505{seconds - 15 * 3600 - 5 * 60:09.6f}"
            ds.PixelData = (ds.pixel_array + volume).astype(ds.pixel_array.dtype).tobytes()
            ds.save_as(folder / f"{volume}_{path.name}")
    return folder


def test_siemens_classic_dwi_matches_dcm2niix(shared_data: Path, tmp_path: Path) -> None:
    """Classic (non-mosaic) Siemens diffusion slices: volumes, bvals and bvecs (a
    sagittal series, so the x flip of FSL's convention matters) as Debian's dcm2niix
    converts them; slice times from the acquisition times, per written slice."""
    if shutil.which("dcm2niix") is None:
        pytest.skip("Debian's dcm2niix is not installed (apt-get install dcm2niix)")
    import subprocess

    folder = _siemens_classic_dwi(shared_data, tmp_path / "dwi")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["dcm2niix", "-b", "y", "-z", "n", "-f", "ref", "-o", str(out), str(folder)],
                   check=True, capture_output=True)  # fmt: skip
    (series,) = _scan(folder)
    assert series.shape == (256, 256, 35, 4) and series.report.kind == "DWI"
    volume = series.volume()
    save_volume(volume, out / "ours.nii", series=series)
    assert_agrees(volume, nib.load(out / "ref.nii"))
    np.testing.assert_allclose(np.loadtxt(out / "ours.bval"), np.loadtxt(out / "ref.bval"))
    np.testing.assert_allclose(
        np.loadtxt(out / "ours.bvec"), np.loadtxt(out / "ref.bvec"), atol=1e-3
    )
    ours = json.loads((out / "ours.json").read_text())
    theirs = json.loads((out / "ref.json").read_text())
    # The polarity is in the CSA image header, which these files lack: the axis only.
    assert ours["PhaseEncodingAxis"] == theirs["PhaseEncodingAxis"] == "i"
    assert "PhaseEncodingDirection" not in ours
    # Volumes 7 s apart, TR 0.25 s: the measured interval, the TR as the excitation's.
    for name in ("RepetitionTime", "RepetitionTimeExcitation"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-3), name
    # Slice k was acquired at its file's AcquisitionTime. (dcm2niix lists these times in
    # its sorting order, reversed only when the CSA header says the slices were flipped:
    # these files have no CSA header, so its list runs the other way here.)
    first = [row for row in volume.slices if row["volume"] == 0]
    times = [_seconds_of(Path(row["file"])) for row in sorted(first, key=lambda r: r["k"])]
    np.testing.assert_allclose(ours["SliceTiming"], np.array(times) - min(times), atol=1e-6)
    # dcm2niix holds these times as float32 seconds of the day: steps of 1/128 s here.
    np.testing.assert_allclose(sorted(ours["SliceTiming"]), sorted(theirs["SliceTiming"]),
                               atol=1 / 128)  # fmt: skip


def _seconds_of(path: Path) -> float:

    text = str(pydicom.dcmread(path, stop_before_pixels=True).AcquisitionTime)
    return int(text[:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:])


def test_enhanced_per_frame_diffusion(shared_data: Path, tmp_path: Path) -> None:
    """Enhanced files carry diffusion per frame (MR Diffusion macro): the 4 volumes of
    dcm_qa_enh, given b-values and directions frame by frame, give those bvals and
    directions (patient LPS) in volume order."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    directions = np.array([[0, 0, 0], [1, 0, 0], [0, 0.6, 0.8], [0, -0.8, 0.6]], dtype=float)
    for path in sorted((shared_data / "dcm_qa_enh/In/Siemens/XA10").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for frame in ds.PerFrameFunctionalGroupsSequence:
            volume = int(frame.FrameContentSequence[0].TemporalPositionIndex) - 1
            item = Dataset()
            item.DiffusionBValue = 0 if volume == 0 else 1000
            item.DiffusionDirectionality = "NONE" if volume == 0 else "DIRECTIONAL"
            if volume:
                gradient = Dataset()
                gradient.DiffusionGradientOrientation = list(directions[volume])
                item.DiffusionGradientDirectionSequence = Sequence([gradient])
            frame.MRDiffusionSequence = Sequence([item])
        ds.save_as(tmp_path / path.name)
    (series,) = _scan(tmp_path)
    assert series.report.kind == "DWI"
    volume = series.volume()
    np.testing.assert_array_equal(volume.bvals, [0, 1000, 1000, 1000])
    np.testing.assert_allclose(volume.gradients, directions)


def test_ge_protocol_block_that_inflates_without_end_is_not_read(shared_data: Path) -> None:
    """A GE protocol block (0025,xx1B) is gzip'd text; one that inflates to gigabytes
    (a bomb) is left unread instead of filling the memory."""
    import gzip

    from dicomlens import vendors

    path = next((shared_data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm"))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert vendors.ge_protocol(ds)["SLICEORDER"] == "1"
    bomb = b"\x00\x00\x00\x00" + gzip.compress(b"A" * (64 << 20))
    ds.private_block(0x0025, vendors.GE_SERIES)[0x1B].value = bomb
    assert vendors.ge_protocol(ds) == {}


def test_bvecs_follow_fsl_and_refuse_degenerate_axes() -> None:
    from dicomlens.volume.diffusion import fsl_bvecs

    gradients = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])  # LPS
    radiological = np.diag([-2.0, 2.0, 2.0, 1.0])  # i towards the left: det < 0
    np.testing.assert_allclose(
        fsl_bvecs(gradients, radiological), [[0, 1, 0], [0, 0, -0.6], [0, 0, 0.8]], atol=1e-12
    )
    neurological = np.diag([2.0, 2.0, 2.0, 1.0])  # det > 0: x negated
    np.testing.assert_allclose(
        fsl_bvecs(gradients, neurological), [[0, 1, 0], [0, 0, -0.6], [0, 0, 0.8]], atol=1e-12
    )
    with pytest.raises(SeriesError, match="degenerate"):
        fsl_bvecs(gradients, np.diag([1.0, 0.0, 1.0, 1.0]))


@pytest.mark.parametrize(
    "folder", ["dcm_qa_nih/In/20180918GE/mr_0004", "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"]
)
def test_one_volume_of_a_4d_series_reads_only_it(shared_data: Path, folder: str) -> None:
    (series,) = _scan(shared_data / folder)
    whole = series.volume()
    for number in (0, 3, series.report.volumes - 1):
        part = series.one_volume(number)
        assert len({s.path for s in part.slices}) < len({s.path for s in series.slices})
        np.testing.assert_array_equal(part.volume().array, whole.array[..., number])


def _written_both_ways(folder: Path, tmp_path: Path) -> tuple[bytes, bytes, Any, Any]:
    """The CLI's .nii (voxels read straight into the file) and its .nii.gz (the volume
    loaded in memory, then written by nibabel), uncompressed, with their sidecars."""
    assert main(["volume", str(folder), "-o", str(tmp_path / "direct.nii")]) == 0
    assert main(["volume", str(folder), "-o", str(tmp_path / "copy.nii.gz")]) == 0
    direct = (tmp_path / "direct.nii").read_bytes()
    with gzip.open(tmp_path / "copy.nii.gz") as packed:
        copy = packed.read()
    sidecars = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("direct", "copy")]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    return direct, copy, sidecars[0], sidecars[1]


@pytest.mark.parametrize("folder", ["dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2",
                                    "dcm_qa_nih/In/20180918GE/mr_0004"])  # fmt: skip
def test_nii_filled_in_place_equals_the_written_copy(
    shared_data: Path, tmp_path: Path, folder: str
) -> None:
    direct, copy, direct_sidecar, copy_sidecar = _written_both_ways(shared_data / folder, tmp_path)
    assert direct == copy  # header and voxels, byte for byte
    assert direct_sidecar == copy_sidecar
    assert nib.load(tmp_path / "direct.nii").shape[3] > 1  # 4-D


def test_derived_diffusion_maps_have_no_bval(shared_data: Path, tmp_path: Path) -> None:
    """Trace-weighted, ADC or FA maps computed by the scanner: no .bval/.bvec (dcm2niix
    writes none either), their notes say why."""

    folder = tmp_path / "trace"
    folder.mkdir()
    source = shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    for path in sorted(source.glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(path)
        ds.ImageType = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW", "ND", "NORM", "MOSAIC"]
        ds.save_as(folder / path.name)
    (series,) = _scan(folder)
    volume = series.volume()
    assert volume.bvals is None and volume.gradients is None
    assert any("derived diffusion images (DERIVED, TRACEW)" in n for n in volume.report.notes)
    written = save_volume(volume, tmp_path / "x.nii", series=series)
    assert not [path for path in written if path.suffix in (".bval", ".bvec")]


def test_one_isotropic_image_has_no_bval(shared_data: Path, tmp_path: Path) -> None:
    """A single weighted image with no direction (a trace volume written apart, as
    dcm2niix writes its _ADC files): no .bval, no .bvec."""

    folder = tmp_path / "iso"
    folder.mkdir()
    source = sorted((shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2").glob("*.dcm"))
    ds = pydicom.dcmread(source[1])
    block = ds.private_block(0x0019, "SIEMENS MR HEADER")
    assert float(block[0x0C].value) > 0
    del ds[block.get_tag(0x0E)]  # the direction goes
    ds.save_as(folder / "iso.dcm")
    (series,) = _scan(folder)
    volume = series.volume()
    assert volume.bvals is None and "isotropic diffusion image" in volume.report.notes[-1]
    written = save_volume(volume, tmp_path / "x.nii", series=series)
    assert not [path for path in written if path.suffix in (".bval", ".bvec")]


def test_philips_volume_order_without_its_diffusion_order(
    philips_dwi: Path, tmp_path: Path
) -> None:
    """Some Philips software writes 0 throughout (2005,xx96): the b-value and gradient
    numbers (2005,xx12/13) order the volumes then (instance numbers are scrambled)."""

    from dicomlens import vendors

    folder = tmp_path / "zeroed"
    folder.mkdir()
    for path in sorted(philips_dwi.iterdir()):
        ds = pydicom.dcmread(path)
        if "DiffusionBValue" in ds:  # an image of the DWI (not the derived one)
            ds.private_block(0x2005, vendors.PHILIPS_MR_6)[0x96].value = 0
        ds.save_as(folder / path.name)
    series = max(_scan(folder), key=lambda s: len(s.slices))
    volume = series.volume()
    assert volume.bvals is not None and len(volume.bvals) == 17
    np.testing.assert_allclose(volume.bvals, [0] + [1000] * 12 + [0.001, 0.002, 0.003, 0.004],
                               atol=1e-6)  # fmt: skip


def test_volumes_further_apart_than_the_tr_get_the_measured_interval(
    shared_data: Path, tmp_path: Path
) -> None:
    """Classic slices whose volumes start 7 s apart with a TR of 0.25 s (a pause between
    volumes, as in sparse fMRI or ASL): RepetitionTime and the NIfTI's time step become
    the measured 7 s, the header's TR RepetitionTimeExcitation (dcm2niix's rule).
    Mosaics keep their TR however far apart their files are, as in dcm2niix."""
    folder = _siemens_classic_dwi(shared_data, tmp_path / "classic")
    (series,) = _scan(folder)
    sidecar = _convert(series, tmp_path / "x.nii.gz")
    reported = float(pydicom.dcmread(series.slices[0].path).RepetitionTime) / 1000
    assert sidecar["RepetitionTimeExcitation"] == reported < 1
    assert sidecar["RepetitionTime"] == pytest.approx(7.0, abs=1e-6)
    assert nib.load(tmp_path / "x.nii.gz").header.get_zooms()[3] == pytest.approx(7.0)

    def ten_seconds_apart(ds: pydicom.Dataset) -> None:
        later = seconds_of_day(ds.AcquisitionTime) + 10 * (int(ds.InstanceNumber) - 1)
        hours, minutes = divmod(later // 60, 60)
        ds.AcquisitionTime = f"{hours:02.0f}{minutes:02.0f}{later % 60:09.6f}"

    mosaics = edited_copy(shared_data / NIH_SIEMENS_EPI, tmp_path / "mosaics", ten_seconds_apart)
    (paused,) = _scan(mosaics)
    kept = _convert(paused, tmp_path / "kept" / "x.nii.gz")
    assert "RepetitionTimeExcitation" not in kept
    tr = float(pydicom.dcmread(paused.slices[0].path, stop_before_pixels=True).RepetitionTime)
    assert kept["RepetitionTime"] == pytest.approx(tr / 1000)


def test_siemens_field_map_phase_has_both_echo_times(shared_data: Path, tmp_path: Path) -> None:
    """Siemens phase images of a two-echo protocol (alTE[0], alTE[1] in microseconds)
    carry EchoTime1 and EchoTime2; magnitude images do not."""
    def two_echoes(component: str) -> Callable[[pydicom.Dataset], None]:
        def edit(ds: pydicom.Dataset) -> None:
            first = b"alTE[0]\t = \t30000"
            replace_nested(ds, 0x00211019, first, first + b"\nalTE[1]\t = \t32460")
            replace_nested(ds, 0x00089208, "MAGNITUDE", component)  # ComplexImageComponent

        return edit

    folders = {component: edited_copy(shared_data / "dcm_qa_enh/In", tmp_path / component,
                                      two_echoes(component))
               for component in ("MAGNITUDE", "PHASE")}  # fmt: skip
    phase = _convert(_scan(folders["PHASE"])[0], tmp_path / "phase" / "x.nii.gz")
    magnitude = _convert(_scan(folders["MAGNITUDE"])[0], tmp_path / "magnitude" / "x.nii.gz")
    assert (phase["EchoTime1"], phase["EchoTime2"]) == (0.03, 0.03246)
    assert "PHASE" in phase["ImageType"] and "EchoTime1" not in magnitude


def test_enhanced_inversion_times_give_the_inversion_time(
    shared_data: Path, tmp_path: Path
) -> None:
    """Enhanced files keep the inversion time as InversionTimes (0018,9079) in the MR
    Modifier functional group: the sidecar's InversionTime comes from it (ms -> s)."""

    def inverted(ds: pydicom.Dataset) -> None:
        ds.SharedFunctionalGroupsSequence[0].MRModifierSequence[0].InversionTimes = [900.0]

    folder = edited_copy(shared_data / "dcm_qa_enh/In", tmp_path / "ir", inverted)
    sidecar = _convert(_scan(folder)[0], tmp_path / "x.nii.gz")
    assert sidecar["InversionTime"] == 0.9
    plain = _convert(_scan(shared_data / "dcm_qa_enh/In")[0], tmp_path / "plain" / "x.nii.gz")
    assert "InversionTime" not in plain


def test_each_echo_of_a_multi_echo_series_says_its_number(
    shared_data: Path, tmp_path: Path
) -> None:
    """A series holding two echoes is split by echo; each part's sidecar gives its
    EchoNumber, 1 included (dcm2niix's rule), while a single-echo series has none."""
    from pydicom.uid import generate_uid

    folder = tmp_path / "echoes"
    folder.mkdir()
    sources = sorted((shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag").glob("*.dcm"))
    for echo in (1, 2):
        for path in sources:
            ds = pydicom.dcmread(path)
            ds.EchoNumbers = echo
            ds.EchoTime = float(ds.EchoTime) * echo
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(folder / f"{echo}_{path.name}")
    parts = _scan(folder)
    assert [part.split_by("echo") for part in parts] == [True, True]
    numbers = [_convert(part, tmp_path / str(n) / "x.nii")["EchoNumber"] for n, part in
               enumerate(parts)]  # fmt: skip
    assert sorted(numbers) == [1, 2]
    (single,) = _scan(sources[0].parent)
    assert not single.split_by("echo")
    assert "EchoNumber" not in _convert(single, tmp_path / "single" / "x.nii")


def test_siemens_xa_frames_echo_from_their_ice_dimensions(
    shared_data: Path, tmp_path: Path
) -> None:
    """Enhanced XA frames have no EchoNumbers: their echo is the second field of the
    ICE dimensions (0021,xx06)[SIEMENS MR SDI 02] ("X_2_..." for echo 2)."""
    folder = edited_copy(shared_data / "dcm_qa_enh/In", tmp_path / "second",
                         lambda ds: replace_nested(ds, 0x00211106, "X_1_", "X_2_"))  # fmt: skip
    (series,) = _scan(folder)
    assert {s.echo_number for s in series.slices} == {2}
    assert _convert(series, tmp_path / "x.nii.gz")["EchoNumber"] == 2
    (first,) = _scan(shared_data / "dcm_qa_enh/In")
    assert {s.echo_number for s in first.slices} == {1}


def test_diffusion_scheme_of_protocols_without_ds_scheme(shared_data: Path, tmp_path: Path) -> None:
    """Older Siemens protocols give no sDiffusion.dsScheme: their ucReadOutMode says it
    (1 monopolar, 2 bipolar; dcm2niix's rule). The shared series says both (dsScheme 1,
    Bipolar, wins); with dsScheme unreadable its ucReadOutMode 1 makes it Monopolar."""

    def without_ds_scheme(ds: pydicom.Dataset) -> None:
        header = ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x20]
        assert b"sDiffusion.dsScheme\t = \t1" in header.value
        header.value = header.value.replace(b"sDiffusion.dsScheme", b"sDiffusion.dsSchemx")

    source_folder = shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    folder = edited_copy(source_folder, tmp_path / "older", without_ds_scheme)
    assert _convert(_scan(folder)[0], tmp_path / "x.nii.gz")["DiffusionScheme"] == "Monopolar"
    current = _convert(_scan(source_folder)[0], tmp_path / "current" / "x.nii.gz")
    assert current["DiffusionScheme"] == "Bipolar"


def test_siemens_xa_classic_slices_echo_from_their_ice_dimensions(
    shared_data: Path, tmp_path: Path
) -> None:
    """Siemens XA's classic slices may lack EchoNumbers: the ICE dimensions of their
    per-image block (0021,xx06)[SIEMENS MR SDI 02] give the echo."""

    def ice_only(ds: pydicom.Dataset) -> None:
        del ds.EchoNumbers
        block = ds.private_block(0x0021, "SIEMENS MR SDI 02", create=True)
        block.add_new(0x06, "LO", "X_2_1_1_1_1_1_1_1_1_1_1_629")

    source = shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"
    folder = edited_copy(source, tmp_path / "xa", ice_only)
    (series,) = _scan(folder)
    assert {s.echo_number for s in series.slices} == {2}
    assert _convert(series, tmp_path / "x.nii")["EchoNumber"] == 2
