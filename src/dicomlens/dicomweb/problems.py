"""Why a DICOMweb request fails, as an exception carrying its HTTP status."""

from __future__ import annotations

from typing import ClassVar

from dicomlens.errors import DicomlensError

__all__ = [
    "BadRequest",
    "NotAcceptable",
    "NotFound",
    "Problem",
    "TooLarge",
    "UnsupportedMediaType",
]


class Problem(DicomlensError):
    """A request that cannot be answered; ``status`` is the HTTP status to send."""

    status: ClassVar[int] = 500


class BadRequest(Problem):
    """A malformed query parameter, path or body."""

    status = 400


class NotFound(Problem):
    """No such study, series, instance, frame or bulk data."""

    status = 404


class NotAcceptable(Problem):
    """No representation the client accepts can be given."""

    status = 406


class TooLarge(Problem):
    """A body longer than the server takes."""

    status = 413


class UnsupportedMediaType(Problem):
    """A body of a type the resource does not take."""

    status = 415
