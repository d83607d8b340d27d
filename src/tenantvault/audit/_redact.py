"""HMAC-SHA256 of sensitive values for audit entries, with a salt of each sink's own."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["HMAC_PREFIX", "Redactor"]

HMAC_PREFIX = "hmac-sha256:"
# Deeper structures are cut off rather than walked: request bodies are already limited to a
# depth of 64 by the HTTP layer, and an audit entry must never be the slow part.
_MAX_DEPTH = 128
# Values that pass through as they are (exact types: the common case, checked first).
_PLAIN = frozenset({type(None), bool, int, float})


class _Mac(Protocol):
    def copy(self) -> _Mac: ...
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _keyed(salt: bytes) -> _Mac:
    """A SHA-256 HMAC state keyed with `salt`, for `copy()`-ing once per value.

    The public `hmac` API only: OpenSSL's own HMAC object (`_hashlib.hmac_new`) would save
    about 0.2 µs per value, not worth depending on a private CPython module for.
    """
    keyed: _Mac = hmac.new(salt, digestmod="sha256")
    return keyed


class Redactor:
    """Replaces every string (and bytes) in a structure by its salted HMAC, as Vault does.

    Numbers, booleans and null pass through; mapping keys stay readable (they are field names,
    and Vault keeps them). Investigators match a value with `hash()` — the `sys/audit-hash`
    endpoint — never by reading it.
    """

    __slots__ = ("_copy", "_salt")

    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError("audit salt must be at least 16 bytes")
        self._salt = salt
        # Keyed once: each value's HMAC starts from a copy of this state instead of keying
        # anew (an audit entry hashes a dozen values; the key schedule was half the cost).
        # Never memoised by value: the values are secrets, a memo would keep them in clear.
        self._copy: Callable[[], _Mac] = _keyed(salt).copy

    def __repr__(self) -> str:
        return "Redactor(<salt>)"

    def hash(self, value: str | bytes) -> str:
        """`hmac-sha256:` and the hex HMAC of `value` (UTF-8 for a string) under the salt."""
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        mac = self._copy()
        mac.update(data)
        return HMAC_PREFIX + mac.hexdigest()

    def redact(self, value: Any, depth: int = 0) -> Any:
        """`value` with every string and bytes in it replaced by `hash()` of it."""
        # The exact types first: JSON bodies are made of them, and this runs for every value
        # of every audited request and response.
        kind = type(value)
        if kind is str:
            return self.hash(value)
        if kind is dict and depth < _MAX_DEPTH:
            return self._mapping(value, depth)
        if kind in _PLAIN:
            return value
        return self._other(value, depth)

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        # One loop with the leaves inline: a call per nested value was most of the cost.
        hash_, plain = self.hash, _PLAIN
        out: dict[str, Any] = {}
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                item = hash_(item)
            elif kind not in plain:
                item = self.redact(item, depth + 1)
            out[key if type(key) is str else str(key)] = item
        return out

    def _other(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.hash(value)
        if isinstance(value, bytes | bytearray):
            return self.hash(bytes(value))
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth >= _MAX_DEPTH:
            return self.hash(repr(type(value)))
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple):
            return [self.redact(item, depth + 1) for item in value]
        # Anything else (a stray object) is reduced to the HMAC of its type name: never its repr,
        # which could carry a secret.
        return self.hash(type(value).__name__)
