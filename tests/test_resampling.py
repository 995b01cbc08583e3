"""Tilted and irregularly spaced series: converted as acquired (steps listed, tilt
measured), and resampled onto equidistant slices whose values follow the math."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dicomlens.cli import main
from dicomlens.errors import SeriesError
from dicomlens.scanning import scan
from dicomlens.series import GeometryReport
from dicomlens.volume import Volume
from dicomlens.volume.resampling import resample_equidistant

TILT = 18.5
STEPS = (4.0, 4.0, 4.0, 7.0, 7.0, 7.0, 4.0, 4.0)


def test_tilted_irregular_ct_converts_as_acquired(make_ct_series: Callable[..., Path]) -> None:
    (series,) = scan([make_ct_series(steps=STEPS, gantry=TILT)])
    report = series.report
    assert report.tilt_degrees == pytest.approx(TILT, abs=0.1)
    assert report.verdict == "irregular spacing, tilt" and not report.gaps
    along_normal = [round(step * math.cos(math.radians(TILT)), 4) for step in STEPS]
    assert report.steps_mm == pytest.approx(along_normal, abs=1e-3)
    assert any(note.startswith("irregular spacing: steps of") for note in report.notes)
    volume = series.volume()
    assert volume.array.shape == (128, 128, 9)
    assert [row["k"] for row in volume.slices] == list(range(9))
    for k in range(9):  # pixels are CT_small's plus the slice number: every slice in place
        assert int(volume.array[:, :, k].astype(int).sum()) == int(
            volume.array[:, :, 0].astype(int).sum() + k * 128 * 128
        )


def test_a_gap_is_a_whole_multiple(make_ct_series: Callable[..., Path]) -> None:
    (series,) = scan([make_ct_series(steps=(2.5, 2.5, 5.0, 2.5, 2.5))])
    assert series.report.verdict == "gap" and series.report.gaps[0].missing == 1
    assert series.volume().array.shape[2] == 7  # room left for the missing slice


def _linear_volume() -> tuple[Volume, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """A sheared, irregular volume whose values are a linear function of position."""
    lean = math.radians(TILT)
    row = np.array([1.0, 0.0, 0.0])
    column = np.array([0.0, math.cos(lean), math.sin(lean)])
    depths_z = np.concatenate(([0.0], np.cumsum(STEPS)))
    positions = np.array([[-20.0, -15.0, z] for z in depths_z])
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = row * 0.8, column * 0.6
    affine[:3, 2], affine[:3, 3] = positions[1] - positions[0], positions[0]
    gradient = np.array([0.7, -1.3, 2.1])
    i, j = np.meshgrid(np.arange(40), np.arange(50), indexing="ij")
    array = np.empty((40, 50, len(positions)))
    for k, origin in enumerate(positions):
        world = origin + i[..., None] * row * 0.8 + j[..., None] * column * 0.6
        array[:, :, k] = world @ gradient + 5.0
    table = [{"k": k, "volume": 0, "position": list(p)} for k, p in enumerate(positions)]
    report = GeometryReport(len(positions), "oblique", "position", tilt_degrees=TILT)
    return Volume(array, affine, report, True, table), gradient, positions


def test_resampled_values_follow_the_math() -> None:
    volume, gradient, positions = _linear_volume()
    out = resample_equidistant(volume)
    normal = np.cross(volume.affine_lps[:3, 0], volume.affine_lps[:3, 1])
    normal /= np.linalg.norm(normal)
    spacing = 4.0 * math.cos(math.radians(TILT))  # the smallest step along the normal
    extent = sum(STEPS) * math.cos(math.radians(TILT))
    sheared = sum(STEPS) * math.sin(math.radians(TILT)) / 0.6  # the last slice moved, pixels
    assert out.array.shape == (40, 50 + math.ceil(sheared), round(extent / spacing) + 1)
    np.testing.assert_allclose(out.affine_lps[:3, 2], normal * spacing, atol=1e-9)
    np.testing.assert_allclose(out.affine_lps[:3, 3], positions[0])
    axes = out.affine_lps[:3, :3]
    assert abs(axes[:, 0] @ axes[:, 2]) < 1e-9 and abs(axes[:, 1] @ axes[:, 2]) < 1e-9
    checked = 0
    for t in range(out.array.shape[2]):
        world = out.affine_lps @ np.array([[i, j, t, 1.0] for i in (20, 25) for j in (25, 30)]).T
        inside = [(i, j) for i in (20, 25) for j in (25, 30)]
        for (i, j), point in zip(inside, world[:3].T, strict=True):
            assert out.array[i, j, t] == pytest.approx(point @ gradient + 5.0, abs=1e-6)
            checked += 1
    assert checked == 4 * out.array.shape[2]
    assert [row["k"] for row in out.slices] == list(range(out.array.shape[2]))
    inverse = np.linalg.inv(out.affine_lps)
    for k in (0, len(positions) - 1):  # the planes hold the corners of the first and last
        for i, j in ((0, 0), (39, 0), (0, 49), (39, 49)):
            corner = volume.affine_lps[:3, :2] @ (i, j) + positions[k]
            index = (inverse @ (*corner, 1.0))[:2]  # in the plane
            last = np.array(out.array.shape[:2]) - 1
            assert np.all(index > -1e-6) and np.all(index < last + 1e-6)
    assert out.report.notes[-1].startswith(f"resampled to {out.array.shape[2]} equidistant")


def test_resample_needs_every_position() -> None:
    volume, _, _ = _linear_volume()
    volume.slices = volume.slices[:3] + volume.slices[4:]
    with pytest.raises(SeriesError, match="position of every slice"):
        resample_equidistant(volume)


def test_cli_resample(make_ct_series: Callable[..., Path], tmp_path: Path) -> None:
    folder = make_ct_series(steps=STEPS, gantry=TILT)
    target = tmp_path / "ct.nii.gz"
    assert main(["volume", str(folder), "-o", str(target), "--resample"]) == 0
    image = nib.load(target)
    axes = image.affine[:3, :3] / np.linalg.norm(image.affine[:3, :3], axis=0)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-6)  # no shear left
    assert image.get_data_dtype() == np.int16
    sidecar = json.loads((tmp_path / "ct.json").read_text())
    assert len(sidecar["acquired"]["slices"]) == 9
    assert sidecar["geometry"]["tilt_degrees"] == pytest.approx(TILT, abs=0.1)
    assert "resampled to" in sidecar["geometry"]["notes"][-1]
