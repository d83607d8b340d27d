"""A bounded store of sealed values: per-tenant shares, single flight, stale-if-error.

Keys are `(tenant, scope, path, variant)`; a *group* is a key without its variant (a KV
path and all its versions), and it is the unit that is forgotten when something changes.

**Sealed.** Every value is JSON, sealed with AES-256-GCM under a key drawn at random when
the store is made and never written anywhere, the associated data binding it to its key (an
entry moved to another key fails to open). Values are opened on every hit; the store holds
no clear text, so a heap dump, a repr or a log line shows none.

**Single flight.** Concurrent misses on one key share one `load` (a task each waiter awaits
through `asyncio.shield`, so one caller cancelled does not cancel the others' read).

**Never the old value after a change.** `forget(group)` drops the group's entries and
*detaches* its flights: a load that started before the change still answers its waiters,
but its result is not kept. A writer forgets before and after its write, so once the write
returns nothing older can be found or filled (read-your-writes through this instance).

**Bounds with shares.** At most `max_entries` entries and `max_bytes` bytes (sealed size plus
a fixed overhead per entry); one tenant holds at most `tenant_share` of either (past it, its
own least recently used entry goes). When the whole store is full, the tenant holding the
most bytes gives up its least recently used entry — so a tenant is evicted only while it
holds at least as much as every other, and one tenant filling the cache never pushes
another below an equal split. A max-heap of (bytes, tenant), updated lazily, finds it.

**Lifetimes.** A value is fresh for the TTL (shortened by a random jitter), a 404 for the
negative TTL; a value (not a 404) then stays *stale* for `stale_if_error_seconds`, and is
served, flagged, only when its load fails with a backend outage (`STALE_ERRORS`). `sweep()`
drops entries past their last use, oldest fill first.
"""

from __future__ import annotations

import asyncio
import heapq
import random as _random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from tenantvault._clock import Clock
from tenantvault._exceptions import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
)
from tenantvault.backends._protocol import SYSTEM_TENANT
from tenantvault.cache._settings import CacheSettings
from tenantvault.crypto import AeadKey, encode_aad, random_key

__all__ = ["STALE_ERRORS", "SWEEP_BATCH", "CacheEvents", "Group", "Key", "Loaded", "SealedStore"]

Key = tuple[str, str, str, int]  # (tenant, scope, path, variant)
Group = tuple[str, str, str]  # (tenant, scope, path)
# What a load returns: (absent, payload, not after): `absent` for a 404 (its payload says how
# to raise it again), `not_after` a wall time (ns) past which the value must not be served.
Loaded = tuple[bool, Any, int | None]
# (event, tenant or None for the root namespace): "hit", "miss", "eviction", "stale".
CacheEvents = Callable[[str, str | None], None]

# The backend is unavailable, not refusing: only these let a stale value answer.
STALE_ERRORS: Final = (BackendUnavailableError, BackendTimeoutError, BadGatewayError)
_LABEL: Final = "tenantvault:read-cache"
# Per entry, on top of its sealed bytes: key tuple, entry object, dict and LRU slots.
_OVERHEAD: Final = 256
_NS: Final = 1_000_000_000
# At most this many entries dropped per sweep call: the loop is never held for long.
SWEEP_BATCH: Final = 4096


@dataclass(slots=True)
class _Entry:
    sealed: bytes
    absent: bool
    fresh_until: int  # wall ns: served as fresh before this
    stale_until: int  # wall ns: served on a backend outage before this; dropped after
    size: int


class _Share:
    """One tenant's part of the store: its keys, least recently used first, and its bytes."""

    __slots__ = ("lru", "size")

    def __init__(self) -> None:
        self.lru: OrderedDict[Key, None] = OrderedDict()
        self.size = 0


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Every waiter may have gone (cancelled): read the outcome here so a failed load is not
    # logged as "exception never retrieved" — the waiters that stayed got it.
    if not future.cancelled():
        future.exception()


class SealedStore:
    """Sealed values by key for a bounded time, shared fairly between tenants; see module."""

    def __init__(
        self,
        settings: CacheSettings,
        *,
        clock: Clock,
        events: CacheEvents | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._events = events
        self._random = random
        self._box = AeadKey(random_key())
        self._ttl_ns = int(settings.ttl_seconds * _NS)
        self._negative_ns = int(settings.negative_ttl_seconds * _NS)
        self._stale_ns = int(settings.stale_if_error_seconds * _NS)
        self._tenant_entries = max(1, int(settings.max_entries * settings.tenant_share))
        self._tenant_bytes = max(1, int(settings.max_bytes * settings.tenant_share))
        # In fill order, which is close to expiry order: `sweep` walks it from the front.
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._groups: dict[Group, set[int]] = {}
        self._shares: dict[str, _Share] = {}
        self._heap: list[tuple[int, str]] = []  # (-bytes, tenant); stale items skipped
        # Each flight's outcome is the value's JSON: every waiter decodes its own copy.
        self._flights: dict[Group, dict[int, asyncio.Future[tuple[bool, bytes]]]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.stale_served = 0

    def __repr__(self) -> str:
        # Counts only: values are sealed, and keys name tenants' secret paths.
        return f"SealedStore(entries={len(self._entries)}, bytes={self._bytes})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held (sealed values plus per-entry overhead)."""
        return self._bytes

    def tenant_entries(self, tenant: str) -> int:
        """How many entries `tenant` holds."""
        share = self._shares.get(tenant)
        return 0 if share is None else len(share.lru)

    # -- reading ---------------------------------------------------------------------------

    async def read(self, key: Key, load: Callable[[], Awaitable[Loaded]]) -> tuple[bool, Any, bool]:
        """(absent, payload, stale) for `key`: a fresh entry, else one shared `load`; a
        value past its TTL only if that load fails with one of `STALE_ERRORS`."""
        tenant = key[0]
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.fresh_until:
            self._shares[tenant].lru.move_to_end(key)
            self.hits += 1
            self._count("hit", tenant)
            return entry.absent, self._open(key, entry), False
        self.misses += 1
        self._count("miss", tenant)
        group, variant = key[:3], key[3]
        flights = self._flights.setdefault(group, {})
        future = flights.get(variant)
        if future is None:
            future = asyncio.ensure_future(self._fetch(key, load))
            future.add_done_callback(_retrieve)
            flights[variant] = future
        try:
            absent, encoded = await asyncio.shield(future)
        except STALE_ERRORS:
            entry = self._entries.get(key)
            if entry is None or entry.absent or self._clock() >= entry.stale_until:
                raise
            self.stale_served += 1
            self._count("stale", tenant)
            return False, self._open(key, entry), True
        return absent, orjson.loads(encoded), False

    async def _fetch(self, key: Key, load: Callable[[], Awaitable[Loaded]]) -> tuple[bool, bytes]:
        attached = False
        try:
            absent, payload, not_after = await load()
        finally:
            # Still this key's flight (no `forget` since it started)? Then detach it here.
            group, variant = key[:3], key[3]
            flights = self._flights.get(group)
            if flights is not None and flights.get(variant) is asyncio.current_task():
                attached = True
                del flights[variant]
                if not flights:
                    del self._flights[group]
        encoded = orjson.dumps(payload)
        if attached:
            self._fill(key, absent, encoded, not_after)
        return absent, encoded

    def _open(self, key: Key, entry: _Entry) -> Any:
        return orjson.loads(self._box.open(entry.sealed, self._aad(key)))

    @staticmethod
    def _aad(key: Key) -> bytes:
        tenant, scope, path, variant = key
        return encode_aad(_LABEL, tenant, scope, path, str(variant))

    # -- filling and bounds ----------------------------------------------------------------

    def _fill(self, key: Key, absent: bool, encoded: bytes, not_after: int | None) -> None:
        self._remove(key)
        now = self._clock()
        life = int((self._negative_ns if absent else self._ttl_ns) * self._lifetime_factor())
        fresh = now + life
        stale = fresh if absent else fresh + self._stale_ns
        if not_after is not None:
            fresh, stale = min(fresh, not_after), min(stale, not_after)
        if fresh <= now:
            return
        sealed = self._box.seal(encoded, self._aad(key))
        size = _OVERHEAD + len(key[2]) + len(key[1]) + len(sealed)
        if size > self._tenant_bytes or size * 8 > self._settings.max_bytes:
            return  # too large to keep: it would crowd out a whole share
        tenant = key[0]
        self._entries[key] = _Entry(sealed, absent, fresh, stale, size)
        self._groups.setdefault(key[:3], set()).add(key[3])
        share = self._shares.get(tenant)
        if share is None:
            share = self._shares[tenant] = _Share()
        share.lru[key] = None
        share.size += size
        self._bytes += size
        self._push(tenant, share)
        while len(share.lru) > self._tenant_entries or share.size > self._tenant_bytes:
            self._evict(tenant)
        settings = self._settings
        while len(self._entries) > settings.max_entries or self._bytes > settings.max_bytes:
            self._evict(self._largest())

    def _lifetime_factor(self) -> float:
        return 1.0 - self._settings.jitter * self._random()

    def _evict(self, tenant: str) -> None:
        share = self._shares[tenant]
        self._remove(next(iter(share.lru)))
        self.evictions += 1
        self._count("eviction", tenant)

    def _largest(self) -> str:
        """The tenant holding the most bytes (the heap's first item that is current)."""
        while True:
            negative, tenant = self._heap[0]
            share = self._shares.get(tenant)
            if share is not None and share.size == -negative:
                return tenant
            heapq.heappop(self._heap)

    def _push(self, tenant: str, share: _Share) -> None:
        heapq.heappush(self._heap, (-share.size, tenant))
        if len(self._heap) > 4 * len(self._shares) + 64:
            # Mostly outdated items: rebuild from the shares (amortized over those pushes).
            self._heap = [(-held.size, name) for name, held in self._shares.items()]
            heapq.heapify(self._heap)

    def _remove(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        group = key[:3]
        variants = self._groups[group]
        variants.discard(key[3])
        if not variants:
            del self._groups[group]
        tenant = key[0]
        share = self._shares[tenant]
        del share.lru[key]
        share.size -= entry.size
        self._bytes -= entry.size
        if share.lru:
            self._push(tenant, share)
        else:
            del self._shares[tenant]

    # -- forgetting ------------------------------------------------------------------------

    def forget(self, group: Group) -> None:
        """`group` is changing (or changed): drop its entries and detach its loads."""
        self._flights.pop(group, None)
        for variant in list(self._groups.get(group, ())):
            self._remove((*group, variant))

    def forget_scope(self, tenant: str, scope: str) -> None:
        """Everything of one scope of `tenant` (a mount's settings changed)."""
        for group in [group for group in self._flights if group[:2] == (tenant, scope)]:
            del self._flights[group]
        share = self._shares.get(tenant)
        if share is not None:
            for key in [key for key in share.lru if key[1] == scope]:
                self._remove(key)

    def forget_tenant(self, tenant: str) -> None:
        """Everything of `tenant` (its mount table changed, or it is being deleted)."""
        for group in [group for group in self._flights if group[0] == tenant]:
            del self._flights[group]
        share = self._shares.get(tenant)
        if share is not None:
            for key in list(share.lru):
                self._remove(key)

    def sweep(self) -> int:
        """Drop entries past their last use (fresh and stale window), oldest fill first; at
        most a batch per call. Returns how many went."""
        now = self._clock()
        dropped = 0
        while self._entries and dropped < SWEEP_BATCH:
            key, entry = next(iter(self._entries.items()))
            if entry.stale_until > now:
                break
            self._remove(key)
            dropped += 1
        return dropped

    def clear(self) -> None:
        """Drop everything (closing)."""
        self._flights.clear()
        self._entries.clear()
        self._groups.clear()
        self._shares.clear()
        self._heap.clear()
        self._bytes = 0

    def _count(self, event: str, tenant: str) -> None:
        if self._events is not None:
            self._events(event, None if tenant == SYSTEM_TENANT else tenant)
