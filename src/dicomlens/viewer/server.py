"""Run the viewer on this machine's loopback address (uvicorn)."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable

import uvicorn

from dicomlens.errors import DicomlensError
from dicomlens.viewer.app import create_app, new_token

__all__ = ["listen", "serve"]

HOST = "127.0.0.1"


def listen(port: int | None = None) -> socket.socket:
    """A socket listening on 127.0.0.1 at ``port`` (a free one, chosen by the system,
    when None or 0): bound before anything is announced, so that no other program can
    take the port and no first request is refused.

    Raises
    ------
    DicomlensError
        The port is taken or not allowed.
    """
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.bind((HOST, port or 0))
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise DicomlensError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    return listening


def serve(
    catalog: str,
    *,
    port: int | None = None,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``catalog`` on 127.0.0.1 until interrupted (Ctrl-C stops it cleanly).

    The socket listens before the address is announced and the browser opened: a
    request made at once waits for the server instead of being refused.
    """
    listening = listen(port)
    port = int(listening.getsockname()[1])
    token = new_token()
    app = create_app(catalog, token=token, port=port)
    url = f"http://{HOST}:{port}/?token={token}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=5,
                            limit_concurrency=64)  # fmt: skip
    server = uvicorn.Server(config)
    announce(url)
    if open_browser:
        webbrowser.open(url)
    with listening:
        server.run(sockets=[listening])
