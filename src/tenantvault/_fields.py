"""Strict readers for request fields: one type check and one error message per kind of field.

Engines, the Core's token-issuing rules and the audit views read client-supplied fields
through these, so that "1" and true and 2**60 mean the same thing (or are refused the same
way) wherever they arrive. They live at the top of the package so that modules outside
`engines/` need not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantvault._exceptions import InvalidRequestError

__all__ = ["get_bool", "get_int", "get_mapping", "get_str", "get_versions"]

# Bigger integers lose precision in JSON clients and in Go (int64): refuse them as input.
_MAX_INT = 2**53


def get_int(
    data: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    strict: bool = False,
) -> int | None:
    """A non-negative integer field; accepts digit strings (query parameters arrive as text),
    refuses bools, floats with fractions and values outside [minimum, 2**53]. `strict` accepts
    JSON integers only: for check-and-set numbers, where "1" or 1.0 is a client bug; refusing
    it shows the bug at once rather than guess which version the client meant."""
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or (strict and not isinstance(value, int)):
        raise InvalidRequestError(f"invalid value for {name}: expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidRequestError(f"invalid value for {name}: expected an integer")
        value = int(value)
    elif isinstance(value, str):
        if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 17:
            raise InvalidRequestError(f"invalid value for {name}: expected an integer")
        value = int(value)
    elif not isinstance(value, int):
        raise InvalidRequestError(f"invalid value for {name}: expected an integer")
    if value < minimum or value > _MAX_INT:
        raise InvalidRequestError(f"invalid value for {name}: out of range")
    return value


def get_bool(data: Mapping[str, Any], name: str, *, default: bool | None = None) -> bool | None:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise InvalidRequestError(f"invalid value for {name}: expected a boolean")


def get_str(data: Mapping[str, Any], name: str, *, default: str | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidRequestError(f"invalid value for {name}: expected a string")
    return value


def get_mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"invalid value for {name}: expected an object")
    return value


def get_versions(data: Mapping[str, Any]) -> list[int]:
    """The `versions` list of delete/undelete/destroy: ints or digit strings, or a comma list."""
    raw = data.get("versions")
    if raw is None:
        return []
    if isinstance(raw, str):
        items: list[Any] = [part for part in raw.split(",") if part.strip()]
    elif isinstance(raw, list):
        items = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        items = [raw]
    else:
        raise InvalidRequestError("invalid value for versions: expected a list of integers")
    versions: list[int] = []
    for item in items:
        value = get_int({"versions": item.strip() if isinstance(item, str) else item}, "versions")
        if value is not None:
            versions.append(value)
    return versions
