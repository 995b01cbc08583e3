"""The DICOMweb routes (QIDO-RS, WADO-RS, STOW-RS) of the server, under ``/dicomweb``.

Handlers only translate HTTP: the work is in :mod:`~dicomlens.dicomweb.search`,
:mod:`~dicomlens.dicomweb.retrieve`, :mod:`~dicomlens.dicomweb.rendered` and
:mod:`~dicomlens.dicomweb.store`. Failures are raised as
:class:`~dicomlens.dicomweb.problems.Problem` and answered by the server's
error handler with their status.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from dicomlens.catalog import Catalog
from dicomlens.catalog.store import Overrun
from dicomlens.dicomweb.media import MediaRange, accepted, multipart, multipart_type, new_boundary
from dicomlens.dicomweb.metadata import MetadataCache, bulk_data
from dicomlens.dicomweb.problems import (
    BadRequest,
    NotAcceptable,
    TooLarge,
    UnsupportedMediaType,
)
from dicomlens.dicomweb.rendered import picture_type, render, thumbnail_of
from dicomlens.dicomweb.retrieve import (
    Stored,
    dicom_parts,
    frame_numbers,
    frame_parts,
    locate,
)
from dicomlens.dicomweb.search import parse_search, search
from dicomlens.dicomweb.store import Spool, clean_store, store_parts

__all__ = ["ROOT", "DicomwebSettings", "dicomweb_routes"]

ROOT: Final = "/dicomweb"
DICOM_JSON: Final = "application/dicom+json"
MAX_STORE_BYTES: Final = 4 << 30
"""The longest STOW-RS body taken by default."""
_UID: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")
INLINE_SECONDS: Final = 0.005
INLINE_RESULTS: Final = 200
"""A search answered on the event loop takes at most this long and returns at most
this many results; a longer one runs in a thread."""
_TRUNCATED: Final = (
    '299 dicomlens "The number of results exceeded the maximum supported by the server. '
    'Additional results can be requested."'
)


@dataclass(frozen=True)
class DicomwebSettings:
    """What the DICOMweb routes serve, and where STOW-RS stores (None: read-only)."""

    catalog: Path
    store: Path | None = None
    max_store_bytes: int = MAX_STORE_BYTES


def dicomweb_routes(settings: DicomwebSettings) -> list[BaseRoute]:
    """The routes of the DICOMweb service for ``settings``."""
    if settings.store is not None:
        settings.store.mkdir(parents=True, exist_ok=True)
        clean_store(settings.store)
    handlers = _Handlers(settings)
    study, series, instance = (
        "/studies/{study}",
        "/studies/{study}/series/{series}",
        "/studies/{study}/series/{series}/instances/{instance}",
    )
    table: list[tuple[str, Any, list[str]]] = [
        ("/studies", handlers.search_studies, ["GET"]),
        ("/studies", handlers.store, ["POST"]),
        (f"{study}/series", handlers.search_series, ["GET"]),
        ("/series", handlers.search_series, ["GET"]),
        (f"{series}/instances", handlers.search_instances, ["GET"]),
        (f"{study}/instances", handlers.search_instances, ["GET"]),
        ("/instances", handlers.search_instances, ["GET"]),
        (study, handlers.retrieve, ["GET"]),
        (study, handlers.store, ["POST"]),
        (series, handlers.retrieve, ["GET"]),
        (instance, handlers.retrieve, ["GET"]),
        (f"{study}/metadata", handlers.metadata, ["GET"]),
        (f"{series}/metadata", handlers.metadata, ["GET"]),
        (f"{instance}/metadata", handlers.metadata, ["GET"]),
        (f"{instance}/frames/{{frames}}", handlers.frames, ["GET"]),
        (f"{instance}/rendered", handlers.rendered, ["GET"]),
        (f"{instance}/frames/{{frames}}/rendered", handlers.rendered, ["GET"]),
        (f"{instance}/bulk/{{steps:path}}", handlers.bulk, ["GET"]),
        (f"{study}/thumbnail", handlers.thumbnail, ["GET"]),
        (f"{series}/thumbnail", handlers.thumbnail, ["GET"]),
        (f"{instance}/thumbnail", handlers.thumbnail, ["GET"]),
        (f"{instance}/frames/{{frames}}/thumbnail", handlers.thumbnail, ["GET"]),
    ]
    return [Route(ROOT + path, endpoint, methods=methods) for path, endpoint, methods in table]


def _uids(request: Request) -> tuple[str | None, str | None, str | None]:
    found: list[str | None] = []
    for name in ("study", "series", "instance"):
        value = request.path_params.get(name)
        if value is not None and (len(value) > 64 or not _UID.match(value)):
            raise BadRequest(f"{name} {value[:70]!r} is not a UID")
        found.append(value)
    return found[0], found[1], found[2]


def _base_url(request: Request) -> str:
    """The DICOMweb root as the client addressed it; a Host without its port (as
    dicomweb-client sends) gets the port the request came in on."""
    url = request.base_url
    server = request.scope.get("server")
    if url.port is None and server and server[1] not in (None, 80, 443):
        url = url.replace(port=server[1])
    return str(url).rstrip("/") + ROOT


def _json_accepted(request: Request) -> None:
    wanted = accepted(request.headers.get("accept"))
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in wanted):
        raise NotAcceptable(f"this resource is {DICOM_JSON}")


class _Handlers:
    def __init__(self, settings: DicomwebSettings) -> None:
        self.settings = settings
        self.metadata_cache = MetadataCache()
        self._connections = threading.local()

    def _catalog(self) -> Catalog:
        """This thread's read-only connection to the catalog, kept for its next
        requests (each query sees what was committed before it)."""
        catalog: Catalog | None = getattr(self._connections, "catalog", None)
        if catalog is None:
            catalog = self._connections.catalog = Catalog(self.settings.catalog, readonly=True)
        return catalog

    def _located(self, request: Request) -> list[Stored]:
        study, series, instance = _uids(request)
        assert study is not None  # every retrieve route names its study
        return locate(self._catalog(), study, series, instance)

    # QIDO-RS -------------------------------------------------------------

    async def _search(self, request: Request, level: str) -> Response:
        """Most searches take well under a millisecond: they are answered on the event
        loop (a thread costs more than the search); one that overruns INLINE_SECONDS or
        finds more than INLINE_RESULTS is answered again in a thread."""
        try:
            with self._catalog().bounded(INLINE_SECONDS):
                return self._answer_search(request, level, max_results=INLINE_RESULTS)
        except Overrun:
            return await run_in_threadpool(self._answer_search, request, level)

    def _answer_search(
        self, request: Request, level: str, max_results: int | None = None
    ) -> Response:
        _json_accepted(request)
        study, series, _ = _uids(request)
        query = parse_search(level, request.query_params.multi_items(), study=study,
                             series=series)  # fmt: skip
        results = search(self._catalog(), query, _base_url(request), max_results=max_results)
        if not results.datasets:
            return Response(status_code=204)
        headers = {"Warning": _TRUNCATED} if results.truncated else {}
        return JSONResponse(results.datasets, media_type=DICOM_JSON, headers=headers)

    async def search_studies(self, request: Request) -> Response:
        return await self._search(request, "study")

    async def search_series(self, request: Request) -> Response:
        return await self._search(request, "series")

    async def search_instances(self, request: Request) -> Response:
        return await self._search(request, "instance")

    # WADO-RS -------------------------------------------------------------

    def retrieve(self, request: Request) -> Response:
        ranges = accepted(request.headers.get("accept"))
        parts = dicom_parts(self._located(request), ranges)
        boundary = new_boundary()
        return StreamingResponse(
            multipart(parts, boundary), media_type=multipart_type("application/dicom", boundary)
        )

    def metadata(self, request: Request) -> Response:
        _json_accepted(request)
        base = _base_url(request)
        texts = [
            self.metadata_cache.text(stored, _instance_url(base, stored) + "/bulk")
            for stored in self._located(request)
        ]
        return Response("[" + ",".join(texts) + "]", media_type=DICOM_JSON)

    def frames(self, request: Request) -> Response:
        (stored,) = self._located(request)
        numbers = frame_numbers(request.path_params["frames"], stored)
        ranges = accepted(request.headers.get("accept"))
        part_type, parts = frame_parts(stored, numbers, ranges)
        return _multipart_response(part_type, parts)

    def bulk(self, request: Request) -> Response:
        (stored,) = self._located(request)
        steps = [step for step in request.path_params["steps"].split("/") if step]
        data = bulk_data(stored, steps)
        return _multipart_response(
            "application/octet-stream", [("application/octet-stream", [data])]
        )

    def rendered(self, request: Request) -> Response:
        (stored,) = self._located(request)
        media_type = picture_type(accepted(request.headers.get("accept")))
        number = frame_numbers(request.path_params.get("frames", "1"), stored)[0]
        picture = render(stored, number, request.query_params, media_type)
        return Response(picture, media_type=media_type)

    def thumbnail(self, request: Request) -> Response:
        located = self._located(request)
        media_type = picture_type(accepted(request.headers.get("accept")))
        if "frames" in request.path_params:
            number = frame_numbers(request.path_params["frames"], located[0])[0]
            parameters = {"viewport": "128,128", **request.query_params}
            return Response(render(located[0], number, parameters, media_type),
                            media_type=media_type)  # fmt: skip
        return Response(thumbnail_of(located, request.query_params, media_type),
                        media_type=media_type)  # fmt: skip

    # STOW-RS -------------------------------------------------------------

    async def store(self, request: Request) -> Response:
        folder = self.settings.store
        if folder is None:
            return JSONResponse({"error": "read-only: start the server with --store DIR"},
                                status_code=405)  # fmt: skip
        study, _, _ = _uids(request) if "study" in request.path_params else (None, None, None)
        boundary = _store_boundary(request)
        declared = request.headers.get("content-length")
        limit = self.settings.max_store_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise TooLarge(f"bodies of at most {limit} bytes are taken")
        spool = Spool(folder, boundary)
        try:
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise TooLarge(f"bodies of at most {limit} bytes are taken")
                await run_in_threadpool(spool.feed, chunk)
            spool.finish()
            result = await run_in_threadpool(
                store_parts, spool, folder, self.settings.catalog, _base_url(request),
                study=study,
            )  # fmt: skip
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it; the spool goes
        finally:
            spool.discard()
        return JSONResponse(result.dataset, status_code=result.status, media_type=DICOM_JSON)


def _multipart_response(part_type: str, parts: Iterable[tuple[str, Iterable[bytes]]]) -> Response:
    """A multipart/related answer made here, in the handler's thread (frames and bulk
    data are in memory): one write, with its length."""
    boundary = new_boundary()
    body = b"".join(multipart(parts, boundary))
    return Response(body, media_type=multipart_type(part_type, boundary))


def _store_boundary(request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    (declared,) = accepted(content_type)[:1] or [MediaRange("")]
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise UnsupportedMediaType("bodies are taken without content encoding")
    if declared.type != "multipart/related" or declared.part_type not in ("application/dicom", ""):
        raise UnsupportedMediaType(
            'instances are stored as multipart/related; type="application/dicom"'
        )
    boundary = declared.parameters.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise BadRequest("the multipart body has no boundary")
    return boundary


def _instance_url(base: str, stored: Stored) -> str:
    return f"{base}/studies/{stored.study}/series/{stored.series}/instances/{stored.sop}"
