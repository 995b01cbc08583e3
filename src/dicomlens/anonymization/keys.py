"""Keyed, deterministic replacements: new UIDs, pseudonyms and date shifts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Keys"]

_SHIFT_RANGE_DAYS: Final = 3650


@dataclass(frozen=True)
class Keys:
    """Keyed, deterministic replacements: the same key and original value always
    give the same UID, pseudonym and date shift; another key gives others.

    >>> keys = Keys.from_key("secret")
    >>> again, other = Keys.from_key("secret"), Keys.from_key("other")
    >>> keys.uid("1.2.3") == again.uid("1.2.3") != other.uid("1.2.3")
    True
    >>> keys.uid("1.2.3").startswith("2.25."), len(keys.uid("1.2.3")) <= 64
    (True, True)
    """

    secret: bytes = field(repr=False)

    @classmethod
    def from_key(cls, key: str | None) -> Keys:
        """Keys from a user's key, or random ones (consistent within one run only)."""
        return cls(key.encode() if key else secrets.token_bytes(32))

    def _digest(self, kind: str, value: str) -> bytes:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A new UID under the UUID arc (2.25), at most 44 characters."""
        return "2.25." + str(int.from_bytes(self._digest("uid", original)[:16], "big"))

    def pseudonym(self, patient: str) -> str:
        """A patient's new ID and name."""
        number = int.from_bytes(self._digest("patient", patient)[:8], "big") % 10**10
        return f"ANON{number:010d}"

    def date_shift(self, patient: str) -> int:
        """Days to add to every date of a patient: between -3650 and -1."""
        days = int.from_bytes(self._digest("dates", patient)[:4], "big") % _SHIFT_RANGE_DAYS
        return -(days + 1)
