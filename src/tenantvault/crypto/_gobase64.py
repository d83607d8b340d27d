"""Go's `base64.StdEncoding.DecodeString`, error offsets included, and Go's `strconv.Atoi`.

Vault clients see Go's messages (`illegal base64 data at input byte 4`); answering with the
same text at the same offset keeps tenantvault a drop-in replacement. Go's decoder accepts
what Python's strict mode would refuse in one case only: CR and LF anywhere are skipped.
Like Go (and unlike `binascii` in strict mode) the unused low bits of the last quantum are
ignored. Everything else — a wrong alphabet, missing or misplaced padding, trailing data —
is refused at the offset Go names.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

__all__ = ["GoBase64Error", "go_atoi", "go_b64decode"]

_ALPHABET: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_WELL_FORMED: Final = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z", re.ASCII
)
_NEWLINES: Final = frozenset(b"\r\n")
_PAD: Final = ord("=")
_ATOI: Final = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_INT64_MAX: Final = 2**63 - 1


class GoBase64Error(ValueError):
    """Go's `CorruptInputError`: its message names the offending byte offset."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        super().__init__(f"illegal base64 data at input byte {offset}")


def go_b64decode(text: str) -> bytes:
    """Decode standard padded base64 exactly as Go's `StdEncoding.DecodeString` does."""
    if _WELL_FORMED.match(text):
        # The common case: nothing Go would treat differently from binascii.
        return base64.b64decode(text)
    raw = text.encode("utf-8", "surrogatepass")
    offset = _first_error(raw)
    if offset is not None:
        raise GoBase64Error(offset)
    stripped = bytes(b for b in raw if b not in _NEWLINES)
    try:
        return base64.b64decode(stripped, validate=True)
    except binascii.Error:  # pragma: no cover -- _first_error accepts only what decodes
        raise GoBase64Error(0) from None


def _first_error(src: bytes) -> int | None:
    """The offset Go's decoder reports for `src`, or None if Go accepts it.

    A transcription of `decodeQuantum` (encoding/base64) for a padded encoding.
    """
    si = 0
    n = len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j
            byte = src[si]
            si += 1
            if byte in _ALPHABET:
                j += 1
                continue
            if byte in _NEWLINES:
                continue
            if byte != _PAD:
                return si - 1
            # Padding: only at the third or fourth place of a quantum.
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n:
                    return n
                if src[si] != _PAD:
                    return si - 1
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            if si < n:
                return si
            return None


def go_atoi(text: str) -> int | None:
    """Go's `strconv.Atoi` on a 64-bit platform: an optional sign and decimal digits only."""
    if not _ATOI.match(text):
        return None
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return None
    return value
