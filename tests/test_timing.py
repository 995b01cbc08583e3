"""Slice timing and multiband factors by dcm2niix's vendor rules (volume/timing.py).

GE gives no per-slice times: dcm2niix models its fMRI (epiRT) and multi-phase EPI from
the protocol data block (0025,xx1B)[GEMS_SERS_01]: SLICEORDER, MBACCEL, the group delay
and the software release. Copies of a shared GE fMRI series (15 slices, TR 5 s,
interleaved, DV26) with those fields changed must give the times those rules give.
"""

from __future__ import annotations

import gzip
import json
import struct
import warnings
from pathlib import Path

import nibabel as nib
import pydicom
import pytest
from conftest import edited_copy, replace_nested

from dicomlens import vendors
from dicomlens.export import save_volume
from dicomlens.scanning import scan

GE_FMRI = "dcm_qa_nih/In/20180918GE/mr_0004"  # interleaved, inferior to superior


def _ge_copy(
    shared_data: Path,
    target: Path,
    *,
    protocol: dict[str, str] | None = None,
    software: str | None = None,
    group_delay_s: float | None = None,
) -> Path:
    """The shared GE fMRI with protocol lines, SoftwareVersions or the fMRI group delay
    (0043,xx7C)[GEMS_PARM_01] replaced."""
    target.mkdir()
    for source in sorted((shared_data / GE_FMRI).glob("*.dcm")):
        ds = pydicom.dcmread(source)
        if protocol:
            block = ds.private_block(0x0025, vendors.GE_SERIES)
            text = gzip.decompress(bytes(block[0x1B].value[4:])).decode("latin-1")
            lines = [
                f'{key} "{protocol[key]}"' if (key := line.split(" ", 1)[0]) in protocol else line
                for line in text.splitlines()
            ]
            lines += [f'{key} "{value}"' for key, value in protocol.items() if key not in text]
            packed = gzip.compress("\n".join(lines).encode("latin-1") + b"\n")
            block[0x1B].value = struct.pack("<I", len(packed)) + packed
        if software is not None:
            ds.SoftwareVersions = software.split("\\")
        if group_delay_s is not None:
            ds.private_block(0x0043, vendors.GE_PARAMETERS)[0x7C].value = group_delay_s
        ds.save_as(target / source.name)
    return target


def _sidecar(folder: Path, tmp_path: Path, name: str) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (series,) = scan([folder])
    save_volume(series.volume(), tmp_path / f"{name}.nii", series=series)
    sidecar: dict[str, object] = json.loads((tmp_path / f"{name}.json").read_text())
    return sidecar


def _expected(ranks: list[int], step_s: float, slices: int = 15) -> list[float]:
    return [ranks[i % len(ranks)] * step_s for i in range(slices)]


def test_ge_fmri_interleaved_single_band(shared_data: Path, tmp_path: Path) -> None:
    sidecar = _sidecar(shared_data / GE_FMRI, tmp_path, "plain")
    odd_first = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7]  # 15 excitations
    assert sidecar["SliceTiming"] == pytest.approx(_expected(odd_first, 5 / 15), abs=1e-5)
    assert sidecar["RepetitionTime"] == 5 and "MultibandAccelerationFactor" not in sidecar


def test_ge_software_of_another_form_still_gets_slice_times(
    shared_data: Path, tmp_path: Path
) -> None:
    """LX 14's "14.0_M4_0629.a" does not read as a version: dcm2niix takes it as 0 and
    still models the timing (single band needs no version); a text too short to be a
    version (under 10 characters) gives none."""
    lx14 = "14\\LX\\MR Software release:14.0_M4_0629.a"
    old = _ge_copy(shared_data, tmp_path / "lx14", software=lx14)
    sidecar = _sidecar(old, tmp_path, "lx14")
    odd_first = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7]
    assert sidecar["SliceTiming"] == pytest.approx(_expected(odd_first, 5 / 15), abs=1e-5)
    short = _ge_copy(shared_data, tmp_path / "short", software="14\\LX")
    assert "SliceTiming" not in _sidecar(short, tmp_path, "short")


def test_ge_group_delay_adds_to_the_repetition_time(shared_data: Path, tmp_path: Path) -> None:
    """epiRT's group delay (0043,xx7C): volumes 5.5 s apart, slices still over 5 s."""
    folder = _ge_copy(shared_data, tmp_path / "delay", group_delay_s=0.5)
    sidecar = _sidecar(folder, tmp_path, "delay")
    assert sidecar["RepetitionTime"] == pytest.approx(5.5)
    assert nib.load(tmp_path / "delay.nii").header.get_zooms()[3] == pytest.approx(5.5)
    odd_first = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7]
    assert sidecar["SliceTiming"] == pytest.approx(_expected(odd_first, 5 / 15), abs=1e-5)


def test_ge_hyperband_before_27r3_adds_an_excitation(shared_data: Path, tmp_path: Path) -> None:
    """MBACCEL 2 of 15 slices: 8 excitations, even, so 9 before release 27.0 R03."""
    folder = _ge_copy(shared_data, tmp_path / "hb", protocol={"MBACCEL": "2"})
    sidecar = _sidecar(folder, tmp_path, "hb")
    ranks = [0, 5, 1, 6, 2, 7, 3, 8, 4]
    assert sidecar["SliceTiming"] == pytest.approx(_expected(ranks, 5 / 9), abs=1e-5)
    assert sidecar["MultibandAccelerationFactor"] == 2


def test_ge_hyperband_from_27r3_swaps_the_last_excitations(
    shared_data: Path, tmp_path: Path
) -> None:
    """From 27.0 R03 the 8 excitations stay 8, the last and third last swapped."""
    folder = _ge_copy(shared_data, tmp_path / "hb", protocol={"MBACCEL": "2"},
                      software="28\\LX\\MR29.1_EA_2039.g")  # fmt: skip
    sidecar = _sidecar(folder, tmp_path, "hb")
    ranks = [0, 4, 1, 5, 2, 7, 3, 6]
    assert sidecar["SliceTiming"] == pytest.approx(_expected(ranks, 5 / 8), abs=1e-5)


def test_ge_sequential_and_early_hyperband(shared_data: Path, tmp_path: Path) -> None:
    folder = _ge_copy(shared_data, tmp_path / "seq", protocol={"SLICEORDER": "0"})
    sidecar = _sidecar(folder, tmp_path, "seq")
    assert sidecar["SliceTiming"] == pytest.approx(_expected(list(range(15)), 5 / 15), abs=1e-5)
    early = _ge_copy(shared_data, tmp_path / "early", protocol={"MBACCEL": "3"},
                     software="24\\LX\\MR Software release:DV24.0_R02_1607.b")  # fmt: skip
    sidecar = _sidecar(early, tmp_path, "early")
    assert "SliceTiming" not in sidecar  # before 26.0 hyperband times cannot be told
    assert sidecar["MultibandAccelerationFactor"] == 3


def test_ge_multiphase_with_variable_delays_has_no_slice_timing(
    shared_data: Path, tmp_path: Path
) -> None:
    """A multi-phase EPI (not epiRT) with a planned delay: the TR grows by it; with
    variable delays dcm2niix gives no times, nor do we."""
    multiphase = {"IOPT": "EPI, MPh", "DELACQNOAV": "0.35", "DELACQ": "Other"}
    planned = _ge_copy(shared_data, tmp_path / "mph", protocol=multiphase)
    for path in planned.iterdir():  # not epiRT: no (0043,xx7C), pulse sequence 'epi'
        ds = pydicom.dcmread(path)
        del ds.private_block(0x0043, vendors.GE_PARAMETERS)[0x7C]
        ds.private_block(0x0019, vendors.GE_ACQUISITION)[0x9C].value = "epi"
        ds.save_as(path)
    sidecar = _sidecar(planned, tmp_path, "mph")
    assert sidecar["RepetitionTime"] == pytest.approx(5.35)
    odd_first = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7]
    assert sidecar["SliceTiming"] == pytest.approx(_expected(odd_first, 5 / 15), abs=1e-5)
    for path in planned.iterdir():
        ds = pydicom.dcmread(path)
        block = ds.private_block(0x0025, vendors.GE_SERIES)
        text = gzip.decompress(bytes(block[0x1B].value[4:])).replace(b"EPI, MPh", b"MPhVar")
        packed = gzip.compress(text)
        block[0x1B].value = struct.pack("<I", len(packed)) + packed
        ds.save_as(path)
    sidecar = _sidecar(planned, tmp_path, "variable")
    assert "SliceTiming" not in sidecar and sidecar["RepetitionTime"] == 5


def test_siemens_xa_frames_time_after_start(shared_data: Path, tmp_path: Path) -> None:
    """Siemens XA's enhanced frames: slice times from each frame's time after start
    (0021,xx04)[SIEMENS MR SDI 02], finer than FrameAcquisitionDateTime (here made
    coarse to the second: the times must not come from it)."""

    def to_the_second(ds: pydicom.Dataset) -> None:
        for frame in ds.PerFrameFunctionalGroupsSequence:
            content = frame.FrameContentSequence[0]
            content.FrameAcquisitionDateTime = str(content.FrameAcquisitionDateTime)[:14]

    folder = edited_copy(shared_data / "dcm_qa_enh/In", tmp_path / "xa", to_the_second)
    sidecar = _sidecar(folder, tmp_path, "xa")
    reference = json.loads(
        (shared_data / "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.json").read_text()
    )
    assert sidecar["SliceTiming"] == pytest.approx(reference["SliceTiming"], abs=1e-6)
    assert sidecar["MultibandAccelerationFactor"] == 2


def test_multiband_from_repeated_slice_times_when_the_protocol_says_one(
    shared_data: Path, tmp_path: Path
) -> None:
    """A protocol that reports a multiband factor of 1 (or none) does not hide the
    bands the slice times show: the XA frames' times repeat twice, so the factor is 2
    (dcm2niix's rule for XA files whose protocol does not say)."""
    key = b"sSliceAcceleration.lMultiBandFactor\t = \t"
    folder = edited_copy(
        shared_data / "dcm_qa_enh/In",
        tmp_path / "xa",
        lambda ds: replace_nested(ds, 0x00211019, key + b"2", key + b"1"),
    )
    sidecar = _sidecar(folder, tmp_path, "xa")
    assert len(sidecar["SliceTiming"]) == 2 * len(set(sidecar["SliceTiming"]))
    assert sidecar["MultibandAccelerationFactor"] == 2


def test_old_siemens_mosaics_get_the_protocol_s_planned_slice_times(
    shared_data: Path, tmp_path: Path
) -> None:
    """Mosaics of software up to VB12 have no MosaicRefAcqTimes nor (0019,xx0A) and keep
    their protocol as MrProtocol: the series knows its slices all the same (from the CSA
    header), and the slice times are those the protocol plans (TR / slices apart, in
    sSliceArray.ucMode's order: interleaved here, from the first of 25 slices), close to
    the measured times dcm2niix's reference gives for the same series."""
    def as_vb12(ds: pydicom.Dataset) -> None:
        block = ds.private_block(0x0029, "SIEMENS CSA HEADER")
        image, series = block[0x10], block[0x20]
        image.value = image.value.replace(b"MosaicRefAcqTimes\0", b"MosaicRefAcqTimez\0")
        renamed = series.value.replace(b"MrProtocol\0", b"MrProtocoX\0")  # VB17's empty one
        series.value = renamed.replace(b"MrPhoenixProtocol\0", b"MrProtocol\0\0\0\0\0\0\0\0")
        del ds[ds.private_block(0x0019, vendors.SIEMENS_MR).get_tag(0x0A)]  # not in VB12

    source = shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    folder = edited_copy(source, tmp_path / "vb12", as_vb12)
    (series,) = scan([folder])
    assert series.shape[2] == 25  # the CSA header's NumberOfImagesInMosaic
    sidecar = _sidecar(folder, tmp_path, "vb12")
    reference = json.loads(
        (shared_data / "dcm_qa_decubitus/Ref/ep2d_diff_mddw_20_p2_20220407150138.json").read_text()
    )
    planned = [rank * 0.12 for rank in (0, 13, 1, 14, 2, 15, 3, 16, 4, 17, 5, 18, 6, 19, 7, 20,
                                        8, 21, 9, 22, 10, 23, 11, 24, 12)]  # fmt: skip
    assert sidecar["SliceTiming"] == pytest.approx(planned, abs=1e-6)
    assert sidecar["SliceTiming"] == pytest.approx(reference["SliceTiming"], abs=0.025)
    assert sidecar["BaseResolution"] == reference["BaseResolution"]  # read from MrProtocol
