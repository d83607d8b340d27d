"""A bounded, per-process read cache of sealed upstream records, with a short TTL.

Gateway mode reads tenantvault's own records (token, mount table, policies) on every
request; each read is an upstream round trip. This cache keeps what an upstream read
returned — the record's epoch, KV version and *sealed* bytes, or its absence — for at most
`ttl_seconds` (default `RECORD_CACHE_SECONDS`, 1 s) counted from when the upstream read
began, so a change made through another instance is seen here within that bound. Values
stay sealed (AES-GCM under the tenant's data key) and live only in memory; `read` opens
them on every hit. `peek` tells a fresh entry's revision without opening it (the backend's
`committed_revision`): the token store, the policy store and the mount table then reuse
their decoding of that revision, within the same staleness bound.

**This instance's own changes are immediate.** A writer calls `forget` before it changes a
key and `store` once the upstream acknowledged it. Every `forget`/`store` takes a fresh
stamp from one counter; a read that missed took a `ticket` (the counter's value) before
asking the upstream, and its result is kept only if nothing newer was stamped on the key
since (`fill`). So a slow read that started before a write can never put the old value
back after it. An entry dropped to keep the bounds raises `_floor`, which later fills of
older tickets must clear too, because the dropped entry's stamp is forgotten with it.

**Single flight.** Concurrent misses on one key share one upstream read (`flight`); a
`forget` detaches the key's flight, so a read that starts after a change never joins a
read that started before it.

Bounded by entry count and by sealed bytes (least recently used out first); a value larger
than an eighth of the byte budget is never kept.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

__all__ = ["RECORD_CACHE_SECONDS", "RecordCache"]

# The documented bound on cross-instance staleness (revocation, policy and mount changes).
RECORD_CACHE_SECONDS: Final = 1.0
DEFAULT_MAX_ENTRIES: Final = 65536
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
# Per entry, on top of its sealed bytes: key, entry object, dict slot (an estimate).
_OVERHEAD: Final = 200

_V = TypeVar("_V")


@dataclass(slots=True)
class _Entry(Generic[_V]):
    value: _V | None  # None: the record is absent upstream
    expires: float  # clock time after which the entry is not used (forgotten: -inf)
    stamp: int
    size: int


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Every waiter may have been cancelled: the outcome is read here so that a failed
    # upstream read is not logged as "exception never retrieved" (the waiters got it).
    if not future.cancelled():
        future.exception()


class RecordCache(Generic[_V]):
    """Path -> latest upstream value (or absence) for at most `ttl_seconds`; see module doc.

    `size_of` gives a value's size in bytes (its sealed form); `clock` is monotonic seconds.
    """

    def __init__(
        self,
        *,
        size_of: Callable[[_V], int],
        ttl_seconds: float = RECORD_CACHE_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float],
    ) -> None:
        if not 0 <= ttl_seconds <= RECORD_CACHE_SECONDS:
            # Above 1 s the documented revocation bound would no longer hold.
            raise ValueError(f"the record cache TTL must be within 0..{RECORD_CACHE_SECONDS} s")
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the record cache bounds must be positive")
        self._size_of = size_of
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[_V]] = OrderedDict()
        self._bytes = 0
        self._counter = 0
        self._floor = 0
        self._flights: dict[str, asyncio.Future[_V | None]] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __repr__(self) -> str:
        # Counts only: the entries are sealed, but their keys name tokens' hashes.
        return f"RecordCache(entries={len(self._entries)}, bytes={self._bytes})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held (sealed values plus per-entry overhead)."""
        return self._bytes

    @property
    def enabled(self) -> bool:
        """False with a TTL of 0: every read goes upstream."""
        return self._ttl > 0

    def lookup(self, key: str) -> tuple[bool, _V | None]:
        """(True, value or None for absent) on a fresh hit; (False, None) on a miss."""
        found = self.peek(key)
        if not found[0]:
            self.misses += 1
        return found

    def peek(self, key: str) -> tuple[bool, _V | None]:
        """`lookup` without counting a miss: a caller that reads through `flight` after a
        miss here would otherwise count one miss twice."""
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry.expires:
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, entry.value

    def ticket(self) -> tuple[int, float]:
        """Taken before an upstream read: (stamp, time) for `fill`."""
        return self._counter, self._clock()

    def fill(self, key: str, value: _V | None, ticket: tuple[int, float]) -> None:
        """Keep what an upstream read started at `ticket` returned, unless it is outdated."""
        stamp, started = ticket
        entry = self._entries.get(key)
        if stamp < (self._floor if entry is None else entry.stamp):
            return  # a change through this instance (or a dropped one) is newer
        self._put(key, value, expires=started + self._ttl, stamp=stamp)

    def store(self, key: str, value: _V | None) -> None:
        """This instance changed `key` to `value` (None: deleted) and the upstream agreed."""
        self._counter += 1
        self._flights.pop(key, None)
        self._put(key, value, expires=self._clock() + self._ttl, stamp=self._counter)

    def forget(self, key: str) -> None:
        """`key` is being changed, or may be stale (a lost check-and-set): read it again."""
        self._counter += 1
        self._flights.pop(key, None)
        # A marker, not a removal: it carries the stamp that turns away older fills.
        self._put(key, None, expires=float("-inf"), stamp=self._counter, force=True)

    async def flight(self, key: str, read: Callable[[], Awaitable[_V | None]]) -> _V | None:
        """The value at `key`: from the cache, or from one upstream `read` shared by all."""
        hit, value = self.lookup(key)
        if hit:
            return value
        future = self._flights.get(key)
        if future is None:
            # The ticket now, before any change that a caller arriving later may follow.
            future = asyncio.ensure_future(self._fetch(key, read, self.ticket()))
            future.add_done_callback(_retrieve)
            self._flights[key] = future
        # Shielded: one caller cancelled does not cancel the read the others wait for.
        return await asyncio.shield(future)

    async def _fetch(
        self, key: str, read: Callable[[], Awaitable[_V | None]], ticket: tuple[int, float]
    ) -> _V | None:
        try:
            value = await read()
        finally:
            if self._flights.get(key) is asyncio.current_task():
                del self._flights[key]
        self.fill(key, value, ticket)
        return value

    def clear(self) -> None:
        """Drop everything (closing)."""
        self._counter += 1
        self._floor = self._counter
        self._entries.clear()
        self._flights.clear()
        self._bytes = 0

    def _put(
        self, key: str, value: _V | None, *, expires: float, stamp: int, force: bool = False
    ) -> None:
        size = _OVERHEAD + len(key) + (0 if value is None else self._size_of(value))
        if size * 8 > self._max_bytes and not force:
            # Too large to keep; what was there must not stay either.
            value, expires = None, float("-inf")
            size = _OVERHEAD + len(key)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = _Entry(value, expires, stamp, size)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.size
            self._floor = max(self._floor, dropped.stamp)
            self.evictions += 1
