"""Run the server (viewer and DICOMweb) with uvicorn: loopback by default."""

from __future__ import annotations

import ipaddress
import socket
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from dicomlens.errors import DicomlensError, UsageError
from dicomlens.viewer.app import create_app, new_token

__all__ = ["Exposure", "listen", "serve"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Exposure:
    """Where the server listens and who may reach it.

    Loopback needs nothing more. Any other address needs TLS (``certfile`` and
    ``keyfile``) or an explicit ``insecure_http``: the token would otherwise cross
    the network in clear text.
    """

    host: str = HOST
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure_http: bool = False
    names: tuple[str, ...] = ()
    """Host names clients use for this machine (besides its address)."""
    cors: tuple[str, ...] = field(default_factory=tuple)
    """Origins whose pages may call the server (``https://viewer.example.org``)."""

    def check(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise UsageError("give both --certfile and --keyfile for TLS")
        if not _is_loopback(self.host) and self.certfile is None and not self.insecure_http:
            raise UsageError(
                f"--host {self.host} exposes the server beyond this machine: give "
                "--certfile and --keyfile (TLS), or --insecure-http on a network you trust"
            )
        for path in (self.certfile, self.keyfile):
            if path is not None and not Path(path).is_file():
                raise UsageError(f"{path}: no such file")

    @property
    def scheme(self) -> str:
        return "https" if self.certfile is not None else "http"

    def hosts(self) -> list[str]:
        """The Host names (without port) requests may carry."""
        found = list(self.names)
        if not _is_loopback(self.host):
            if self.host in ("0.0.0.0", "::"):
                found += [socket.gethostname(), socket.getfqdn()]
            else:
                found.append(f"[{self.host}]" if ":" in self.host else self.host)
        return found


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(port: int | None = None, host: str = HOST) -> socket.socket:
    """A socket listening on ``host`` at ``port`` (a free one, chosen by the system,
    when None or 0): bound before anything is announced, so that no other program can
    take the port and no first request is refused.

    Raises
    ------
    DicomlensError
        The port is taken or not allowed, or the address is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # inherited by each connection: a response's head and body go out at once, not
        # 40 ms apart (Nagle's algorithm against the client's delayed ACK on keep-alive)
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listening.bind((host, port or 0))
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise DicomlensError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listening


def serve(
    catalog: str | Path,
    *,
    port: int | None = None,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
    exposure: Exposure = Exposure(),
    store: str | Path | None = None,
    ohif: str | Path | None = None,
) -> None:
    """Serve ``catalog`` until interrupted (Ctrl-C stops it cleanly); ``announce`` gets
    the page's address (with the token) once the socket listens.

    The socket listens before the address is announced and the browser opened: a
    request made at once waits for the server instead of being refused.
    """
    exposure.check()
    with listen(port, exposure.host) as listening:
        port = int(listening.getsockname()[1])
        token = new_token()
        app = create_app(catalog, token=token, port=port, hosts=exposure.hosts(),
                         cors=exposure.cors, store=store, ohif=ohif)  # fmt: skip
        shown = HOST if exposure.host in ("0.0.0.0", "::") or _is_loopback(exposure.host) else (
            exposure.hosts()[0])  # fmt: skip
        url = f"{exposure.scheme}://{shown}:{port}/?token={token}"
        # no proxy headers: a local program must not pose as another client or scheme
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_keep_alive=5, proxy_headers=False,
            limit_concurrency=64, ssl_certfile=exposure.certfile, ssl_keyfile=exposure.keyfile,
        )  # fmt: skip
        server = uvicorn.Server(config)
        announce(url)
        if open_browser:
            webbrowser.open(url)
        server.run(sockets=[listening])
