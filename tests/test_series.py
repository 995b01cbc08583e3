"""Grouping, sorting and the geometry report on synthetic and real series."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import truncate_inside

from dicomlens.errors import DicomlensWarning
from dicomlens.scanning import scan, scan_folder
from dicomlens.series import (
    HEADER_TAGS,
    SliceInfo,
    affine_lps,
    orientation_label,
    slice_infos,
    sort_slices,
)


def test_shuffled_names_sort_by_position(make_ct_series: Callable[..., Path]) -> None:
    (series,) = scan([make_ct_series(12)])
    assert [s.instance_number for s in series.slices] == list(range(1, 13))
    report = series.report
    assert (report.sorted_by, report.orientation, report.verdict) == ("position", "axial", "ok")
    assert report.spacing_mm == pytest.approx(2.5) and report.uniform
    np.testing.assert_allclose(affine_lps(series.slices)[:3, 2], [0, 0, 2.5])
    np.testing.assert_allclose(affine_lps(series.slices)[:3, 3], [-100, -100, 0])


def test_gap_duplicate_and_tilt_are_reported(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(20, missing=(10,), duplicate=(4,), tilt=12.0)
    (series,) = scan([folder])
    report = series.report
    assert [s.instance_number for s in series.slices] == [n for n in range(1, 21) if n != 11]
    (gap,) = report.gaps
    assert gap.missing == 1
    assert gap.found_mm == pytest.approx(2 * gap.expected_mm, rel=1e-6)
    assert pydicom.dcmread(folder / gap.after).InstanceNumber == 10
    assert pydicom.dcmread(folder / gap.before).InstanceNumber == 12
    assert report.notes[0] == "1 repeated SOP Instance UID(s) kept once"
    assert report.tilt_degrees == pytest.approx(12.0, abs=0.1)
    assert report.verdict == "gap, tilt"
    step = affine_lps(series.slices)[:3, 2]
    assert math.degrees(math.atan2(step[1], step[2])) == pytest.approx(12.0, abs=0.01)


def test_volume_leaves_room_for_the_gap(make_ct_series: Callable[..., Path]) -> None:
    (series,) = scan([make_ct_series(8, missing=(3,))])
    volume = series.volume(rescale=False)
    assert volume.array.shape == (128, 128, 8)
    base = pydicom.dcmread(series.slices[0].path).pixel_array
    for k in range(8):
        expected = 0 if k == 3 else base.T.astype(np.int32) + k
        np.testing.assert_array_equal(volume.array[:, :, k], expected)
    assert "1 missing slice(s) left as zeros so that the affine holds" in volume.report.notes


def test_same_position_different_pixels_is_refused(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(5)
    ds = pydicom.dcmread(next(folder.glob("*.dcm")))
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.PixelData = bytes(len(ds.PixelData))
    ds.save_as(folder / "other.dcm")
    (series,) = scan([folder])
    assert len(series.report.duplicates) == 1
    with pytest.raises(Exception, match="lie at the same position but hold different pixels"):
        series.volume()


def test_instance_number_fallback_warns(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(4)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    with pytest.warns(DicomlensWarning, match="sorted by InstanceNumber"):
        (series,) = scan([folder])
    assert [s.instance_number for s in series.slices] == [1, 2, 3, 4]
    assert series.report.verdict == "sorted by instance number"


def test_split_by_image_size_says_why(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(4)
    path = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 64, 64
    ds.PixelData = bytes(64 * 64 * 2)
    ds.save_as(path)
    parts = scan([folder])
    assert sorted(len(p.slices) for p in parts) == [1, 3]
    assert {p.split_reason for p in parts} == {
        "split by image size: part 1 of 2",
        "split by image size: part 2 of 2",
    }


def test_bad_slice_is_named(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(5)
    victim = sorted(folder.glob("*.dcm"))[2]
    victim.write_bytes(victim.read_bytes()[:-4000])
    with pytest.warns(DicomlensWarning, match="Pixel Data shorter than declared"):
        (series,) = scan([folder])
        with pytest.raises(Exception, match=rf"{victim.name}: cannot decode pixel data"):
            series.volume()


def test_damaged_header_is_listed_not_dropped(make_ct_series: Callable[..., Path]) -> None:
    folder = make_ct_series(5)
    victim = sorted(folder.glob("*.dcm"))[1]
    truncate_inside(victim)
    result = scan_folder([folder])
    assert [str(e).split(":")[0] for e in result.errors] == [str(victim)]
    assert len(result.series[0].slices) == 4


def test_sorting_is_invariant_under_shuffling(
    make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_ct_series(9)
    infos = [
        info for path in folder.glob("*.dcm") for info in slice_infos(pydicom.dcmread(path), path)
    ]
    reference, _ = sort_slices(infos)
    rng = np.random.default_rng(1)
    for _ in range(5):
        shuffled = [infos[i] for i in rng.permutation(len(infos))]
        ordered, _ = sort_slices(shuffled)
        assert ordered == reference


def test_orientation_labels() -> None:
    assert orientation_label(np.array([0.0, 0.0, 1.0])) == "axial"
    assert orientation_label(np.array([1.0, 0.0, 0.0])) == "sagittal"
    assert orientation_label(np.array([0.0, -1.0, 0.0])) == "coronal"
    tilted = np.array([0.0, math.sin(math.radians(30)), math.cos(math.radians(30))])
    assert orientation_label(tilted) == "oblique"


def test_real_sagittal_series(shared_data: Path) -> None:
    folder = shared_data / "dcm_qa_decubitus/In/HFP"
    result = scan_folder([folder])
    t1 = [s for s in result.series if s.description == "t1_fl2d_sag"]
    assert len(t1) == 1 and result.skipped == 1  # HFP.txt
    report = t1[0].report
    assert (report.slices, report.orientation, report.verdict) == (35, "sagittal", "ok")
    assert report.spacing_mm == pytest.approx(4.8, abs=1e-3)


def test_enhanced_frames_become_slices(shared_data: Path) -> None:
    parts = scan([shared_data / "dcm_qa_enh/In/Siemens/XA10/6_1.dcm"])
    assert [len(p.slices) for p in parts] == [6]
    assert [s.frame for s in parts[0].slices] == sorted(s.frame for s in parts[0].slices)


def test_copy_of_a_folder_is_one_series(
    make_ct_series: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_ct_series(3)
    shutil.copytree(folder, tmp_path / "again")
    (series,) = scan([folder, tmp_path / "again"])
    assert len(series.slices) == 3
    assert series.report.notes[0] == "3 repeated SOP Instance UID(s) kept once"


def test_strict_refuses_a_gap(make_ct_series: Callable[..., Path]) -> None:  # V1
    (series,) = scan([make_ct_series(6, missing=(3,))])
    with pytest.raises(
        Exception, match=r"gap: expected spacing 2.5 mm, found 5.0 mm between .* \(strict\)"
    ):
        series.volume(strict=True)
    assert series.volume().array.shape[2] == 6


def _slices_read_whole(paths: list[Path]) -> list[SliceInfo]:
    """Every slice as reading each file whole gives it (no layouts)."""
    import warnings

    from dicomlens.reading import read
    from dicomlens.scanning import _DEFER_BYTES

    found = []
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read(path, decode=HEADER_TAGS, defer_size=_DEFER_BYTES)
        if "Rows" in ds:
            found.extend(slice_infos(ds, path))
    return found


@pytest.mark.shared_data
def test_scanning_against_layouts_equals_reading_whole(
    shared_data: Path, make_ct_series: Callable[..., Path]
) -> None:
    """The scan reads the next slices of a series against the first one's layout: the
    slices (geometry, diffusion, pixel offsets) are what reading every file whole gives."""
    import warnings

    from dicomlens.scanning import scan_folder

    folders = [
        make_ct_series(12),
        shared_data / "dcm_qa_nih/In/20180918GE/mr_0004",
        shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2",
        shared_data / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag",
        shared_data / "dcm_qa_enh/In",
    ]
    for folder in folders:
        paths = sorted(p for p in folder.rglob("*.dcm"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scan_folder([folder], workers=1)
        scanned = sorted((s for series in result.series for s in series.slices), key=_where)
        assert scanned == sorted(_slices_read_whole(paths), key=_where), folder


def _where(info: SliceInfo) -> tuple[str, int]:
    return str(info.path), info.frame or 0


def test_header_tags_name_every_top_level_element_slice_infos_reads() -> None:
    """Scans hand slice_infos only these elements (and the vendors' private groups): a
    keyword read without being listed would silently be missing."""
    import re

    from dicomlens import vendors
    from dicomlens.series import slices

    read = set(re.findall(r'get\("([A-Za-z]+)"\)', Path(slices.__file__).read_text()))
    read |= set(re.findall(r'public\("([A-Za-z]+)"\)', Path(vendors.__file__).read_text()))
    assert read and read - {"TransferSyntaxUID"} <= set(slices._HEADER_KEYWORDS)


def _ge_fmri_with_trigger_times(shared_data: Path, target: Path, trigger) -> Path:  # type: ignore[no-untyped-def]
    """The shared GE fMRI (15 slices x 10 volumes) with TriggerTime set by
    ``trigger(volume, slice)``."""
    target.mkdir()
    files = sorted((shared_data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm"))
    for index, source in enumerate(files):  # instance order: slice after slice, volume by volume
        ds = pydicom.dcmread(source)
        ds.TriggerTime = trigger(index // 15, index % 15)
        ds.save_as(target / source.name)
    return target


def test_cardiac_phases_are_told_from_ge_slice_clocks(shared_data: Path, tmp_path: Path) -> None:
    """A cine has one trigger time per phase at every position, within a heart beat;
    GE's EPI counts its TriggerTime from the series' start, so it differs at every
    slice and volume, and Philips' fMRI from the run's start, volume by volume."""
    cine = _ge_fmri_with_trigger_times(shared_data, tmp_path / "cine", lambda v, k: 40.0 * v)
    (series,) = scan([cine])
    assert series.report.kind == "cardiac phases"
    clock = _ge_fmri_with_trigger_times(
        shared_data, tmp_path / "clock", lambda v, k: 5000.0 * v + 333.0 * k
    )
    (series,) = scan([clock])
    assert series.report.kind == "fMRI" and series.report.volumes == 10
    run = _ge_fmri_with_trigger_times(shared_data, tmp_path / "run", lambda v, k: 1259.0 * v)
    (series,) = scan([run])  # Philips' fMRI: one trigger time per volume, over the run
    assert series.report.kind == "fMRI"


def test_isotropic_diffusion_images_are_a_part_of_their_own(
    philips_dwi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DTI series with Philips' isotropic (trace) volume, weighted but with no
    direction: dcm2niix writes it apart; so do we, and `volume` takes the DTI."""
    from pydicom.uid import generate_uid

    from dicomlens import vendors
    from dicomlens.cli import main

    folder = tmp_path / "dti"
    shutil.copytree(philips_dwi, folder)
    (dwi,) = [s for s in scan([philips_dwi]) if s.report.kind == "DWI"]
    depth = len(dwi.slices) // dwi.report.volumes
    weighted = dwi.slices[depth : 2 * depth]  # the second volume: b = 1000
    assert all(s.b_value == 1000 and s.gradient for s in weighted)
    for info in weighted:
        ds = pydicom.dcmread(info.path)
        ds.SOPInstanceUID = generate_uid()
        ds.DiffusionGradientOrientation = [0.0, 0.0, 0.0]  # as Philips writes its trace
        ds.private_block(0x2001, vendors.PHILIPS_IMAGING)[0x04].value = "I"
        for offset in (0xB0, 0xB1, 0xB2):
            ds.private_block(0x2005, vendors.PHILIPS_MR)[offset].value = 0.0
        ds.save_as(folder / f"iso_{info.path.name}")
    parts = [s for s in scan([folder]) if s.uid == dwi.uid and s.report.kind != "2-D"]
    directional, isotropic = parts[0], parts[-1]
    assert directional.report.volumes == dwi.report.volumes
    assert isotropic.shape == dwi.shape[:3] and "isotropic diffusion" in isotropic.split_reason
    assert main(["volume", str(folder), "--series", f"{dwi.number}",
                 "-o", str(tmp_path / "x.nii")]) == 1  # fmt: skip
    assert f"series {dwi.number} is split in 3 parts" in capsys.readouterr().err
    assert main(["volume", str(folder), "-o", str(tmp_path / "x.nii")]) == 0  # the largest
    assert f"part {dwi.number}:1 is the largest and was chosen" in capsys.readouterr().err
    assert len(np.loadtxt(tmp_path / "x.bval")) == dwi.report.volumes


def test_ge_b0_map_is_split_into_field_map_and_magnitude(
    shared_data: Path, tmp_path: Path
) -> None:
    """A GE B0 map holds the field map (Hz), then the magnitude, at the same positions:
    two parts (dcm2niix's _fieldmaphz and magnitude files), not a 4-D series."""
    from dicomlens.export import save_volume

    folder = tmp_path / "b0map"
    folder.mkdir()
    sources = sorted((shared_data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm"))
    for source in sources:
        ds = pydicom.dcmread(source)
        if int(ds.InstanceNumber) > 30:  # two volumes of 15 slices
            continue
        ds.private_block(0x0019, "GEMS_ACQU_01")[0x9C].value = "B0map"
        ds.private_block(0x0021, "GEMS_RELA_01")[0x4F].value = 15
        ds.save_as(folder / source.name)
    parts = scan([folder])
    assert [p.shape for p in parts] == [(64, 64, 15), (64, 64, 15)]
    assert {p.first.component for p in parts} == {"FIELDMAPHZ", "MAGNITUDE"}
    assert all("split by image component" in p.split_reason for p in parts)
    field = next(p for p in parts if p.first.component == "FIELDMAPHZ")
    assert max(s.instance_number or 0 for s in field.slices) == 15
    save_volume(field.volume(), tmp_path / "fmap.nii", series=field)
    sidecar = json.loads((tmp_path / "fmap.json").read_text())
    assert sidecar["ImageType"][-1] == "FIELDMAPHZ" and sidecar["Units"] == "Hz"


def test_ge_pepolar_reversed_images_are_turned_upright(shared_data: Path, tmp_path: Path) -> None:
    """GE's epi_pepolar in mode 2 (reversed, then forward): odd temporal positions are
    reversed polarity, stored upside down and saying nothing else. They are a part of
    their own, turned upright, their phase encoding the other way and numbered +1000,
    as dcm2niix writes them."""
    from dicomlens.export import save_volume

    folder = tmp_path / "pepolar"
    folder.mkdir()
    sources = sorted((shared_data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm"))
    for source in sources:
        ds = pydicom.dcmread(source)
        volume = (int(ds.InstanceNumber) - 1) // 15
        if volume >= 4:
            continue
        ds.TemporalPositionIdentifier = volume + 1
        block = ds.private_block(0x0019, "GEMS_ACQU_01")
        block[0x9C].value = "research/ABCD/epi_pepolar"
        block[0xB3].value = "2"
        if volume % 2 == 0:  # temporal positions 1 and 3: reversed, stored upside down
            ds.PixelData = np.ascontiguousarray(ds.pixel_array[::-1]).tobytes()
        ds.save_as(folder / source.name)
    (original,) = scan([shared_data / "dcm_qa_nih/In/20180918GE/mr_0004"])
    expected = original.volume().array[..., :4]
    parts = scan([folder])
    assert [p.split_reason.split(":")[0] for p in parts] == ["split by phase-encoding polarity"] * 2
    reversed_part = next(p for p in parts if p.first.rows_reversed)
    forward = next(p for p in parts if not p.first.rows_reversed)
    np.testing.assert_array_equal(reversed_part.volume().array, expected[..., 0::2])
    np.testing.assert_array_equal(forward.volume().array, expected[..., 1::2])
    sidecars = {}
    for name, part in (("rev", reversed_part), ("fwd", forward)):
        save_volume(part.volume(), tmp_path / f"{name}.nii", series=part)
        sidecars[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert sidecars["fwd"]["PhaseEncodingDirection"].rstrip("-") == "j"
    assert sidecars["rev"]["PhaseEncodingDirection"] != sidecars["fwd"]["PhaseEncodingDirection"]
    assert sidecars["rev"]["SeriesNumber"] == sidecars["fwd"]["SeriesNumber"] + 1000
