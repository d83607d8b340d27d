"""The embedded store's exact record cache: hot records served without a hop to the SQLite thread.

Not a freshness cache like the Core's read cache (no TTL, nothing ever stale): it mirrors, for
the keys it holds, what is committed in the database, because the one thread that writes the
database is also the one that changes this cache, right after each commit and before any
writer hears back. Readers on the event loop take an entry under a lock. This is exact only
while this process is the database's sole writer: `SqliteBackend` holds the data directory's
lock (`_lock`) for as long as the store is open.

It holds records as they are stored, sealed under their tenant's data key, and a hit opens
its entry again (a few microseconds): like the Core's read cache, it keeps no clear text, so
a heap dump, a repr or a log line shows none. Bounded by entries and by bytes (least recently
used out first); values larger than `max_value_bytes` are never kept; `clear()` at close
drops every entry and with them the references to the data keys.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal

from tenantvault.backends._protocol import Record
from tenantvault.crypto import AeadKey

__all__ = ["MISS", "CacheKey", "RecordCache", "SealedRecord"]

CacheKey = tuple[str, str, str]


class _Miss(enum.Enum):
    MISS = enum.auto()


# What `get` returns for a key the cache knows nothing about (None means "known absent").
MISS: Final = _Miss.MISS

# Rough per-entry cost beyond the sealed value and its associated data: the key tuple and
# its strings, the entry, the OrderedDict node. Only the bound depends on it.
_ENTRY_OVERHEAD: Final = 240


@dataclass(frozen=True, slots=True, repr=False)
class SealedRecord:
    """A record as stored: its revision, its sealed value and what opens it again."""

    revision: int
    sealed: bytes
    data_key: AeadKey
    associated_data: bytes

    def open(self) -> Record:
        """The record in clear (`IntegrityError` if the entry was changed in memory)."""
        return Record(self.data_key.open(self.sealed, self.associated_data), self.revision)

    def __repr__(self) -> str:
        # The associated data names the key, which can embed a token hash.
        return f"SealedRecord(revision={self.revision}, sealed=<{len(self.sealed)} bytes>)"


def _cost(key: CacheKey, record: SealedRecord | None) -> int:
    size = _ENTRY_OVERHEAD + len(key[0]) + len(key[1]) + len(key[2])
    if record is None:
        return size
    return size + len(record.sealed) + len(record.associated_data)


class RecordCache:
    """(tenant, mount, key) -> SealedRecord, or None for a record known to be absent;
    thread-safe."""

    def __init__(self, *, max_entries: int, max_bytes: int, max_value_bytes: int) -> None:
        self._entries: OrderedDict[CacheKey, SealedRecord | None] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_value_bytes = max_value_bytes

    def __repr__(self) -> str:
        # Keys can embed token hashes and values are plaintext: sizes only.
        return f"RecordCache(entries={len(self._entries)}, bytes={self._bytes})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> SealedRecord | Literal[_Miss.MISS] | None:
        """The cached (sealed) record, None if known absent, or `MISS`."""
        with self._lock:
            found = self._entries.get(key, MISS)
            if found is not MISS:
                self._entries.move_to_end(key)
            return found

    def put(self, key: CacheKey, record: SealedRecord | None) -> None:
        """Remember the committed state of `key` (a record, or None for absent)."""
        with self._lock:
            self._store(key, record)

    def update(self, key: CacheKey, record: SealedRecord | None) -> None:
        """A committed write or delete of `key`: replace the entry if there is one.

        Write-through for the keys being read; a key only ever written (leases, audit
        chain heads, the records of a tenant being created) does not push hot keys out.
        """
        with self._lock:
            if key in self._entries:
                self._store(key, record)

    def discard(self, key: CacheKey) -> None:
        """Forget `key` (its committed state is unknown, e.g. after a failed commit)."""
        with self._lock:
            self._remove(key)

    def drop_tenant(self, tenant: str) -> None:
        """Forget every record of `tenant` (it was deleted: reads must now find no tenant)."""
        with self._lock:
            for key in [key for key in self._entries if key[0] == tenant]:
                self._remove(key)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _store(self, key: CacheKey, record: SealedRecord | None) -> None:
        self._remove(key)
        if record is not None and len(record.sealed) > self._max_value_bytes:
            return
        self._entries[key] = record
        self._bytes += _cost(key, record)
        while self._entries and (
            len(self._entries) > self._max_entries or self._bytes > self._max_bytes
        ):
            oldest, evicted = self._entries.popitem(last=False)
            self._bytes -= _cost(oldest, evicted)

    def _remove(self, key: CacheKey) -> None:
        if key in self._entries:
            self._bytes -= _cost(key, self._entries.pop(key))
