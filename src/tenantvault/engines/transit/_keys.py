"""Transit's key store: each mount's named keys, one record each, behind a parsed-keyring cache.

A named key lives in one record of its mount, `policy/<name>` (OpenBao's storage name), holding
all its versions. Changes (rotation, configuration) are check-and-set writes on that one
record, retried on a lost race, so concurrent rotations never lose a version and a reader
always sees a whole keyring.

Every write that stores a key with an `auto_rotate_period` it did not have (a new key, a
restore, a configuration) first calls `join` with the mount's tenant: the rotation pass visits
only the tenants that did (`_rotation`), so one writer path left out would leave its keys
unrotated. Doing it here, below every handler, keeps that from depending on each handler.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from tenantvault._cas import retry_on_conflict
from tenantvault._exceptions import ConflictError, InvalidRequestError
from tenantvault._records import decode_record, encode_record
from tenantvault.crypto import Keyring
from tenantvault.engines._protocol import MountStorage

__all__ = ["KEY_PREFIX", "WRITE_ATTEMPTS", "Join", "KeyStore"]

KEY_PREFIX: Final = "policy/"
# A lost race on a key record is retried this many times before giving up with 503.
WRITE_ATTEMPTS: Final = 256
# Parsed keyrings kept so that the hot path skips JSON decoding and cipher setup.
_CACHE_ENTRIES: Final = 4096

_T = TypeVar("_T")

# Called with a mount's tenant, durably done when it returns, before a key of that mount is
# stored with an `auto_rotate_period` it did not have: `RotationScheduler.join`.
Join = Callable[[str], Awaitable[None]]


class _Cached:
    """A parsed keyring, the exact plaintext record it was parsed from (which holds its key
    material in base64) and the sealed bytes that record was last read as (None until a load
    reads it): slots only, and a repr that shows none of them."""

    __slots__ = ("keyring", "sealed", "stored")

    def __init__(self, stored: bytes, keyring: Keyring, sealed: bytes | None = None) -> None:
        self.stored = stored
        self.keyring = keyring
        self.sealed = sealed

    def __repr__(self) -> str:
        return f"<cached {self.keyring!r}>"


class KeyStore:
    """Load, create and change transit keys in any mount's storage."""

    def __init__(self, *, max_entries: int = _CACHE_ENTRIES) -> None:
        # Parsed keyrings by (mount identity, name), each with the exact stored bytes it came
        # from. Every load still reads the record (another instance, a restore or a rotation
        # may have changed it; a deleted key must stop working at once) and a hit needs
        # byte-equal content, so the cache is right on any backend and after any change: it
        # saves only the JSON decoding, base64 and cipher set-up of an unchanged key, and
        # (sealed bytes equal to those last read) the opening of the record.
        self._cache: OrderedDict[tuple[tuple[str, str], str], _Cached] = OrderedDict()
        self._max_entries = max_entries
        # None until the engine is attached (a key store on its own rotates nothing).
        self.join: Join | None = None

    def __repr__(self) -> str:
        return f"KeyStore(cached={len(self._cache)})"

    async def load(self, store: MountStorage, name: str) -> Keyring | None:
        """The mount's key `name` as stored now, or None. Shared: do not modify it."""
        key = KEY_PREFIX + name
        sealed = await store.read_sealed(key)
        slot = (store.identity, name)
        if sealed is None:
            self._cache.pop(slot, None)  # deleted (maybe elsewhere): drop its material too
            return None
        cached = self._cache.get(slot)
        # The hot path: the very bytes opened before. Opening is deterministic and an identity
        # names one mount incarnation (`mount/<uuid4>`, with its own key and binding; a mount
        # of the fixed layout stores plaintext), so these bytes are the record already
        # parsed. Any other bytes are opened, and so authenticated, below.
        if cached is not None and cached.sealed == sealed.value:
            self._cache.move_to_end(slot)
            return cached.keyring
        stored = store.open_sealed(key, sealed).value
        if cached is not None and cached.stored == stored:
            # Sealed anew with the same content (this instance's own write, for one).
            cached.sealed = sealed.value
            self._cache.move_to_end(slot)
            return cached.keyring
        keyring = Keyring.from_record(decode_record(stored))
        self._remember(store, stored, keyring, sealed=sealed.value)
        return keyring

    async def require(self, store: MountStorage, name: str, message: str) -> Keyring:
        keyring = await self.load(store, name)
        if keyring is None:
            raise InvalidRequestError(message)
        return keyring

    def _remember(
        self, store: MountStorage, stored: bytes, keyring: Keyring, *, sealed: bytes | None = None
    ) -> None:
        slot = (store.identity, keyring.name)
        self._cache[slot] = _Cached(stored, keyring, sealed)
        self._cache.move_to_end(slot)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def forget(self, store: MountStorage, name: str) -> None:
        self._cache.pop((store.identity, name), None)

    def forget_mount(self, store: MountStorage) -> None:
        """Drop every cached key of a mount (it was disabled)."""
        identity = store.identity
        for cached in [key for key in self._cache if key[0] == identity]:
            self._cache.pop(cached, None)

    async def _joining(self, store: MountStorage, keyring: Keyring) -> None:
        if keyring.auto_rotate_seconds and self.join is not None:
            await self.join(store.tenant)

    async def store_new(self, store: MountStorage, keyring: Keyring) -> tuple[Keyring, bool]:
        """Create the key unless it exists: (the stored keyring, whether this call created it)."""
        stored = encode_record(keyring.to_record())
        await self._joining(store, keyring)

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
        await self._joining(store, keyring)
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
            had_period = keyring.auto_rotate_seconds
            result = change(keyring)
            stored = encode_record(keyring.to_record())
            if stored == record.value:
                return keyring, result  # nothing changed: no write (Vault skips it too)
            if not had_period:
                await self._joining(store, keyring)
            await store.write(key, stored, expected_revision=record.revision)
            self._remember(store, stored, keyring)
            return keyring, result

        return await retry_on_conflict(attempt, what="this key", attempts=WRITE_ATTEMPTS)
