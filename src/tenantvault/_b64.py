"""The project's base64: standard padded encoding out, and one strict decoder for it.

Everything tenantvault writes (stored keys, key files, ciphertexts, API fields) is
`encode`'s spelling, so `decode` accepts only that spelling: the standard alphabet, the
padding `encode` writes, no whitespace and zero unused low bits. One value therefore has
one encoding, and a tampered or hand-edited one is refused rather than repaired.
Client input that Vault reads with Go's lenient decoder goes through
`tenantvault.crypto.go_b64decode` instead, which reproduces Go's error messages.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode", "decode_urlsafe", "encode", "encode_urlsafe"]


def encode(raw: bytes) -> str:
    """Standard base64 with padding (`base64.StdEncoding` in Go)."""
    return base64.b64encode(raw).decode("ascii")


def decode(text: str | bytes) -> bytes:
    """The bytes `encode` spelled as `text`; `ValueError` for any other spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not canonical base64") from None
    expected = encode(raw)
    if (text.decode("ascii") if isinstance(text, bytes) else text) != expected:
        raise ValueError("not canonical base64")
    return raw


def encode_urlsafe(raw: bytes) -> str:
    """URL-safe base64 without padding (`base64.RawURLEncoding` in Go, JWS)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_urlsafe(text: str) -> bytes:
    """Unpadded URL-safe base64; `ValueError` for padding or another alphabet.

    Like Go's `RawURLEncoding` the unused low bits of the last character are ignored:
    this reads signatures that Vault clients produced, not our own records.
    """
    if not text.isascii() or any(c in text for c in "+/="):
        raise ValueError("not unpadded URL-safe base64")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded URL-safe base64") from None
