"""The master key's text form: one line of standard base64 of `KEY_SIZE` bytes.

The same form reaches us from `TENANTVAULT_MASTER_KEY` and from a key file; both decode it
here, and each caller words its own error (naming the variable or the file, never the value).
"""

from __future__ import annotations

from tenantvault import _b64
from tenantvault.crypto._aead import KEY_SIZE

__all__ = ["decode_master_key", "encode_master_key"]


def decode_master_key(text: str | bytes) -> bytes | None:
    """The key, or None if `text` is not base64 of exactly `KEY_SIZE` bytes.

    Surrounding white space (the key file's newline, a pasted space) is ignored; anything
    else must be the canonical spelling. None, not an exception carrying the input: the
    caller's message must not echo what may be a real key in the wrong format.
    """
    try:
        key = _b64.decode(text.strip())
    except ValueError:
        return None
    return key if len(key) == KEY_SIZE else None


def encode_master_key(key: bytes) -> bytes:
    """The key file's content for `key`: its base64 and a newline."""
    return _b64.encode(key).encode("ascii") + b"\n"
