"""Transit's key store: each mount's named keys, one record each, behind a parsed-keyring cache.

A named key lives in one record of its mount, `policy/<name>` (OpenBao's storage name), holding
all its versions. Changes (rotation, configuration) are check-and-set writes on that one
record, retried on a lost race, so concurrent rotations never lose a version and a reader
always sees a whole keyring.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final, TypeVar

from tenantvault._cas import retry_on_conflict
from tenantvault._exceptions import ConflictError, InvalidRequestError
from tenantvault._records import decode_record, encode_record
from tenantvault.crypto import Keyring
from tenantvault.engines._protocol import MountStorage

__all__ = ["KEY_PREFIX", "WRITE_ATTEMPTS", "KeyStore"]

KEY_PREFIX: Final = "policy/"
# A lost race on a key record is retried this many times before giving up with 503.
WRITE_ATTEMPTS: Final = 256
# Parsed keyrings kept so that the hot path skips JSON decoding and cipher setup.
_CACHE_ENTRIES: Final = 4096

_T = TypeVar("_T")


class KeyStore:
    """Load, create and change transit keys in any mount's storage."""

    def __init__(self) -> None:
        # Parsed keyrings by (mount identity, name), each with the exact stored bytes it came
        # from: a hit needs byte-equal content, so it is right on any backend and revision.
        self._cache: OrderedDict[tuple[tuple[str, str], str], tuple[bytes, Keyring]] = OrderedDict()

    async def load(self, store: MountStorage, name: str) -> Keyring | None:
        """The mount's key `name` as stored now, or None. Shared: do not modify it."""
        record = await store.read(KEY_PREFIX + name)
        if record is None:
            return None
        cached = self._cache.get((store.identity, name))
        if cached is not None and cached[0] == record.value:
            self._cache.move_to_end((store.identity, name))
            return cached[1]
        keyring = Keyring.from_record(decode_record(record.value))
        self._remember(store, record.value, keyring)
        return keyring

    async def require(self, store: MountStorage, name: str, message: str) -> Keyring:
        keyring = await self.load(store, name)
        if keyring is None:
            raise InvalidRequestError(message)
        return keyring

    def _remember(self, store: MountStorage, stored: bytes, keyring: Keyring) -> None:
        self._cache[(store.identity, keyring.name)] = (stored, keyring)
        self._cache.move_to_end((store.identity, keyring.name))
        if len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def forget(self, store: MountStorage, name: str) -> None:
        self._cache.pop((store.identity, name), None)

    def forget_mount(self, store: MountStorage) -> None:
        """Drop every cached key of a mount (it was disabled)."""
        identity = store.identity
        for cached in [key for key in self._cache if key[0] == identity]:
            self._cache.pop(cached, None)

    async def store_new(self, store: MountStorage, keyring: Keyring) -> tuple[Keyring, bool]:
        """Create the key unless it exists: (the stored keyring, whether this call created it)."""
        stored = encode_record(keyring.to_record())

        async def attempt() -> tuple[Keyring, bool]:
            try:
                await store.write(KEY_PREFIX + keyring.name, stored, expected_revision=0)
            except ConflictError:
                existing = await self.load(store, keyring.name)
                if existing is not None:
                    return existing, False
                raise
            self._remember(store, stored, keyring)
            return keyring, True

        return await retry_on_conflict(attempt, what="this key", attempts=WRITE_ATTEMPTS)

    async def replace(self, store: MountStorage, keyring: Keyring) -> None:
        """Store `keyring` under its name whatever was there (a forced restore)."""
        stored = encode_record(keyring.to_record())
        await store.write(KEY_PREFIX + keyring.name, stored, expected_revision=None)
        self._remember(store, stored, keyring)

    async def change(
        self, store: MountStorage, name: str, change: Callable[[Keyring], _T], *, missing: str
    ) -> tuple[Keyring, _T]:
        """Apply `change` to a private copy of the key and store it with check-and-set."""
        key = KEY_PREFIX + name

        async def attempt() -> tuple[Keyring, _T]:
            record = await store.read(key)
            if record is None:
                raise InvalidRequestError(missing)
            keyring = Keyring.from_record(decode_record(record.value))
            result = change(keyring)
            stored = encode_record(keyring.to_record())
            if stored == record.value:
                return keyring, result  # nothing changed: no write (Vault skips it too)
            await store.write(key, stored, expected_revision=record.revision)
            self._remember(store, stored, keyring)
            return keyring, result

        return await retry_on_conflict(attempt, what="this key", attempts=WRITE_ATTEMPTS)
