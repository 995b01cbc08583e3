"""The server's web application (Starlette): the viewer's page, its JSON and binary
frames from the catalog, and DICOMweb under ``/dicomweb``.

Every request must carry the server's random token (an ``Authorization: Bearer``
header, the ``token`` query parameter, or the cookie the page sets) and a ``Host``
of this machine (loopback, or the names it was started for): other sites' pages
cannot reach it (DNS rebinding, CSRF).
Files are addressed by catalog ids, never by paths; errors are a status and a
short JSON message; a Content Security Policy forbids inline and foreign script.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from dicomlens.dicomweb import (
    MAX_STORE_BYTES,
    ROOT,
    DicomwebSettings,
    Problem,
    dicomweb_routes,
)
from dicomlens.errors import DicomlensError
from dicomlens.viewer.data import Library, NotFound
from dicomlens.viewer.ohif import OhifViewer

__all__ = ["create_app", "new_token"]

COOKIE: Final = "dicomlens_token"
_PATH: Final = re.compile(r"(?:/[^/\s:;,()]+)+/?")
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    """A random token for one server run."""
    return secrets.token_urlsafe(24)


def _static_dir() -> str:
    return str(resources.files("dicomlens.viewer") / "static")


class _Guard:
    """Refuse requests with a foreign Host or Origin, without the token, or that would
    change something where nothing may change; add security and CORS headers.

    The token is taken from an ``Authorization: Bearer`` header, the ``token`` query
    parameter or the page's cookie. Origins named in ``cors`` may call from their
    pages (preflight answered); any other Origin but the server's own is refused.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        hosts: frozenset[str],
        cors: frozenset[str],
        writable: Callable[[str], bool],
        policy: Callable[[str], str],
    ) -> None:
        self.app, self.token, self.hosts, self.cors = app, token, hosts, cors
        self.own = frozenset(f"{scheme}://{host}" for host in hosts for scheme in ("http", "https"))
        self.writable, self.policy = writable, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        origin = request.headers.get("origin")
        headers = dict(_HEADERS, **{"Content-Security-Policy": self.policy(request.url.path)})
        if origin in self.cors:
            headers.update(_cors_headers(origin))
        response = self._refusal(request, origin)
        if response is None:
            await self.app(scope, receive, _with_headers(send, headers))
            return
        await response(scope, receive, _with_headers(send, headers))

    def _refusal(self, request: Request, origin: str | None) -> Response | None:
        if request.headers.get("host", "") not in self.hosts:
            return JSONResponse({"error": "forbidden host"}, status_code=403)
        if origin is not None and origin not in self.own and origin not in self.cors:
            return JSONResponse({"error": "forbidden origin"}, status_code=403)
        if request.method == "OPTIONS":  # a CORS preflight: no credentials are sent
            return Response(status_code=204 if origin in self.cors else 405)
        if not hmac.compare_digest(_given_token(request).encode(), self.token.encode()):
            return JSONResponse({"error": "missing or wrong token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if request.method in ("GET", "HEAD"):
            return None
        if request.method == "POST" and self.writable(request.url.path):
            return None
        return JSONResponse({"error": "read-only"}, status_code=405)


def _given_token(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE) or ""


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Accept, Content-Type",
        "Access-Control-Expose-Headers": "Content-Type, Warning",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    encoded = [(k.lower().encode(), v.encode()) for k, v in extra.items()]

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": list(message.get("headers", [])) + encoded}
        await send(message)

    return wrapped


def create_app(
    catalog: str | Path,
    *,
    token: str,
    port: int,
    hosts: Iterable[str] = (),
    cors: Iterable[str] = (),
    store: str | Path | None = None,
    ohif: str | Path | None = None,
    store_limit: int = MAX_STORE_BYTES,
) -> Starlette:
    """The application serving ``catalog``: the viewer's page and API, and DICOMweb
    under ``/dicomweb`` (STOW-RS into ``store`` when given, bodies of at most
    ``store_limit`` bytes; else read-only).

    Requests need ``token`` and a ``Host`` of this machine's loopback names or of
    ``hosts``, at ``port``; pages of the ``cors`` origins may call it. With ``ohif``
    (an OHIF Viewer build), OHIF is served at ``/`` and this viewer at ``/dicomlens``.
    """
    library = Library(catalog)

    async def page(request: Request) -> Response:
        response = FileResponse(f"{_static_dir()}/index.html", media_type="text/html")
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def tree(request: Request) -> Response:
        return JSONResponse(library.tree())

    async def series(request: Request) -> Response:
        return JSONResponse(library.series_info(_number(request, "series")))

    async def thumbnail(request: Request) -> Response:
        return Response(library.thumbnail(_number(request, "series")), media_type="image/png")

    async def frame(request: Request) -> Response:
        found = library.frame(_number(request, "instance"), _number(request, "frame"))
        headers = {"X-Dtype": found.dtype, "X-Rows": str(found.rows),
                   "X-Columns": str(found.columns)}  # fmt: skip
        return Response(found.data, media_type="application/octet-stream", headers=headers)

    async def tags(request: Request) -> Response:
        search = request.query_params.get("q", "")
        return JSONResponse(library.tags(_number(request, "instance"), search))

    store_folder = Path(store).resolve() if store is not None else None
    settings = DicomwebSettings(Path(catalog), store_folder, store_limit)
    routes: list[BaseRoute] = [
        Route("/dicomlens" if ohif else "/", page),
        Route("/api/tree", tree),
        Route("/api/series/{series}", series),
        Route("/api/series/{series}/thumbnail.png", thumbnail),
        Route("/api/frame/{instance}/{frame}", frame),
        Route("/api/instance/{instance}/tags", tags),
        Mount("/static", StaticFiles(directory=_static_dir()), name="static"),
        *dicomweb_routes(settings),
    ]
    policy: Callable[[str], str] = lambda path: _CSP  # noqa: E731
    if ohif is not None:
        viewer = OhifViewer(Path(ohif), token=token, cookie=COOKIE)
        routes += viewer.routes()
        policy = viewer.policy(_CSP)
    allowed = [*("127.0.0.1", "localhost", "[::1]"), *hosts]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                _Guard,
                token=token,
                # with the port, or without (dicomweb-client leaves it out)
                hosts=frozenset(h for name in allowed for h in (f"{name}:{port}", name)),
                cors=frozenset(origin.rstrip("/") for origin in cors),
                writable=lambda path: store_folder is not None and _is_store_path(path),
                policy=policy,
            )
        ],
        # DicomlensError and HTTPException are answered; anything else is also logged
        exception_handlers={
            DicomlensError: _failure,
            HTTPException: _failure,
            Exception: _failure,
        },
    )


async def _failure(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Problem):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    if isinstance(exc, NotFound):
        return JSONResponse({"error": "not found"}, status_code=404)
    if isinstance(exc, DicomlensError):
        return JSONResponse({"error": _without_paths(str(exc))}, status_code=422)
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return JSONResponse({"error": "internal error"}, status_code=500)


def _is_store_path(path: str) -> bool:
    """STOW-RS: ``/dicomweb/studies`` or ``/dicomweb/studies/{uid}``."""
    parts = path.rstrip("/").split("/")
    return parts[1:3] == [ROOT.strip("/"), "studies"] and len(parts) in (3, 4)


def _number(request: Request, name: str) -> int:
    text = request.path_params[name]
    if not text.isdigit() or len(text) > 12:
        raise NotFound(f"bad {name}")
    return int(text)


def _without_paths(message: str) -> str:
    """An error's reason with file paths left out (they may name patients)."""
    return _PATH.sub("the file", message)
