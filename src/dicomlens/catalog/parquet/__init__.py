"""The catalog as a Parquet dataset, for archives beyond one machine.

:func:`index_parquet` writes it (on local processes or a Dask cluster),
:class:`ParquetCatalog` answers the query language over it through DuckDB,
:func:`compact` drops what tombstones have replaced. Needs the ``parquet`` extra
(pyarrow, DuckDB); the ``dask`` extra for a cluster.
"""

from __future__ import annotations

from dicomlens.catalog.parquet.compaction import compact
from dicomlens.catalog.parquet.conversion import export_catalog, import_catalog
from dicomlens.catalog.parquet.dataset import ParquetDataset
from dicomlens.catalog.parquet.reading import ParquetCatalog
from dicomlens.catalog.parquet.writing import index_parquet

__all__ = [
    "ParquetCatalog",
    "ParquetDataset",
    "compact",
    "export_catalog",
    "import_catalog",
    "index_parquet",
]
