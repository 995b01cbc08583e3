"""DICOMweb (PS3.18) over the catalog: QIDO-RS search, WADO-RS retrieve, STOW-RS store.

:func:`dicomweb_routes` gives the routes the server mounts under ``/dicomweb``;
the work behind them is plain functions of a :class:`~dicomlens.catalog.Catalog`
(:mod:`.search`, :mod:`.retrieve`, :mod:`.rendered`, :mod:`.store`).
"""

from dicomlens.dicomweb.problems import Problem
from dicomlens.dicomweb.routes import MAX_STORE_BYTES, ROOT, DicomwebSettings, dicomweb_routes

__all__ = ["MAX_STORE_BYTES", "ROOT", "DicomwebSettings", "Problem", "dicomweb_routes"]
