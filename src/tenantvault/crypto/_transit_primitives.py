"""The primitives of the transit engine over `cryptography`: AEAD by key type, HKDF, Ed25519, HMAC.

Byte layouts are exactly OpenBao's (sdk/helper/keysutil), so that key material exported from
OpenBao works here and the other way round:

- an AEAD blob is `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, for AES-GCM and
  ChaCha20-Poly1305 alike;
- derived keys are HKDF-SHA256 with the key version as secret, no salt and the caller's
  context as info (`kdf: hkdf_sha256`);
- an Ed25519 key is stored as Go stores it: the 32-byte seed followed by the 32-byte public key.

Nonces come from the OS CSPRNG only. The one exception is convergent encryption, where the
nonce is an HMAC of the plaintext under a derived key (so equal inputs give equal output), as
OpenBao's convergent version 3 does. `_seal_with_nonce` exists for known-answer tests and the
convergent path; the API never hands it a caller's nonce.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tenantvault._public_random import public_random

__all__ = [
    "AEAD_NONCE_SIZE",
    "HMAC_ALGORITHMS",
    "AeadCipher",
    "AuthenticationFailed",
    "KeyType",
    "ed25519_keypair",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "hash_digest",
    "hkdf_sha256",
    "hmac_digest",
    "random_bytes",
]

AEAD_NONCE_SIZE: Final = 12
ED25519_SEED_SIZE: Final = 32

# HMAC and hash algorithms: Vault's names to hashlib's (OpenSSL's implementations).
HMAC_ALGORITHMS: Final[dict[str, str]] = {
    "sha1": "sha1",
    "sha2-224": "sha224",
    "sha2-256": "sha256",
    "sha2-384": "sha384",
    "sha2-512": "sha512",
    "sha3-224": "sha3_224",
    "sha3-256": "sha3_256",
    "sha3-384": "sha3_384",
    "sha3-512": "sha3_512",
}


class KeyType(enum.StrEnum):
    """The transit key types served, by Vault's names."""

    AES128_GCM96 = "aes128-gcm96"
    AES256_GCM96 = "aes256-gcm96"
    CHACHA20_POLY1305 = "chacha20-poly1305"
    ED25519 = "ed25519"
    HMAC = "hmac"

    # These are asked several times per encrypt and decrypt; looking a member up on an
    # enum class costs as much as the rest of the check, so they read module-level sets.
    @property
    def is_aead(self) -> bool:
        return self in _AEAD_TYPES

    @property
    def supports_signing(self) -> bool:
        return self in _SIGNING_TYPES

    @property
    def supports_derivation(self) -> bool:
        return self in _DERIVATION_TYPES

    @property
    def key_size(self) -> int:
        """Bytes of key material per version (HMAC keys choose theirs with `key_size`)."""
        return 16 if self in _SHORT_KEY_TYPES else 32


_AEAD_TYPES: Final = frozenset(
    {KeyType.AES128_GCM96, KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305}
)
_SIGNING_TYPES: Final = frozenset({KeyType.ED25519})
_DERIVATION_TYPES: Final = _AEAD_TYPES | _SIGNING_TYPES
_SHORT_KEY_TYPES: Final = frozenset({KeyType.AES128_GCM96})


class AuthenticationFailed(Exception):
    """The AEAD tag did not verify; `message` is the one Go's cipher would give."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def random_bytes(size: int) -> bytes:
    """`size` bytes from the OS CSPRNG."""
    # What secrets.token_bytes calls, without its two Python layers (a nonce per encrypt).
    return os.urandom(size)


class AeadCipher:
    """One AEAD key of a transit key type; its repr never shows the key."""

    __slots__ = ("_aead", "_failure")

    def __init__(self, key_type: KeyType, key: bytes) -> None:
        if key_type is KeyType.CHACHA20_POLY1305:
            self._aead: AESGCM | ChaCha20Poly1305 = ChaCha20Poly1305(key)
            # Go's golang.org/x/crypto error text, which Vault clients see.
            self._failure = "chacha20poly1305: message authentication failed"
        elif key_type.is_aead:
            if len(key) != key_type.key_size:
                raise ValueError(f"{key_type} needs a {key_type.key_size}-byte key")
            self._aead = AESGCM(key)
            self._failure = "cipher: message authentication failed"
        else:
            raise ValueError(f"{key_type} is not an AEAD key type")

    def __repr__(self) -> str:
        return "AeadCipher(<redacted>)"

    def seal(self, plaintext: bytes, associated_data: bytes | None) -> bytes:
        """`nonce ‖ ciphertext ‖ tag` with a fresh random 96-bit nonce."""
        # A nonce is public: from the block pool, not one getrandom call per encrypt.
        return self._seal_with_nonce(public_random(AEAD_NONCE_SIZE), plaintext, associated_data)

    def seal_convergent(
        self, hmac_key: bytes, plaintext: bytes, associated_data: bytes | None
    ) -> bytes:
        """Deterministic sealing: the nonce is HMAC-SHA256(hmac_key, plaintext)[:12]."""
        nonce = hmac.digest(hmac_key, plaintext, "sha256")[:AEAD_NONCE_SIZE]
        return self._seal_with_nonce(nonce, plaintext, associated_data)

    def _seal_with_nonce(
        self, nonce: bytes, plaintext: bytes, associated_data: bytes | None
    ) -> bytes:
        # Private on purpose: only known-answer tests and the convergent path choose a nonce.
        if len(nonce) != AEAD_NONCE_SIZE:
            raise ValueError(f"the nonce has {AEAD_NONCE_SIZE} bytes")
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data or None)

    def open(self, blob: bytes, associated_data: bytes | None) -> bytes:
        """The plaintext of `nonce ‖ ciphertext ‖ tag`, or `AuthenticationFailed`.

        The caller checks that `blob` holds at least a nonce (Vault reports that apart).
        """
        nonce, body = blob[:AEAD_NONCE_SIZE], blob[AEAD_NONCE_SIZE:]
        try:
            return self._aead.decrypt(nonce, body, associated_data or None)
        except InvalidTag:
            raise AuthenticationFailed(self._failure) from None


def hkdf_sha256(secret: bytes, info: bytes, length: int, *, salt: bytes | None = None) -> bytes:
    """RFC 5869 HKDF with SHA-256 (no salt means a hash-length zero salt, as in Go)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def ed25519_keypair(seed: bytes | None = None) -> bytes:
    """A Go-layout Ed25519 private key: seed ‖ public key (64 bytes). A random seed if None."""
    if seed is None:
        seed = random_bytes(ED25519_SEED_SIZE)
    if len(seed) != ED25519_SEED_SIZE:
        raise ValueError(f"an Ed25519 seed has {ED25519_SEED_SIZE} bytes")
    return seed + ed25519_public_key(seed)


def ed25519_public_key(private: bytes) -> bytes:
    """The 32-byte public key of a seed or of a Go-layout private key."""
    key = Ed25519PrivateKey.from_private_bytes(private[:ED25519_SEED_SIZE])
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_sign(private: bytes, message: bytes) -> bytes:
    """A pure Ed25519 signature (no pre-hashing, as Vault signs) with a seed or Go-layout key."""
    return Ed25519PrivateKey.from_private_bytes(private[:ED25519_SEED_SIZE]).sign(message)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def hmac_digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    """HMAC of `message` with one of `HMAC_ALGORITHMS` (KeyError for any other name)."""
    return hmac.digest(key, message, HMAC_ALGORITHMS[algorithm])


def hash_digest(algorithm: str, message: bytes) -> bytes:
    """A plain digest with one of `HMAC_ALGORITHMS` (KeyError for any other name)."""
    return hashlib.new(HMAC_ALGORITHMS[algorithm], message).digest()
