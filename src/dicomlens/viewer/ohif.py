"""Serve an OHIF Viewer build (``@ohif/app``'s ``dist`` folder) against this server's
DICOMweb, from the same origin: OHIF's requests carry the page's cookie.

The build is never shipped with dicomlens: users get it with
``npm pack @ohif/app`` (or any OHIF release) and name its ``dist`` folder. Its
``app-config.js`` is replaced by one that points at ``/dicomweb``; the Content
Security Policy of its pages admits its own inline scripts by their hashes,
WebAssembly decoders and blob workers, and nothing from other origins.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from dicomlens.errors import UsageError

__all__ = ["OhifViewer", "ohif_page"]

_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_OWN_PATHS: Final = ("/api/", "/static/", "/dicomweb/", "/dicomlens")
_APP_CONFIG: Final = """\
/* Written by dicomlens: OHIF reads this server's catalog over DICOMweb. */
window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  defaultDataSourceName: 'dicomlens',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomlens',
      configuration: {
        friendlyName: 'dicomlens',
        name: 'dicomlens',
        wadoUriRoot: window.location.origin + '/dicomweb',
        qidoRoot: window.location.origin + '/dicomweb',
        wadoRoot: window.location.origin + '/dicomweb',
        qidoSupportsIncludeField: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
"""


class _SinglePageFiles(StaticFiles):
    """OHIF's files; any other path is one of its client-side routes (``/viewer``):
    its page, from ``page()``."""

    def __init__(self, *, directory: Path, page: Callable[[], Response]) -> None:
        super().__init__(directory=directory)
        self.page = page

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return self.page()


def ohif_page(folder: Path) -> Path:
    """The page of an OHIF Viewer build folder, or a UsageError saying what to give."""
    page = Path(folder) / "index.html"
    if not page.is_file():
        raise UsageError(
            f"{folder}: not an OHIF Viewer build (no index.html); give the dist folder "
            "of `npm pack @ohif/app` or of an OHIF release"
        )
    return page.resolve()


class OhifViewer:
    """The routes and page policy of one OHIF build folder."""

    def __init__(self, folder: Path, *, token: str, cookie: str) -> None:
        self.page = page = ohif_page(folder)
        self.folder = page.parent
        self.token, self.cookie = token, cookie
        inline = _INLINE_SCRIPT.findall(page.read_text(encoding="utf-8", errors="replace"))
        self.script_hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in inline
        ]

    def _page(self) -> Response:
        """OHIF's page, with the cookie its DICOMweb requests then carry."""
        response = FileResponse(self.page, media_type="text/html")
        response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
        return response

    def routes(self) -> list[BaseRoute]:
        async def index(request: Request) -> Response:
            return self._page()

        async def config(request: Request) -> Response:
            return Response(_APP_CONFIG, media_type="text/javascript")

        return [
            Route("/", index),
            Route("/app-config.js", config),
            Mount("/", _SinglePageFiles(directory=self.folder, page=self._page), name="ohif"),
        ]

    def policy(self, own: str) -> Callable[[str], str]:
        """The Content Security Policy by path: ``own`` for dicomlens's pages, OHIF's
        (its inline scripts by hash, WebAssembly, blob workers) for the rest."""
        scripts = " ".join(["'self'", "'wasm-unsafe-eval'", "'unsafe-eval'", *self.script_hashes])
        ohif = (
            f"default-src 'self'; script-src {scripts}; worker-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; font-src 'self' data:; "
            "connect-src 'self' blob: data:; object-src 'none'; base-uri 'self'; "
            "frame-ancestors 'none'; form-action 'none'"
        )

        def chosen(path: str) -> str:
            return own if path.startswith(_OWN_PATHS) else ohif

        return chosen
