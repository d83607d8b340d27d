"""Cryptography for tenantvault: sealing, key wrapping and transit keyrings over `cryptography`."""

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
from tenantvault.crypto._gobase64 import GoBase64Error, go_atoi, go_b64decode
from tenantvault.crypto._keyring import (
    HMAC_KEY_SIZE,
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    VERSION_PREFIX,
    Keyring,
    KeyVersion,
)
from tenantvault.crypto._master_key import decode_master_key, encode_master_key
from tenantvault.crypto._transit_primitives import (
    HMAC_ALGORITHMS,
    KeyType,
    hash_digest,
    hkdf_sha256,
    random_bytes,
)

__all__ = [
    "HMAC_ALGORITHMS",
    "HMAC_KEY_SIZE",
    "HMAC_MAX_KEY_SIZE",
    "HMAC_MIN_KEY_SIZE",
    "KEY_SIZE",
    "NONCE_SIZE",
    "OVERHEAD",
    "TAG_SIZE",
    "VERSION_PREFIX",
    "AeadKey",
    "GoBase64Error",
    "KeyType",
    "KeyVersion",
    "Keyring",
    "decode_master_key",
    "encode_aad",
    "encode_master_key",
    "go_atoi",
    "go_b64decode",
    "hash_digest",
    "hkdf_sha256",
    "random_bytes",
    "random_key",
    "unwrap_key",
    "wrap_key",
]
