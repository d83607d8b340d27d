"""HMAC-SHA256 of sensitive values for audit entries, with a salt of each sink's own."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

__all__ = ["HMAC_PREFIX", "Redactor"]

HMAC_PREFIX = "hmac-sha256:"
# Deeper structures are cut off rather than walked: request bodies are already limited to a
# depth of 64 by the HTTP layer, and an audit entry must never be the slow part.
_MAX_DEPTH = 128


class Redactor:
    """Replaces every string (and bytes) in a structure by its salted HMAC, as Vault does.

    Numbers, booleans and null pass through; mapping keys stay readable (they are field names,
    and Vault keeps them). Investigators match a value with `hash()` — the `sys/audit-hash`
    endpoint — never by reading it.
    """

    __slots__ = ("_mac", "_salt")

    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError("audit salt must be at least 16 bytes")
        self._salt = salt
        # Keyed once: each value's HMAC starts from a copy of this state instead of keying
        # anew (an audit entry hashes a dozen values; the key schedule was half the cost).
        self._mac = hmac.new(salt, digestmod="sha256")

    def __repr__(self) -> str:
        return "Redactor(<salt>)"

    def hash(self, value: str | bytes) -> str:
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        mac = self._mac.copy()
        mac.update(data)
        return HMAC_PREFIX + mac.hexdigest()

    def redact(self, value: Any, depth: int = 0) -> Any:
        # The exact types first: JSON bodies are made of them, and this runs for every value
        # of every audited request and response.
        kind = type(value)
        if kind is str:
            return self.hash(value)
        if kind is dict and depth < _MAX_DEPTH:
            return {
                key if type(key) is str else str(key): self.hash(item)
                if type(item) is str
                else self.redact(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, str | bytes | bytearray):
            return self.hash(bytes(value) if not isinstance(value, str) else value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth >= _MAX_DEPTH:
            return self.hash(repr(type(value)))
        if isinstance(value, Mapping):
            return {str(k): self.redact(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(item, depth + 1) for item in value]
        # Anything else (a stray object) is reduced to the HMAC of its type name: never its repr,
        # which could carry a secret.
        return self.hash(type(value).__name__)
