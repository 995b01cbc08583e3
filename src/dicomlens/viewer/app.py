"""The viewer's web application (Starlette): JSON and binary frames from the catalog.

Every request must carry the server's random token (the ``token`` query
parameter, or the cookie the page sets) and a ``Host`` of this machine's
loopback address: other sites' pages cannot reach it (DNS rebinding, CSRF).
Files are addressed by catalog ids, never by paths; errors are a status and a
short JSON message; a Content Security Policy forbids inline and foreign script.
"""

from __future__ import annotations

import hmac
import re
import secrets
from importlib import resources
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from dicomlens.errors import DicomlensError
from dicomlens.viewer.data import Library, NotFound

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
    """Refuse requests without the token or with a foreign Host; add security headers."""

    def __init__(self, app: ASGIApp, *, token: str, hosts: frozenset[str]) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
        if host not in self.hosts:
            response: Response = JSONResponse({"error": "forbidden host"}, status_code=403)
        elif not hmac.compare_digest(given.encode(), self.token.encode()):
            response = JSONResponse({"error": "missing or wrong token"}, status_code=403)
        elif request.method not in ("GET", "HEAD"):
            response = JSONResponse({"error": "read-only"}, status_code=405)
        else:
            await self.app(scope, receive, _with_headers(send))
            return
        await response(scope, receive, _with_headers(send))


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def create_app(catalog: str, *, token: str, port: int) -> Starlette:
    """The application serving ``catalog``; requests need ``token`` and a loopback Host."""
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

    async def failure(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotFound):
            return JSONResponse({"error": "not found"}, status_code=404)
        if isinstance(exc, DicomlensError):
            return JSONResponse({"error": _without_paths(str(exc))}, status_code=422)
        return JSONResponse({"error": "internal error"}, status_code=500)

    routes = [
        Route("/", page),
        Route("/api/tree", tree),
        Route("/api/series/{series}", series),
        Route("/api/series/{series}/thumbnail.png", thumbnail),
        Route("/api/frame/{instance}/{frame}", frame),
        Route("/api/instance/{instance}/tags", tags),
        Mount("/static", StaticFiles(directory=_static_dir()), name="static"),
    ]
    hosts = frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))
    return Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, token=token, hosts=hosts)],
        exception_handlers={Exception: failure, DicomlensError: failure, NotFound: failure},
    )


def _number(request: Request, name: str) -> int:
    text = request.path_params[name]
    if not text.isdigit() or len(text) > 12:
        raise NotFound(f"bad {name}")
    return int(text)


def _without_paths(message: str) -> str:
    """An error's reason with file paths left out (they may name patients)."""
    return _PATH.sub("the file", message)
