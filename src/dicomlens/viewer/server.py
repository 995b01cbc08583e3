"""Run the viewer on this machine's loopback address (uvicorn)."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable

import uvicorn

from dicomlens.viewer.app import create_app, new_token

__all__ = ["free_port", "serve"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def serve(
    catalog: str,
    *,
    port: int | None = None,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``catalog`` on 127.0.0.1 until interrupted (Ctrl-C stops it cleanly)."""
    port = port or free_port()
    token = new_token()
    app = create_app(catalog, token=token, port=port)
    url = f"http://{HOST}:{port}/?token={token}"
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False,
                            timeout_keep_alive=5, limit_concurrency=64)  # fmt: skip
    server = uvicorn.Server(config)
    announce(url)
    if open_browser:
        webbrowser.open(url)
    server.run()
