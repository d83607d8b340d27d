"""Strict JSON request bodies: one parser, explicit limits, and errors that never echo input.

orjson already refuses invalid UTF-8, a BOM, UTF-16, lone surrogates, NaN/Infinity, numbers
that overflow a double, trailing garbage and nesting beyond 1024. What it accepts silently
is checked here, because each would let a body mean something other than what the
engines see:

- duplicate keys (`{"cas":1,"cas":0}` would keep the last one and could flip a CAS);
- integers outside int64, which orjson turns into floats without a word;
- nesting deeper than `max_depth` and more than `max_items` members in total;
- a top level that is not an object.

Which bodies are JSON at all is decided as OpenBao decides it (`_form`): every body but a
form-labelled one that does not start like JSON, whatever its Content-Type.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tenantvault._exceptions import InvalidRequestError

__all__ = ["parse_body"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# Every string token, and whether it is an object key (followed by ':'). Outside strings,
# valid JSON has no '"', so scanning left to right never starts inside a string: each match
# is exactly one string token (orjson has already validated the text).
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"[ \t\n\r]*(:?)', re.DOTALL)
# Integer literals of 19+ digits are the only ones that can leave int64. Not preceded by a
# digit, '.', 'e' or a sign, so never the fraction or exponent of a float; a string holding
# such digits is skipped as a whole by the first alternative.
_LONG_INTS = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"|(?<![0-9.eE+-])(-?[0-9]{19,})(?![0-9.eE])', re.DOTALL
)
_NINETEEN_DIGITS = re.compile(rb"[0-9]{19}")
# JSON's whitespace (RFC 8259), the only bytes that may precede the opening '{'.
_JSON_BLANK = b" \t\n\r"


def _fail(reason: str) -> InvalidRequestError:
    # The reason names a rule, never a value: the body may be a secret, and an error
    # message reaches logs (Vault's own parse errors once leaked secrets that way).
    return InvalidRequestError(f"failed to parse JSON input: {reason}")


def _walk(value: dict[str, Any], max_depth: int, max_items: int) -> int:
    """Check depth, size and integer range; return how many object keys there are."""
    keys = 0
    items = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _fail("nesting too deep")
        if isinstance(node, dict):
            children: Any = node.values()
            keys += len(node)
        else:
            children = node
        items += len(node)
        if items > max_items:
            raise _fail("too many items")
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif type(child) is int and not _INT64_MIN <= child <= _INT64_MAX:
                raise _fail("number out of range")
    return keys


def _scan(raw: bytes, keys: int) -> None:
    """Find what the parsed value cannot show: duplicate keys and integers beyond int64."""
    # Each key token is followed by exactly one ':' outside strings. If the body holds no
    # more ':' than the parsed objects hold keys, no ':' sits inside a string and no key
    # token was dropped: no duplicates, without tokenizing (the common case).
    if raw.count(b":") != keys and _STRINGS.findall(raw).count(b":") != keys:
        raise _fail("duplicate key")
    if _NINETEEN_DIGITS.search(raw) is not None:
        for literal in _LONG_INTS.findall(raw):
            if literal and not _INT64_MIN <= int(literal) <= _INT64_MAX:
                raise _fail("number out of range")


def parse_body(raw: bytes, *, max_depth: int, max_items: int) -> dict[str, Any]:
    """Parse a request body into a JSON object; an empty body is `{}`.

    Raises `InvalidRequestError` (400) with a generic reason for anything else.
    """
    if not raw.strip(_JSON_BLANK):
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson's message carries positions only, but stay generic: nothing of the input.
        raise _fail("not valid JSON") from None
    if value is None:
        # `bao write -f path` sends the JSON `null` for "no fields"; OpenBao reads it as {}.
        return {}
    if not isinstance(value, dict):
        raise _fail("the body must be a JSON object")
    keys = _walk(value, max_depth, max_items)
    _scan(raw, keys)
    return value
