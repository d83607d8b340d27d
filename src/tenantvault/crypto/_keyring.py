"""Keyring: one named transit key — its versions, its policy, and every operation made with it.

A keyring is a plain value: the engine loads it from a backend record, calls a method, and
stores it back when it changed (rotation, configuration). Formats and checks follow OpenBao's
`keysutil.Policy` in order and wording, because clients match on both:

- ciphertexts, signatures and HMACs read `vault:v<N>:<base64>`;
- decryption refuses versions above the latest ("version is too new") and below
  `min_decryption_version` ("... disallowed by policy (too old)"); encryption refuses versions
  below `min_encryption_version`, and every operation refuses a version below
  `min_decryption_version` ("no such key version": OpenBao has archived it);
- derived keys (`derived=True`) need a `context` for every operation.

Errors are the caller's (`InvalidRequestError`, 400) or one `DecryptionError` (400) for every
ciphertext that cannot be opened — a bad format, a wrong key, a flipped bit or another tenant's
ciphertext all look the same from outside except for Vault's format messages.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import DecryptionError, IntegrityError, InvalidRequestError
from tenantvault.crypto._gobase64 import go_atoi, go_b64decode
from tenantvault.crypto._transit_primitives import (
    AEAD_NONCE_SIZE,
    AeadCipher,
    AuthenticationFailed,
    KeyType,
    ed25519_keypair,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    hkdf_sha256,
    hmac_digest,
    random_bytes,
)

__all__ = [
    "HMAC_KEY_SIZE",
    "HMAC_MAX_KEY_SIZE",
    "HMAC_MIN_KEY_SIZE",
    "VERSION_PREFIX",
    "KeyVersion",
    "Keyring",
]

VERSION_PREFIX: Final = "vault:v"
HMAC_KEY_SIZE: Final = 32
HMAC_MIN_KEY_SIZE: Final = 32
HMAC_MAX_KEY_SIZE: Final = 512
# The HMAC key convergent encryption derives next to the encryption key.
_CONVERGENT_HMAC_SIZE: Final = 32
_CANONICAL_VERSION: Final = re.compile(r"[1-9][0-9]{0,17}\Z", re.ASCII)
_TOO_OLD: Final = "ciphertext or signature version is disallowed by policy (too old)"
_MISSING_CONTEXT: Final = (
    "missing 'context' for key derivation; the key was created using a derived key, which "
    "means additional, per-request information must be included in order to perform "
    "operations with the key"
)


def _canonical_b64decode(text: str) -> bytes | None:
    """Padded standard base64 in the one spelling `b64encode` gives, else None.

    Go's decoder also takes line breaks and ignores the unused low bits of the last
    character, so one ciphertext has several spellings there; here it has exactly one.
    """
    try:
        return _b64.decode(text)
    except ValueError:
        return None


def _unb64(text: str) -> bytes:
    # Stored records only; anything else is an integrity failure, never a caller's mistake.
    try:
        return _b64.decode(text)
    except ValueError:
        raise IntegrityError("stored transit key is not valid") from None


@dataclass(slots=True)
class KeyVersion:
    """One version's material. `key` is the AEAD key, the HMAC key of an `hmac` key, or a
    Go-layout Ed25519 private key (seed ‖ public); `hmac_key` serves `hmac/` for any type."""

    key: bytes = field(repr=False)
    hmac_key: bytes = field(repr=False)
    created_ns: int
    _cipher: AeadCipher | None = field(default=None, repr=False, compare=False)

    @property
    def public_key(self) -> bytes:
        return self.key[32:] if len(self.key) == 64 else ed25519_public_key(self.key)


@dataclass(slots=True)
class _Parsed:
    version: int
    body: str


class Keyring:
    """A named key's versions and settings, with the operations Vault's transit offers."""

    def __init__(
        self,
        *,
        name: str,
        key_type: KeyType,
        versions: Mapping[int, KeyVersion],
        derived: bool = False,
        convergent: bool = False,
        exportable: bool = False,
        allow_plaintext_backup: bool = False,
        deletion_allowed: bool = False,
        auto_rotate_seconds: int = 0,
        min_decryption_version: int = 1,
        min_encryption_version: int = 0,
        key_size: int = 0,
        min_available_version: int = 0,
    ) -> None:
        self.name = name
        self.key_type = key_type
        self.versions: dict[int, KeyVersion] = dict(versions)
        self.derived = derived
        self.convergent = convergent
        self.exportable = exportable
        self.allow_plaintext_backup = allow_plaintext_backup
        self.deletion_allowed = deletion_allowed
        self.auto_rotate_seconds = auto_rotate_seconds
        self.min_decryption_version = min_decryption_version
        self.min_encryption_version = min_encryption_version
        self.key_size = key_size
        # Versions below it were trimmed: deleted for good (0: never trimmed).
        self.min_available_version = min_available_version
        self.latest_version = max(self.versions, default=0)

    def __repr__(self) -> str:
        return f"<Keyring {self.name!r} {self.key_type} v{self.latest_version}>"

    # -- life cycle ------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        name: str,
        key_type: KeyType,
        *,
        now_ns: int,
        derived: bool = False,
        convergent: bool = False,
        exportable: bool = False,
        allow_plaintext_backup: bool = False,
        auto_rotate_seconds: int = 0,
        key_size: int = 0,
    ) -> Keyring:
        """A new key with version 1, after Vault's checks of the combination asked for."""
        if convergent and not derived:
            raise InvalidRequestError("convergent encryption requires derivation to be enabled")
        if key_type is KeyType.ED25519 and convergent:
            raise InvalidRequestError(
                f"convergent encryption not supported for keys of type {key_type}"
            )
        if key_type is KeyType.HMAC:
            if derived or convergent:
                raise InvalidRequestError(
                    f"key derivation and convergent encryption not supported for keys of type "
                    f"{key_type}"
                )
            key_size = key_size or HMAC_KEY_SIZE
        elif key_size:
            raise InvalidRequestError(f"key_size is not valid for algorithm {key_type}")
        if key_type is KeyType.HMAC and not HMAC_MIN_KEY_SIZE <= key_size <= HMAC_MAX_KEY_SIZE:
            raise InvalidRequestError(f"invalid key_size {key_size}")
        keyring = cls(
            name=name,
            key_type=key_type,
            versions={},
            derived=derived,
            convergent=convergent,
            exportable=exportable,
            allow_plaintext_backup=allow_plaintext_backup,
            auto_rotate_seconds=auto_rotate_seconds,
            key_size=key_size,
        )
        keyring.rotate(now_ns=now_ns)
        return keyring

    def rotate(self, *, now_ns: int) -> int:
        """Add a fresh version from the CSPRNG; return its number."""
        hmac_key = random_bytes(HMAC_KEY_SIZE)
        if self.key_type is KeyType.ED25519:
            key = ed25519_keypair()
        elif self.key_type is KeyType.HMAC:
            key = random_bytes(self.key_size)
            hmac_key = key
        else:
            key = random_bytes(self.key_type.key_size)
        self.latest_version += 1
        self.versions[self.latest_version] = KeyVersion(key, hmac_key, now_ns)
        self.min_decryption_version = self.min_decryption_version or 1
        return self.latest_version

    def trim(self, min_available_version: int) -> None:
        """Delete every version below `min_available_version` for good (Vault's trim; the
        engine checks the bounds first, so the latest version always stays)."""
        self.min_available_version = min_available_version
        for number in [n for n in self.versions if n < min_available_version]:
            del self.versions[number]

    def is_rotation_due(self, now_ns: int) -> bool:
        """Whether `auto_rotate_period` has passed since the latest version was created."""
        if not self.auto_rotate_seconds or not self.latest_version:
            return False
        created = self.versions[self.latest_version].created_ns
        return now_ns > created + self.auto_rotate_seconds * 1_000_000_000

    # -- storage form ----------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict; the backend seals it under the tenant's data key."""
        return {
            "name": self.name,
            "type": str(self.key_type),
            "derived": self.derived,
            "convergent": self.convergent,
            "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "deletion_allowed": self.deletion_allowed,
            "auto_rotate_seconds": self.auto_rotate_seconds,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "key_size": self.key_size,
            "min_available_version": self.min_available_version,
            "versions": {
                str(number): {
                    "key": _b64.encode(version.key),
                    "hmac_key": _b64.encode(version.hmac_key),
                    "created": version.created_ns,
                }
                for number, version in self.versions.items()
            },
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Keyring:
        try:
            return cls(
                name=record["name"],
                key_type=KeyType(record["type"]),
                versions={
                    int(number): KeyVersion(
                        _unb64(entry["key"]), _unb64(entry["hmac_key"]), int(entry["created"])
                    )
                    for number, entry in record["versions"].items()
                },
                derived=bool(record["derived"]),
                convergent=bool(record["convergent"]),
                exportable=bool(record["exportable"]),
                allow_plaintext_backup=bool(record["allow_plaintext_backup"]),
                deletion_allowed=bool(record["deletion_allowed"]),
                auto_rotate_seconds=int(record["auto_rotate_seconds"]),
                min_decryption_version=int(record["min_decryption_version"]),
                min_encryption_version=int(record["min_encryption_version"]),
                key_size=int(record["key_size"]),
                # Records stored before trim existed have no such field.
                min_available_version=int(record.get("min_available_version", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("stored transit key is not valid") from None

    # -- versions and keys -----------------------------------------------------------------

    def live_versions(self) -> Iterator[tuple[int, KeyVersion]]:
        """Versions still usable for decryption (Vault archives the others), in order."""
        for number in sorted(self.versions):
            if number >= self.min_decryption_version:
                yield number, self.versions[number]

    def _entry(self, version: int) -> KeyVersion:
        # OpenBao archives the versions below min_decryption_version out of the policy's key
        # map, so no operation may use one (issue 8.6: encrypting with a retired version gave
        # ciphertext nobody could decrypt); lowering the minimum brings them back.
        entry = self.versions.get(version) if version >= self.min_decryption_version else None
        if entry is None:
            raise InvalidRequestError("no such key version")
        return entry

    def _key(self, version: int, context: bytes, length: int) -> bytes:
        """Vault's `GetKey`: the version's key, or the key derived for `context`."""
        if not self.derived:
            return self._entry(version).key
        if not self.key_type.supports_derivation:
            raise InvalidRequestError(f"derivation not supported for key type {self.key_type}")
        if version <= 0 or version > self.latest_version:
            raise InvalidRequestError("invalid key version")
        if not context:
            raise InvalidRequestError(_MISSING_CONTEXT)
        secret = self._entry(version).key
        if self.key_type is KeyType.ED25519:
            # Go's ed25519.GenerateKey reads its 32-byte seed from the HKDF stream.
            return ed25519_keypair(hkdf_sha256(secret, context, 32))
        return hkdf_sha256(secret, context, length)

    def _cipher(self, version: int, context: bytes) -> AeadCipher:
        size = self.key_type.key_size
        if self.derived:
            return AeadCipher(self.key_type, self._key(version, context, size))
        entry = self._entry(version)
        if entry._cipher is None:
            entry._cipher = AeadCipher(self.key_type, entry.key)
        return entry._cipher

    def hmac_key(self, version: int) -> bytes:
        """The HMAC key of `version` (Vault's `HMACKey`)."""
        if version < 0:
            raise InvalidRequestError("key version does not exist (cannot be negative)")
        if version > self.latest_version:
            raise InvalidRequestError(
                f"key version does not exist; latest key version is {self.latest_version}"
            )
        return self._entry(version).hmac_key

    def public_key(self, version: int, context: bytes = b"") -> bytes:
        """An Ed25519 version's public key (for a derived key: the one for `context`)."""
        if self.derived:
            return ed25519_public_key(self._key(version, context, 32))
        return self._entry(version).public_key

    # -- encryption ------------------------------------------------------------------------

    def encryption_version(self, version: int) -> int:
        if version == 0:
            return self.latest_version
        if version < 0:
            raise InvalidRequestError("requested version for encryption is negative")
        if version > self.latest_version:
            raise InvalidRequestError(
                "requested version for encryption is higher than the latest key version"
            )
        if version < self.min_encryption_version:
            raise InvalidRequestError(
                "requested version for encryption is less than the minimum encryption key version"
            )
        return version

    def encrypt(
        self,
        plaintext: bytes,
        *,
        version: int = 0,
        context: bytes = b"",
        associated_data: bytes | None = None,
    ) -> str:
        """`vault:v<N>:<base64(nonce ‖ ciphertext ‖ tag)>` under `version` (0: the latest)."""
        if not self.key_type.is_aead:
            raise InvalidRequestError(
                f"message encryption not supported for key type {self.key_type}"
            )
        version = self.encryption_version(version)
        if self.convergent:
            size = self.key_type.key_size
            material = self._key(version, context, size + _CONVERGENT_HMAC_SIZE)
            cipher = AeadCipher(self.key_type, material[:size])
            blob = cipher.seal_convergent(material[size:], plaintext, associated_data)
        else:
            blob = self._cipher(version, context).seal(plaintext, associated_data)
        return f"{VERSION_PREFIX}{version}:{_b64.encode(blob)}"

    def decrypt(
        self, ciphertext: str, *, context: bytes = b"", associated_data: bytes | None = None
    ) -> bytes:
        """The plaintext of a ciphertext made by `encrypt`, or `DecryptionError`."""
        if not self.key_type.is_aead:
            raise InvalidRequestError(
                f"message decryption not supported for key type {self.key_type}"
            )
        parsed = self._parse(ciphertext, "ciphertext", canonical=True)
        version = parsed.version
        if version > self.latest_version:
            raise DecryptionError("invalid ciphertext: version is too new")
        if self.min_decryption_version > 0 and version < self.min_decryption_version:
            raise DecryptionError(_TOO_OLD)
        blob = _canonical_b64decode(parsed.body)
        if blob is None:
            raise DecryptionError("invalid ciphertext: could not decode base64")
        cipher = self._cipher(version, context)
        if len(blob) < AEAD_NONCE_SIZE:
            raise DecryptionError("invalid ciphertext length")
        try:
            return cipher.open(blob, associated_data)
        except AuthenticationFailed as failure:
            raise DecryptionError(failure.message) from None

    @staticmethod
    def _parse(text: str, what: str, *, canonical: bool = False) -> _Parsed:
        """Split `vault:v<N>:<body>`. `canonical` admits only the spelling `encrypt` writes.

        Vault also reads `v0` as version 1 and `v+1` or `v01` as 1; a ciphertext has exactly
        one valid spelling here, so any change to its prefix is refused: two spellings of
        one ciphertext would let a replayed copy pass a check for the other.
        """
        if not text.startswith(VERSION_PREFIX):
            raise DecryptionError(f"invalid {what}: no prefix")
        number, colon, body = text[len(VERSION_PREFIX) :].partition(":")
        if not colon:
            raise DecryptionError(f"invalid {what}: wrong number of fields")
        version = go_atoi(number)
        if version is None or (canonical and not _CANONICAL_VERSION.match(number)):
            raise DecryptionError(f"invalid {what}: version number could not be decoded")
        return _Parsed(version, body)

    # -- HMAC ------------------------------------------------------------------------------

    def hmac(self, message: bytes, *, algorithm: str, version: int) -> str:
        """`vault:v<N>:<base64(HMAC)>` with the version's HMAC key (resolve `version` first)."""
        digest = hmac_digest(algorithm, self.hmac_key(version), message)
        return f"{VERSION_PREFIX}{version}:{_b64.encode(digest)}"

    def verify_hmac(self, message: bytes, mac: str, *, algorithm: str) -> bool:
        if not mac.startswith(VERSION_PREFIX):
            raise InvalidRequestError("invalid HMAC to verify: no prefix")
        number, colon, body = mac[len(VERSION_PREFIX) :].partition(":")
        if not colon:
            raise InvalidRequestError("invalid HMAC: wrong number of fields")
        version = go_atoi(number)
        if version is None:
            raise InvalidRequestError("invalid HMAC: version number could not be decoded")
        try:
            expected = go_b64decode(body)
        except ValueError as error:
            raise InvalidRequestError(
                f"unable to decode verification HMAC as base64: {error}"
            ) from None
        if version > self.latest_version:
            raise InvalidRequestError("invalid HMAC: version is too new")
        if self.min_decryption_version > 0 and version < self.min_decryption_version:
            raise InvalidRequestError(
                "cannot verify HMAC: version is too old (disallowed by policy)"
            )
        actual = hmac_digest(algorithm, self.hmac_key(version), message)
        return secrets.compare_digest(actual, expected)

    # -- signatures ------------------------------------------------------------------------

    def sign(
        self, message: bytes, *, version: int = 0, context: bytes = b"", jws: bool = False
    ) -> tuple[str, int, bytes | None]:
        """(signature, version, derived public key or None) — Ed25519, pure, like Vault."""
        if not self.key_type.supports_signing:
            raise InvalidRequestError(f"message signing not supported for key type {self.key_type}")
        if version == 0:
            version = self.latest_version
        elif version < 0:
            raise InvalidRequestError("requested version for signing is negative")
        elif version > self.latest_version:
            raise InvalidRequestError(
                "requested version for signing is higher than the latest key version"
            )
        elif self.min_encryption_version > 0 and version < self.min_encryption_version:
            raise InvalidRequestError(
                "requested version for signing is less than the minimum encryption key version"
            )
        entry = self._entry(version)
        public: bytes | None = None
        if self.derived:
            private = self._derived_signing_key(version, context)
            public = private[32:]
        else:
            private = entry.key
        signature = ed25519_sign(private, message)
        encoded = _b64.encode_urlsafe(signature) if jws else _b64.encode(signature)
        return f"{VERSION_PREFIX}{version}:{encoded}", version, public

    def _derived_signing_key(self, version: int, context: bytes) -> bytes:
        try:
            return self._key(version, context, 32)
        except InvalidRequestError as error:
            raise InvalidRequestError(f"error deriving key: {error.message}") from None

    def verify_signature(
        self, message: bytes, signature: str, *, context: bytes = b"", jws: bool = False
    ) -> bool:
        if not self.key_type.supports_signing:
            raise InvalidRequestError(
                f"message verification not supported for key type {self.key_type}"
            )
        parsed = self._parse(signature, "signature")
        if parsed.version > self.latest_version:
            raise InvalidRequestError("invalid signature: version is too new")
        if self.min_decryption_version > 0 and parsed.version < self.min_decryption_version:
            raise InvalidRequestError(_TOO_OLD)
        try:
            if jws:
                # Go's RawURLEncoding: the URL alphabet only, and no padding at all.
                raw = _b64.decode_urlsafe(parsed.body)
            else:
                raw = go_b64decode(parsed.body)
        except ValueError:
            raise InvalidRequestError("invalid base64 signature value") from None
        if self.derived:
            public = self._derived_signing_key(parsed.version, context)[32:]
        else:
            public = self._entry(parsed.version).public_key
        return ed25519_verify(public, message, raw)
