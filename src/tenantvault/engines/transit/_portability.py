"""Transit keys leaving or re-entering a mount: export, backup, restore, and trim.

Each follows OpenBao's rules and texts (checked against 2.7.2): export only for `exportable`
keys (a public key always), backup only for keys both `exportable` and
`allow_plaintext_backup`. Where OpenBao answers a refused backup or restore with 500, this
answers 400: the caller's mistake, which a retry cannot fix (clients retry 5xx).

The backup blob is ours, not OpenBao's: `tvb1:` + base64 of the key record sealed with
AES-256-GCM under the mount's own backup key (a record of the mount, created on first use,
sealed at rest like every record). So a blob is confidential, cannot be altered or forged,
and restores only into the mount that made it; anything else is one 400 `invalid backup`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from tenantvault import _b64
from tenantvault._exceptions import (
    ConflictError,
    IntegrityError,
    InvalidRequestError,
    NotFoundError,
)
from tenantvault._fields import get_bool, get_int, get_str
from tenantvault._paths import validate_name
from tenantvault._records import decode_record, encode_record
from tenantvault._request import Response
from tenantvault.crypto import AeadKey, Keyring, KeyType, encode_aad, go_atoi, random_key
from tenantvault.engines._protocol import MountStorage
from tenantvault.engines.transit._keys import KeyStore

__all__ = ["EXPORT_TYPES", "Portability"]

EXPORT_TYPES: Final = ("encryption-key", "signing-key", "hmac-key", "public-key")
_BACKUP_KEY: Final = "backup/key"
_BLOB_PREFIX: Final = "tvb1:"
_BLOB_LABEL: Final = "tenantvault:transit-backup:v1"
# Far above any real keyring (a few KiB per version): bounds the work a restore can cause.
_MAX_BLOB_CHARS: Final = 4 * 1024 * 1024
_INVALID_BACKUP: Final = "invalid backup"

Describe = Callable[[Keyring], dict[str, Any]]


def _exported(keyring: Keyring, kind: str, number: int) -> str:
    """One version's material as Vault's export shows it (base64)."""
    version = keyring.versions[number]
    if kind == "hmac-key":
        return _b64.encode(version.hmac_key)
    if kind == "public-key":
        return _b64.encode(version.public_key)
    # encryption-key and signing-key: the version's own key (Go's 64-byte ed25519 layout).
    return _b64.encode(version.key)


def _check_export(keyring: Keyring, kind: str) -> None:
    """OpenBao's refusals, in its order: private material, then the key's abilities."""
    if kind != "public-key" and not keyring.exportable:
        raise InvalidRequestError("private key material is not exportable")
    key_type = keyring.key_type
    if kind == "encryption-key" and not key_type.is_aead:
        raise InvalidRequestError("encryption not supported for the key")
    if kind == "signing-key" and not key_type.supports_signing:
        raise InvalidRequestError("signing not supported for the key")
    if kind == "public-key" and key_type is not KeyType.ED25519:
        # OpenBao answers this with a 500; it is the caller's choice of type, so 400.
        raise InvalidRequestError(f"unknown key type {key_type} for export type public-key")


def _export_version(keyring: Keyring, raw: str) -> int:
    number = keyring.latest_version if raw == "latest" else go_atoi(raw)
    if number is None:
        raise InvalidRequestError("invalid key version")
    if number < keyring.min_decryption_version:
        raise InvalidRequestError("version for export is below minimum decryption version")
    if number not in keyring.versions:
        raise InvalidRequestError("version does not exist or cannot be found")
    return number


class Portability:
    """Export, backup, restore and trim for the transit engine (one mount per call)."""

    def __init__(self, keys: KeyStore, *, describe: Describe) -> None:
        self._keys = keys
        self._describe = describe

    # -- export ----------------------------------------------------------------------------

    async def export(self, store: MountStorage, kind: str, name: str, version: str) -> Response:
        if kind not in EXPORT_TYPES:
            raise InvalidRequestError(f"invalid export type: {kind}")
        keyring = await self._keys.load(store, name)
        if keyring is None:
            raise NotFoundError()
        _check_export(keyring, kind)
        if version:
            numbers = [_export_version(keyring, version)]
        else:
            numbers = [number for number, _ in keyring.live_versions()]
        keys = {str(number): _exported(keyring, kind, number) for number in numbers}
        return Response(data={"keys": keys, "name": keyring.name, "type": str(keyring.key_type)})

    # -- backup and restore ----------------------------------------------------------------

    async def _sealing_key(self, store: MountStorage, *, create: bool) -> AeadKey | None:
        """The mount's backup key; made on the first backup (None before, for a restore)."""
        record = await store.read(_BACKUP_KEY)
        if record is None and create:
            try:
                await store.write(_BACKUP_KEY, random_key(), expected_revision=0)
            except ConflictError:
                pass  # another backup made it first: use that one
            record = await store.read(_BACKUP_KEY)
        return AeadKey(record.value) if record is not None else None

    async def backup(self, store: MountStorage, name: str) -> Response:
        keyring = await self._keys.load(store, name)
        if keyring is None:
            raise InvalidRequestError(f'key "{name}" not found')
        if not keyring.exportable:
            raise InvalidRequestError("exporting is disallowed on the policy")
        if not keyring.allow_plaintext_backup:
            raise InvalidRequestError("plaintext backup is disallowed on the policy")
        key = await self._sealing_key(store, create=True)
        if key is None:  # pragma: no cover -- created just above
            raise IntegrityError("transit backup key is missing")
        sealed = key.seal(encode_record(keyring.to_record()), encode_aad(_BLOB_LABEL))
        return Response(data={"backup": _BLOB_PREFIX + _b64.encode(sealed)})

    async def _opened(self, store: MountStorage, blob: str) -> Keyring:
        """The keyring a blob holds; one `invalid backup` for anything that is not a blob
        this mount made, unaltered (never a 500, never a hint which check failed)."""
        if len(blob) > _MAX_BLOB_CHARS or not blob.startswith(_BLOB_PREFIX):
            raise InvalidRequestError(_INVALID_BACKUP)
        key = await self._sealing_key(store, create=False)
        try:
            sealed = _b64.decode(blob.removeprefix(_BLOB_PREFIX))
            if key is None:
                raise IntegrityError(_INVALID_BACKUP)
            record = decode_record(key.open(sealed, encode_aad(_BLOB_LABEL)))
            if not isinstance(record, Mapping):
                raise IntegrityError(_INVALID_BACKUP)
            return Keyring.from_record(record)
        except (ValueError, IntegrityError):
            raise InvalidRequestError(_INVALID_BACKUP) from None

    async def restore(
        self, store: MountStorage, url_name: str, data: Mapping[str, Any]
    ) -> Response:
        blob = get_str(data, "backup")
        if not blob:
            raise InvalidRequestError("'backup' must be supplied")
        force = bool(get_bool(data, "force", default=False))
        keyring = await self._opened(store, blob)
        raw_name = url_name or get_str(data, "name") or keyring.name
        if "/" in raw_name:
            raise InvalidRequestError("key names cannot be paths")
        keyring.name = validate_name(raw_name, kind="key name")
        if force:
            await self._keys.replace(store, keyring)
        else:
            _, created = await self._keys.store_new(store, keyring)
            if not created:
                raise InvalidRequestError(f'key "{keyring.name}" already exists')
        return Response.no_content()

    # -- trim ------------------------------------------------------------------------------

    async def trim(self, store: MountStorage, name: str, data: Mapping[str, Any]) -> Response:
        if data.get("min_available_version") is None:
            raise InvalidRequestError("missing min_available_version")
        wanted = get_int(data, "min_available_version", minimum=-(2**53))
        if wanted is None:  # pragma: no cover -- checked just above
            raise InvalidRequestError("missing min_available_version")

        def trim(keyring: Keyring) -> None:
            # OpenBao's checks, in its order and words (the typo "minmum" included).
            if wanted < keyring.min_available_version:
                raise InvalidRequestError("minimum available version cannot be decremented")
            if keyring.min_encryption_version == 0:
                raise InvalidRequestError(
                    "minimum available version cannot be set when minimum encryption version "
                    "is not set"
                )
            if keyring.min_decryption_version == 0:
                raise InvalidRequestError(
                    "minimum available version cannot be set when minimum decryption version "
                    "is not set"
                )
            if wanted > keyring.min_encryption_version:
                raise InvalidRequestError(
                    "minimum available version cannot be greater than minmum encryption version"
                )
            if wanted > keyring.min_decryption_version:
                raise InvalidRequestError(
                    "minimum available version cannot be greater than minimum decryption version"
                )
            if wanted == 0:
                raise InvalidRequestError("minimum available version should be positive")
            keyring.trim(wanted)

        keyring, _ = await self._keys.change(store, name, trim, missing="invalid key name")
        return Response(data=self._describe(keyring))
