"""Cryptography for tenantvault: AES-256-GCM sealing and key wrapping over `cryptography`."""

from __future__ import annotations

from tenantvault.crypto._aead import (
    KEY_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    AeadKey,
    encode_aad,
    random_key,
    unwrap_key,
    wrap_key,
)

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
