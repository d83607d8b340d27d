"""The master key's text form: one line of standard base64 of `KEY_SIZE` bytes.

The same form reaches us from `TENANTVAULT_MASTER_KEY` and from a key file; both decode it
here, and each caller words its own error (naming the variable or the file, never the value).
"""

from __future__ import annotations

from tenantvault import _b64
from tenantvault._exceptions import IntegrityError
from tenantvault.crypto._aead import _DEK_LABEL, KEY_SIZE, AeadKey, encode_aad

__all__ = ["decode_master_key", "encode_master_key", "rewrap_key"]


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


def rewrap_key(old: AeadKey, new: AeadKey, wrapped: bytes, *, tenant: str, key_id: str) -> bytes:
    """A tenant data key wrapped by `old` (see `wrap_key`), wrapped by `new` instead (key
    rotation): same binding to the tenant and key id; `IntegrityError` if it does not open."""
    associated_data = encode_aad(_DEK_LABEL, tenant, key_id)
    data_key = old.open(wrapped, associated_data)
    if len(data_key) != KEY_SIZE:
        raise IntegrityError("stored data failed authentication")
    return new.seal(data_key, associated_data)
