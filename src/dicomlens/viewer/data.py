"""What the viewer shows, from the catalog: the tree, series with their slices,
frames of modality values and the tags of one instance (no HTTP here)."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from dicomlens.catalog import Catalog
from dicomlens.catalog.rows import slices_from_json
from dicomlens.errors import DicomlensError, TagSyntaxError, UnknownTagError
from dicomlens.reading import read
from dicomlens.scanning import Series, group_series
from dicomlens.series import SliceInfo
from dicomlens.tags import parse_tag
from dicomlens.values import value_text
from dicomlens.volume import (
    PRESETS,
    Window,
    colour_to_uint8,
    file_windows,
    full_range_window,
    load_slice,
    window_to_uint8,
)
from dicomlens.volume.mosaic import unpack_mosaic

__all__ = ["Library", "NotFound"]

_VALUE_WIDTH: Final = 120
_THUMBNAIL: Final = 64
_AXIS_LETTERS: Final = (("L", "R"), ("P", "A"), ("H", "F"))  # +x, +y, +z in LPS
_SLICES: Final = "f.path, i.slices, f.size, f.mtime_ns, f.inode"  # with the file's fingerprint


class NotFound(DicomlensError):
    """No such series, instance or frame in the catalog."""


@dataclass(frozen=True)
class Frame:
    """One image as sent to the browser: little-endian values, their type and shape."""

    data: bytes
    dtype: str
    rows: int
    columns: int


class Library:
    """The catalog as the viewer reads it (one per server; thread-safe reads)."""

    def __init__(self, catalog: str | Path) -> None:
        self.catalog = Path(catalog)
        Catalog(self.catalog, readonly=True).close()  # fail now if it cannot be opened

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with Catalog(self.catalog, readonly=True) as catalog:
            return catalog.execute(sql, parameters).fetchall()

    def tree(self) -> list[dict[str, Any]]:
        """Patients, their studies and series with counts."""
        rows = self._query(
            "SELECT p.id, p.patient_id, p.patient_name, st.id, st.study_date, "
            "st.study_description, se.id, se.series_number, se.modality, "
            "se.series_description, count(i.id) FROM series se "
            "JOIN studies st ON st.id = se.study JOIN patients p ON p.id = st.patient "
            "JOIN instances i ON i.series = se.id GROUP BY se.id "
            "ORDER BY p.patient_id, st.study_date, st.id, se.series_number, se.id"
        )
        patients: dict[int, dict[str, Any]] = {}
        studies: dict[int, dict[str, Any]] = {}
        for pid, patient_id, name, sid, date, description, se, number, modality, text, n in rows:
            patient = patients.setdefault(
                pid, {"id": pid, "patient_id": patient_id, "name": name, "studies": []}
            )
            if sid not in studies:
                studies[sid] = {"id": sid, "date": date, "description": description, "series": []}
                patient["studies"].append(studies[sid])
            studies[sid]["series"].append(
                {"id": se, "number": number, "modality": modality, "description": text,
                 "instances": n}
            )  # fmt: skip
        return list(patients.values())

    def series(self, series_id: int) -> list[Series]:
        """The parts of one catalog series (grouped and sorted as ``dicomlens series``)."""
        return _series(self.catalog, series_id)

    def series_info(self, series_id: int) -> dict[str, Any]:
        """Everything the slice viewer needs about a series, part by part."""
        parts = self.series(series_id)
        ids = self._instance_ids(series_id)
        return {
            "id": series_id,
            "parts": [
                {
                    "description": part.description,
                    "split": part.split_reason,
                    "report": part.report.to_dict(),
                    "orientation": _edge_letters(part.first),
                    "slices": [entry for s in part.slices for entry in _slice_entries(s, ids)],
                }
                for part in parts
            ],
            "presets": self._presets(_middle(_largest(parts))),
            "varying": self._varying(series_id),
        }

    def _instance_ids(self, series_id: int) -> dict[str, int]:
        rows = self._query(
            "SELECT f.path, i.id FROM instances i JOIN files f ON f.id = i.file WHERE i.series = ?",
            (series_id,),
        )
        return {path: number for path, number in rows}

    def _presets(self, shown: SliceInfo) -> list[dict[str, Any]]:
        """The windows of the slice shown first (each value of WindowCenter/Width,
        named by its explanation), then the named CT presets."""
        try:
            header = read(shown.path, stop_before_pixels=True)
            windows = file_windows(header)
        except (DicomlensError, ValueError):
            windows = []
        found = [{"name": w.name, "center": w.center, "width": w.width} for w in windows]
        if shown.modality == "CT":
            found += [{"name": n, "center": c, "width": w} for n, (c, w) in PRESETS.items()]
        return found

    def _varying(self, series_id: int) -> list[str]:
        """Top-level elements whose value differs between the series' instances
        (or that some instances lack), compared by SQLite over the stored JSON."""
        rows = self._query(
            "SELECT key FROM instances, json_each(instances.elements) WHERE series = ? "
            "GROUP BY key HAVING count(DISTINCT quote(value)) > 1 "
            "OR count(*) < (SELECT count(*) FROM instances WHERE series = ?) ORDER BY key",
            (series_id, series_id),
        )
        return [key for (key,) in rows]

    def thumbnail(self, series_id: int) -> bytes:
        """A small PNG of the middle slice of the largest part, in the file's first window
        (or the full range); colour as it is."""
        shown = _middle(_largest(self.series(series_id)))
        values = _first_frame(load_slice(shown, isolated=True))
        if values.ndim == 2:
            presets = self._presets(shown)
            window = (
                Window(presets[0]["center"], presets[0]["width"])
                if presets
                else full_range_window(values)
            )
            picture = Image.fromarray(window_to_uint8(values, window))
        else:
            picture = Image.fromarray(colour_to_uint8(values))
        picture.thumbnail((_THUMBNAIL, _THUMBNAIL))
        out = io.BytesIO()
        picture.save(out, format="PNG")
        return out.getvalue()

    def slice_info(self, instance_id: int, frame: int) -> SliceInfo:
        rows = self._query(
            f"SELECT {_SLICES} FROM instances i JOIN files f ON f.id = i.file WHERE i.id = ?",
            (instance_id,),
        )
        if not rows:
            raise NotFound(f"no instance {instance_id}")
        path, slices, *recorded = rows[0]
        infos = slices_from_json(slices, path, tuple(recorded))
        matching = [s for s in infos if (s.frame or 0) == frame]
        mosaic = infos[0] if len(infos) == 1 and infos[0].mosaic else None
        if mosaic is not None and 0 <= frame < (mosaic.mosaic_slices or 1):
            return replace(mosaic, frame=frame)  # a tile of a Siemens mosaic
        if not matching:
            raise NotFound(f"instance {instance_id} has no frame {frame}")
        return matching[0]

    def frame(self, instance_id: int, frame: int) -> Frame:
        """Modality values of one frame: int16 when they fit, else float32."""
        return _frame(self.slice_info(instance_id, frame))

    def tags(self, instance_id: int, search: str = "") -> list[dict[str, str]]:
        """The instance's elements (nested ones with their path), filtered by a tag in
        any notation or by text found in the tag, name or value."""
        ds = read(self.slice_info(instance_id, 0).path, stop_before_pixels=True)
        wanted = _tag_filter(search)
        rows: list[dict[str, str]] = []
        _rows(ds, "", rows)
        if hasattr(ds, "file_meta"):
            meta: list[dict[str, str]] = []
            _rows(ds.file_meta, "", meta)
            rows = meta + rows
        return [row for row in rows if wanted(row)]


def _largest(parts: list[Series]) -> Series:
    """The part the viewer opens (a split series: the one with the most slices)."""
    return max(parts, key=lambda part: len(part.slices))


def _middle(part: Series) -> SliceInfo:
    """The slice the viewer shows first."""
    return part.slices[len(part.slices) // 2]


def _slice_entries(info: SliceInfo, ids: dict[str, int]) -> list[dict[str, Any]]:
    """The viewer's slices of one catalogued slice: a Siemens mosaic gives one per tile
    (its frame number the tile's; positions are the mosaic's, not the tiles')."""
    if info.mosaic and info.mosaic_slices:
        frames: list[int] = list(range(info.mosaic_slices))
        position = None
    else:
        frames, position = [info.frame or 0], list(info.position) if info.position else None
    number = ids[str(info.path)]
    return [
        {"instance": number, "frame": frame, "number": info.instance_number, "position": position}
        for frame in frames
    ]


@lru_cache(maxsize=8)
def _series(catalog: Path, series_id: int) -> list[Series]:
    with Catalog(catalog, readonly=True) as db:
        rows = db.execute(
            f"SELECT {_SLICES} FROM instances i JOIN files f ON f.id = i.file WHERE i.series = ?",
            (series_id,),
        ).fetchall()
    if not rows:
        raise NotFound(f"no series {series_id}")
    infos = [
        info
        for path, slices, *recorded in rows
        for info in slices_from_json(slices, path, tuple(recorded))
    ]
    if not infos:
        raise NotFound(f"series {series_id} has no images")
    return group_series(infos)


@lru_cache(maxsize=256)
def _frame(info: SliceInfo) -> Frame:
    if info.mosaic and info.mosaic_slices and info.frame is not None:  # one tile
        whole = load_slice(replace(info, frame=None), isolated=True)
        values = unpack_mosaic(whole, info.mosaic_slices, info)[info.frame]
    else:
        values = _first_frame(load_slice(info, isolated=True))
    if values.ndim == 3 and values.shape[2] == 3:  # colour: shown as it is, no window
        return Frame(colour_to_uint8(values).tobytes(), "rgb8", *values.shape[:2])
    if values.ndim != 2:
        raise DicomlensError(f"images of {values.shape[-1]} samples per pixel are not shown")
    array = _compact(values)
    return Frame(array.astype(array.dtype.newbyteorder("<")).tobytes(), array.dtype.name,
                 *array.shape)  # fmt: skip


def _first_frame(values: NDArray[Any]) -> NDArray[Any]:
    """The first frame of a multi-frame image catalogued as one slice (a cine loop)."""
    framed = values.ndim == 4 or (values.ndim == 3 and values.shape[2] not in (3, 4))
    return values[0] if framed else values


def _compact(values: NDArray[Any]) -> NDArray[Any]:
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if low >= -32768 and high <= 32767:
            return values.astype(np.int16)
    return values.astype(np.float32)


def _edge_letters(info: SliceInfo) -> dict[str, str]:
    """Patient directions at the image edges (right, bottom; left and top opposite)."""
    if info.orientation is None:
        return {}
    row, column = info.orientation[:3], info.orientation[3:]

    def letters(vector: tuple[float, ...]) -> tuple[str, str]:
        order = sorted(range(3), key=lambda axis: -abs(vector[axis]))
        towards = "".join(
            _AXIS_LETTERS[a][0 if vector[a] > 0 else 1] for a in order if abs(vector[a]) > 0.25
        )
        away = "".join(
            _AXIS_LETTERS[a][1 if vector[a] > 0 else 0] for a in order if abs(vector[a]) > 0.25
        )
        return towards, away

    right, left = letters(row)
    bottom, top = letters(column)
    return {"right": right, "left": left, "bottom": bottom, "top": top}


def _rows(ds: Any, prefix: str, out: list[dict[str, str]]) -> None:
    for element in ds:
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        name = element.keyword or element.name
        if element.VR == "SQ":
            count = f"{len(element.value)} item(s)"
            out.append({"tag": prefix + tag, "keyword": name, "vr": "SQ", "value": count,
                        "key": _key(element)})  # fmt: skip
            for number, item in enumerate(element.value):
                _rows(item, f"{prefix}{tag}[{number}].", out)
            continue
        out.append(
            {"tag": prefix + tag, "keyword": name, "vr": str(element.VR),
             "value": value_text(element.value, limit=_VALUE_WIDTH), "key": _key(element)}
        )  # fmt: skip


def _key(element: Any) -> str:
    return f"{int(element.tag):08X}"


def _tag_filter(search: str) -> Any:
    text = search.strip()
    if not text:
        return lambda row: True
    try:
        path = parse_tag(text)
        leaf = path.steps[-1].ref
        wanted = None if leaf.creator is not None else f"({leaf.group:04X},{leaf.element:04X})"
    except (TagSyntaxError, UnknownTagError):
        wanted = None
    lowered = text.lower()

    def matches(row: dict[str, str]) -> bool:
        if wanted is not None and row["tag"].endswith(wanted):
            return True
        return any(lowered in row[field].lower() for field in ("tag", "keyword", "value"))

    return matches
