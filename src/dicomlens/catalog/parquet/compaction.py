"""Compaction: rewrite the parts that hold dead rows or tombstones, without them."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dicomlens.catalog.parquet.dataset import ParquetDataset
from dicomlens.catalog.parquet.format import TABLES, rows_version_of, schema, write_tables

__all__ = ["compact"]


def compact(dataset: ParquetDataset) -> int:
    """Rewrite every part that holds a dead row or a tombstone with its live rows only
    (their ordinals kept), then drop the old parts. Call within
    :meth:`ParquetDataset.writing`. Returns the number of dead rows dropped."""
    dead: dict[str, set[str]] = defaultdict(set)
    for file in dataset.files("tombstones"):
        for tombstone in pq.read_table(file).to_pylist():
            dead[tombstone["part"]].add(tombstone["path"])
    rewrite = [p["name"] for p in dataset.parts if p["tombstones"] or p["name"] in dead]
    dropped = 0
    for old in rewrite:
        gone = pa.array(sorted(dead.get(old, ())), pa.string())
        name, incoming = dataset.new_part()
        tables = {"tombstones": schema("tombstones").empty_table()}
        for table in TABLES[:-1]:
            rows = pq.read_table(dataset.folder / "parts" / old / f"{table}.parquet")
            live = rows.filter(pc.invert(pc.is_in(rows["path"], value_set=gone)))
            dropped += rows.num_rows - live.num_rows
            position = live.schema.get_field_index("part")
            tables[table] = live.set_column(
                position, "part", pa.array([name] * live.num_rows, pa.string())
            )
        if any(tables[t].num_rows for t in TABLES[:-1]):
            version = rows_version_of(dataset.folder / "parts" / old)  # the rows' own
            write_tables(tables, incoming, rows_version=version)
            dataset.commit(name)
    dataset.drop(set(rewrite))
    return dropped
