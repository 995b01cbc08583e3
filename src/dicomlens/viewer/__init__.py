"""The local web viewer: browse the catalog's studies, scroll slices, search tags.

:func:`serve` runs it on 127.0.0.1; :func:`create_app` is the application itself
(for tests and other ASGI servers).
"""

from dicomlens.viewer.app import create_app, new_token
from dicomlens.viewer.server import Exposure, listen, serve

__all__ = ["Exposure", "create_app", "listen", "new_token", "serve"]
