"""Siemens mosaics saved with H>>F image numbering (the first tile the last protocol
slice) convert to the same volume, affine and slice timing as the usual F>>H ones, as
dcm2niix converts them.

The H>>F copies are made from a shared F>>H series the way the scanner writes them:
tiles in reverse order, ImagePositionPatient at the last slice, and the CSA image
header's ProtocolSliceNumber, SliceNormalVector and MosaicRefAcqTimes turned round
(rewritten in place: each CSA item keeps its length).
"""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicomlens import vendors
from dicomlens.export import save_volume
from dicomlens.scanning import Series, scan
from dicomlens.volume.mosaic import mosaic_side

FOOT_FIRST = "dcm_qa_nih/In/20180918Si/mr_0003"  # axial EPI, 2 mosaic volumes


def _set_csa_items(raw: bytes, name: str, texts: list[str]) -> bytes:
    """The CSA2 header ``raw`` with the items of ``name`` replaced by ``texts``, each
    written into its item's own bytes (space-padded, null-terminated)."""
    data = bytearray(raw)
    at = data.find(name.encode() + b"\0")
    assert at >= 0, name
    n_items = struct.unpack_from("<64si4s3i", data, at)[4]
    cursor = at + 84
    for index in range(n_items):
        length = struct.unpack_from("<4i", data, cursor)[1]
        cursor += 16
        if index < len(texts):
            text = texts[index].encode()
            assert len(text) < length, f"{name}[{index}] does not fit in {length} bytes"
            data[cursor : cursor + length] = text.ljust(length - 1) + b"\0"
        cursor += (length + 3) // 4 * 4
    return bytes(data)


def _head_first_copy(source: Path, target: Path, step_lps: np.ndarray) -> None:  # type: ignore[type-arg]
    """``source`` (an F>>H mosaic) as the scanner saves it with H>>F numbering."""
    ds = pydicom.dcmread(source)
    csa = vendors.siemens_csa(ds)
    count = int(csa["NumberOfImagesInMosaic"])
    side = mosaic_side(count)
    pixels = ds.pixel_array
    rows, columns = pixels.shape[0] // side, pixels.shape[1] // side
    tiles = pixels.reshape(side, rows, side, columns).swapaxes(1, 2).reshape(-1, rows, columns)
    flipped = tiles.copy()
    flipped[:count] = tiles[:count][::-1]
    mosaic = flipped.reshape(side, side, rows, columns).swapaxes(1, 2).reshape(pixels.shape)
    ds.PixelData = mosaic.astype(pixels.dtype).tobytes()
    position = np.array([float(v) for v in ds.ImagePositionPatient])
    ds.ImagePositionPatient = [f"{v:.8f}" for v in position + (count - 1) * step_lps]
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER")
    raw = block[0x10].value
    raw = _set_csa_items(raw, "ProtocolSliceNumber", [str(count - 1)])
    raw = _set_csa_items(raw, "SliceNormalVector", [f"{-v:.6f}" for v in csa["SliceNormalVector"]])
    times = [f"{t:.2f}" for t in reversed(csa["MosaicRefAcqTimes"])]
    raw = _set_csa_items(raw, "MosaicRefAcqTimes", times)
    block[0x10].value = raw
    ds.save_as(target)


def _series(folder: Path) -> Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (series,) = scan([folder])
    return series


def test_head_first_mosaics_convert_like_foot_first_ones(shared_data: Path, tmp_path: Path) -> None:
    usual = _series(shared_data / FOOT_FIRST)
    expected = usual.volume()
    save_volume(expected, tmp_path / "usual.nii", series=usual)
    folder = tmp_path / "hf"
    folder.mkdir()
    for info in usual.slices:
        _head_first_copy(info.path, folder / info.path.name, expected.affine_lps[:3, 2])
    reversed_csa = vendors.siemens_csa(pydicom.dcmread(folder / usual.slices[0].path.name))
    assert vendors.mosaic_head_first(reversed_csa)
    head_first = _series(folder)
    volume = head_first.volume()
    assert any("H>>F" in note for note in volume.report.notes)
    np.testing.assert_array_equal(volume.array, expected.array)
    np.testing.assert_allclose(volume.affine_lps, expected.affine_lps, atol=1e-3)
    save_volume(volume, tmp_path / "hf.nii", series=head_first)
    ours, theirs = nib.load(tmp_path / "hf.nii"), nib.load(tmp_path / "usual.nii")
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))
    timing = json.loads((tmp_path / "hf.json").read_text())["SliceTiming"]
    usual_timing = json.loads((tmp_path / "usual.json").read_text())["SliceTiming"]
    assert timing == pytest.approx(usual_timing, abs=1e-4)
    assert timing != sorted(timing)  # interleaved: the order itself was compared


def test_slice_timing_comes_from_the_second_volume(shared_data: Path, tmp_path: Path) -> None:
    """CMRR's sequences can write bogus MosaicRefAcqTimes into the first volume only."""
    usual = _series(shared_data / FOOT_FIRST)
    save_volume(usual.volume(), tmp_path / "usual.nii", series=usual)
    expected = json.loads((tmp_path / "usual.json").read_text())["SliceTiming"]
    folder = tmp_path / "bogus"
    folder.mkdir()
    for number, info in enumerate(usual.slices):
        ds = pydicom.dcmread(info.path)
        if number == 0:
            block = ds.private_block(0x0029, "SIEMENS CSA HEADER")
            times = vendors.siemens_csa(ds)["MosaicRefAcqTimes"]
            bogus = [f"{86397492.5 + t:.1f}" if i % 2 else f"{t:.2f}" for i, t in enumerate(times)]
            block[0x10].value = _set_csa_items(block[0x10].value, "MosaicRefAcqTimes", bogus)
        ds.save_as(folder / info.path.name)
    series = _series(folder)
    save_volume(series.volume(), tmp_path / "bogus.nii", series=series)
    timing = json.loads((tmp_path / "bogus.json").read_text())["SliceTiming"]
    assert timing == pytest.approx(expected, abs=2.5e-3) and max(timing) < 3


UIH_CREATOR = "Image Private Header"


def _as_uih_grid(source: Path, target: Path, affine: np.ndarray, tiles: int) -> None:  # type: ignore[type-arg]
    """A Siemens mosaic as UIH saves a grid: its first ``tiles`` tiles in only the rows
    of tiles they need, each tile's position in (0065,xx51), the b-value and the
    direction (along the image's row, column and normal) in (0065,xx09/37)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(source)
    csa = vendors.siemens_csa(ds)
    side = mosaic_side(int(csa["NumberOfImagesInMosaic"]))
    rows = -(-tiles // side)  # the rows of tiles the grid needs
    height = ds.Rows // side
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[: rows * height]).tobytes()
    ds.Rows = rows * height
    b_value = float(ds.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value)
    world = np.zeros(3)
    if b_value > 0:
        world = np.array(ds.private_block(0x0019, "SIEMENS MR HEADER")[0x0E].value, dtype=float)
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    local = np.linalg.solve(axes, world)  # along the row, column and slice step
    for group in (0x0019, 0x0029, 0x0051):
        for tag in [element.tag for element in ds if element.tag.group == group]:
            del ds[tag]
    ds.Manufacturer = "UIH"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "VFRAME"]
    del ds.ImagePositionPatient
    block = ds.private_block(0x0065, UIH_CREATOR, create=True)
    block.add_new(0x09, "FD", b_value)
    block.add_new(0x37, "FD", [float(v) for v in local])
    block.add_new(0x50, "DS", str(tiles))
    items = []
    for tile in range(tiles):
        item = Dataset()
        item.ImagePositionPatient = [f"{v:.6f}" for v in affine @ (0, 0, tile, 1)][:3]
        items.append(item)
    block.add_new(0x51, "SQ", Sequence(items))
    ds.save_as(target)


def test_uih_grid_converts_like_the_mosaic_it_was(shared_data: Path, tmp_path: Path) -> None:
    """UIH's grid (its mosaic: as many tile columns as Siemens', only the rows it needs,
    each tile's position given): the same voxels, affine and directions."""
    source = shared_data / "dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2"
    siemens = _series(source)
    expected = siemens.volume()
    folder = tmp_path / "uih"
    folder.mkdir()
    for info in siemens.slices[:4]:  # b = 0 and three directions
        _as_uih_grid(info.path, folder / info.path.name, expected.affine_lps, tiles=20)
    grid = _series(folder)
    assert grid.shape == (128, 128, 20, 4) and grid.report.kind == "DWI"
    volume = grid.volume()
    np.testing.assert_array_equal(volume.array, expected.array[:, :, :20, :4])
    np.testing.assert_allclose(volume.affine_lps, expected.affine_lps, atol=1e-4)
    np.testing.assert_allclose(volume.bvals, expected.bvals[:4])
    np.testing.assert_allclose(volume.gradients, expected.gradients[:4], atol=1e-6)
