"""Form request bodies (`application/x-www-form-urlencoded`), read as OpenBao reads them.

OpenBao reads a POST or PUT body as a form when it is labelled as one and its first 512
bytes, after whitespace, do not start like JSON (`{` or `[`); every other body is JSON
whatever its label (`internal/http/logical.go`, `isForm`). A field given once is a string;
given more than once, its values joined with commas (`parseFormRequest`). Go's
`url.ParseQuery` rules hold: `&` separates fields, `+` is a space, and a bad percent escape
or a `;` fails the whole body (400 `error parsing form data`). One rule of ours on top: the
decoded text must be UTF-8 (Go keeps any bytes; our engines take text). Errors never echo
the body: it may hold a secret.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_to_bytes

from tenantvault._exceptions import InvalidRequestError

__all__ = ["FORM", "is_form", "parse_form"]

FORM: Final = "application/x-www-form-urlencoded"
# How much of a body OpenBao samples to tell a form from JSON.
_HEAD_BYTES = 512
_BLANK = b" \t\n\r"
# A '%' not followed by two hex digits: Go's unescape refuses it, and so do we.
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def is_form(content_type: bytes | None, raw: bytes) -> bool:
    """Whether a POST or PUT body is read as a form: labelled one, and not JSON-looking."""
    if content_type is None:
        return False
    media = content_type.partition(b";")[0].strip().lower()
    if media != FORM.encode():
        return False
    head = raw[:_HEAD_BYTES].lstrip(_BLANK)
    return head[:1] not in (b"{", b"[")


def _failed() -> InvalidRequestError:
    return InvalidRequestError("error parsing form data")


def _unescape(part: bytes) -> str:
    if _BAD_ESCAPE.search(part):
        raise _failed()
    try:
        return unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise _failed() from None


def parse_form(raw: bytes, *, max_items: int) -> dict[str, str]:
    """A form body's fields, repeated ones comma-joined (`{}` for none, like an empty body)."""
    values: dict[str, list[str]] = {}
    count = 0
    for field in raw.split(b"&"):
        if b";" in field:
            raise _failed()  # Go refuses ';' as a separator since 1.17
        if not field:
            continue
        count += 1
        if count > max_items:
            raise _failed()
        name, _, value = field.partition(b"=")
        values.setdefault(_unescape(name), []).append(_unescape(value))
    return {name: ",".join(found) for name, found in values.items()}
