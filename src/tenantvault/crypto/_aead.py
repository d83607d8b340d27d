"""AES-256-GCM sealing and key wrapping: the only module that imports `cryptography.hazmat`.

A sealed blob is `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Nonces are 96 random bits
from the OS CSPRNG (drawn in blocks: `_public_random`); with one data key per tenant, no key
comes near the 2**32 random-nonce limit NIST SP 800-38D sets. Any failure to open — wrong
key, wrong associated data, a flipped bit, a truncated blob — is one `IntegrityError` that
says nothing about which it was.
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantvault._exceptions import IntegrityError
from tenantvault._public_random import public_random

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "OVERHEAD",
    "TAG_SIZE",
    "AeadKey",
    "encode_aad",
    "random_key",
    "unwrap_key",
    "wrap_key",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE

_INTEGRITY_MESSAGE = "stored data failed authentication"
_DEK_LABEL = "tenantvault:dek"
# A part's length prefix: 4 bytes, big-endian.
_LENGTH = struct.Struct(">I").pack


def random_key() -> bytes:
    """A fresh 256-bit key from the OS CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


def encode_aad(*parts: str | bytes) -> bytes:
    """Associated data from parts, each length-prefixed so that no two part lists collide.

    Plain concatenation would let ("ab", "c") and ("a", "bc") authenticate each other's data.
    """
    # Built on every record read and write, so one join rather than a growing buffer.
    raws = [part.encode("utf-8") if isinstance(part, str) else part for part in parts]
    return b"".join([_LENGTH(len(raw)) + raw for raw in raws])


class AeadKey:
    """One AES-256-GCM key, ready to seal and open; its repr never shows the key."""

    __slots__ = ("_aesgcm",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"AES-256-GCM needs a {KEY_SIZE}-byte key")
        self._aesgcm = AESGCM(key)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate `plaintext`, binding it to `associated_data`."""
        # A nonce is public: from the block pool, not one getrandom call per record.
        nonce = public_random(NONCE_SIZE)
        return nonce + self._aesgcm.encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        """Return the plaintext of `sealed`, or raise `IntegrityError` if anything is off."""
        if len(sealed) < OVERHEAD:
            raise IntegrityError(_INTEGRITY_MESSAGE)
        try:
            return self._aesgcm.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated_data)
        except InvalidTag:
            # `from None`: the cause would only say "InvalidTag", but keep inputs out of traces.
            raise IntegrityError(_INTEGRITY_MESSAGE) from None

    def __repr__(self) -> str:
        return "AeadKey(<redacted>)"


def wrap_key(master: AeadKey, data_key: bytes, *, tenant: str, key_id: str) -> bytes:
    """Seal a tenant's data key under the master key, bound to the tenant and key id."""
    if len(data_key) != KEY_SIZE:
        raise ValueError(f"a data key has {KEY_SIZE} bytes")
    return master.seal(data_key, encode_aad(_DEK_LABEL, tenant, key_id))


def unwrap_key(master: AeadKey, wrapped: bytes, *, tenant: str, key_id: str) -> AeadKey:
    """Open a wrapped data key; `IntegrityError` if it was tampered with or moved."""
    data_key = master.open(wrapped, encode_aad(_DEK_LABEL, tenant, key_id))
    if len(data_key) != KEY_SIZE:
        raise IntegrityError(_INTEGRITY_MESSAGE)
    return AeadKey(data_key)
