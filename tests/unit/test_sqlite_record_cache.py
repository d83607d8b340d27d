"""The embedded store's record cache: hot reads skip the SQLite thread and are never stale.

"Served without a hop" is checked by driving the `read` coroutine by hand: a read that needs
the worker thread suspends on its first step, one from the cache returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from tenantvault._exceptions import (
    BackendUnavailableError,
    ClosedError,
    ConflictError,
    NotFoundError,
)
from tenantvault.backends._protocol import Record
from tenantvault.backends._record_cache import MISS, RecordCache, SealedRecord
from tenantvault.backends._sqlite import DB_FILENAME, SqliteBackend
from tenantvault.crypto import AeadKey, encode_aad, random_key

SECRET = b"CANARY-cached-plaintext-5d1e"


def without_a_hop(read: Coroutine[Any, Any, Record | None]) -> Record | None:
    """The result of `read` if it completes without suspending; fails the test otherwise."""
    try:
        read.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    read.close()
    raise AssertionError("the read went to the worker thread")


def needs_a_hop(read: Coroutine[Any, Any, Record | None]) -> bool:
    """Whether `read` suspends (goes to the worker thread) on its first step."""
    try:
        read.send(None)
    except StopIteration:
        return False
    except BaseException:  # noqa: BLE001 -- an error raised at once did not hop either
        return False
    read.close()
    return True


async def test_a_record_read_once_is_served_without_a_hop(acme: SqliteBackend) -> None:
    revision = await acme.write("acme", "secret", "k", SECRET, expected_revision=0)
    assert needs_a_hop(acme.read("acme", "secret", "k"))  # not read yet: written only
    first = await acme.read("acme", "secret", "k")
    assert first == Record(SECRET, revision)
    assert without_a_hop(acme.read("acme", "secret", "k")) == first


async def test_an_absent_record_is_remembered_as_absent(acme: SqliteBackend) -> None:
    assert await acme.read("acme", "secret", "missing") is None
    assert without_a_hop(acme.read("acme", "secret", "missing")) is None
    revision = await acme.write("acme", "secret", "missing", SECRET, expected_revision=0)
    assert without_a_hop(acme.read("acme", "secret", "missing")) == Record(SECRET, revision)


async def test_writes_and_deletes_go_through_the_cache(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", b"one", expected_revision=0)
    await acme.read("acme", "secret", "k")
    revision = await acme.write("acme", "secret", "k", b"two", expected_revision=None)
    assert without_a_hop(acme.read("acme", "secret", "k")) == Record(b"two", revision)
    assert await acme.delete("acme", "secret", "k", expected_revision=revision)
    assert without_a_hop(acme.read("acme", "secret", "k")) is None


async def test_a_failed_check_and_set_leaves_the_cached_record(acme: SqliteBackend) -> None:
    revision = await acme.write("acme", "secret", "k", b"one", expected_revision=0)
    await acme.read("acme", "secret", "k")
    with pytest.raises(ConflictError):
        await acme.write("acme", "secret", "k", b"two", expected_revision=revision + 100)
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=revision + 100)
    assert without_a_hop(acme.read("acme", "secret", "k")) == Record(b"one", revision)


async def test_a_failed_commit_never_leaves_the_cache_ahead_of_the_database(
    acme: SqliteBackend,
) -> None:
    revision = await acme.write("acme", "secret", "k", b"small", expected_revision=0)
    await acme.read("acme", "secret", "k")
    await acme._call(
        lambda conn: conn.execute(
            "PRAGMA max_page_count = " + str(conn.execute("PRAGMA page_count").fetchone()[0])
        )
    )
    big = SECRET * 20_000
    with pytest.raises(BackendUnavailableError, match="storage full"):
        await acme.write("acme", "secret", "k", big, expected_revision=revision)
    found = await acme.read("acme", "secret", "k")
    assert found == Record(b"small", revision)


async def test_writes_in_one_group_commit_leave_the_last_one_cached(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", b"0", expected_revision=0)
    await acme.read("acme", "secret", "k")
    # Queued together: they commit as one group, in submission order.
    revisions = await asyncio.gather(
        *(acme.write("acme", "secret", "k", b"%d" % i, expected_revision=None) for i in range(20))
    )
    assert revisions == sorted(revisions)
    assert without_a_hop(acme.read("acme", "secret", "k")) == Record(b"19", revisions[-1])


async def test_a_read_after_each_write_sees_it_under_concurrent_reads(
    acme: SqliteBackend,
) -> None:
    """Readers racing a writer: once a write has returned, no read returns anything older,
    and each reader sees revisions only go up."""
    await acme.write("acme", "secret", "k", b"start", expected_revision=0)
    done = asyncio.Event()
    committed = 0

    async def reader() -> None:
        seen = 0
        while not done.is_set():
            floor = committed
            record = await acme.read("acme", "secret", "k")
            assert record is not None
            assert record.revision >= max(seen, floor)
            seen = record.revision
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    for i in range(100):
        revision = await acme.write("acme", "secret", "k", b"%d" % i, expected_revision=None)
        committed = revision
        record = await acme.read("acme", "secret", "k")
        assert record == Record(b"%d" % i, revision)
    done.set()
    await asyncio.gather(*readers)


async def test_a_deleted_tenant_is_not_found_even_for_cached_keys(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", SECRET, expected_revision=0)
    await acme.read("acme", "secret", "k")
    await acme.read("acme", "secret", "missing")
    await acme.delete_tenant("acme")
    with pytest.raises(NotFoundError):
        await acme.read("acme", "secret", "k")
    with pytest.raises(NotFoundError):
        await acme.read("acme", "secret", "missing")
    await acme.create_tenant("acme")
    assert await acme.read("acme", "secret", "k") is None


async def test_a_closed_store_refuses_cached_reads(tmp_path: Path) -> None:
    backend = await SqliteBackend.open(tmp_path / "data")
    await backend.write("_system", "sys", "k", SECRET, expected_revision=0)
    await backend.read("_system", "sys", "k")
    await backend.aclose()
    assert len(backend._cache) == 0  # no plaintext kept after close
    with pytest.raises(ClosedError):
        await backend.read("_system", "sys", "k")


async def test_a_reopened_store_reads_from_disk_again(tmp_path: Path) -> None:
    """The cache lives with one open store: an edit made while it was closed is seen (here,
    by the tamper check) by the next one."""
    data_dir = tmp_path / "data"
    async with await SqliteBackend.open(data_dir) as backend:
        await backend.create_tenant("acme")
        await backend.write("acme", "secret", "k", SECRET, expected_revision=0)
        await backend.read("acme", "secret", "k")
    with contextlib.closing(sqlite3.connect(data_dir / DB_FILENAME)) as conn, conn:
        conn.execute("DELETE FROM records WHERE key = 'k'")
    async with await SqliteBackend.open(data_dir) as backend:
        assert await backend.read("acme", "secret", "k") is None


# -- the cache itself --------------------------------------------------------------------------

_KEY = AeadKey(random_key())


def sealed(value: bytes, revision: int) -> SealedRecord:
    aad = encode_aad("test", str(revision))
    return SealedRecord(revision, _KEY.seal(value, aad), _KEY, aad)


def opened(found: object) -> object:
    return found.open() if isinstance(found, SealedRecord) else found


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = RecordCache(max_entries=2, max_bytes=1 << 20, max_value_bytes=1024)
    cache.put(("t", "m", "a"), sealed(b"a", 1))
    cache.put(("t", "m", "b"), sealed(b"b", 2))
    assert opened(cache.get(("t", "m", "a"))) == Record(b"a", 1)  # now b is the oldest
    cache.put(("t", "m", "c"), None)
    assert cache.get(("t", "m", "b")) is MISS
    assert opened(cache.get(("t", "m", "a"))) == Record(b"a", 1)
    assert cache.get(("t", "m", "c")) is None


def test_the_byte_bound_holds_and_large_values_are_not_kept() -> None:
    cache = RecordCache(max_entries=1000, max_bytes=4096, max_value_bytes=1024)
    cache.put(("t", "m", "big"), sealed(b"x" * 1025, 1))
    assert cache.get(("t", "m", "big")) is MISS
    for i in range(100):
        cache.put(("t", "m", f"k{i}"), sealed(b"x" * 900, i))
    assert 0 < len(cache) <= 4
    assert opened(cache.get(("t", "m", "k99"))) == Record(b"x" * 900, 99)


def test_update_changes_only_keys_already_cached() -> None:
    cache = RecordCache(max_entries=10, max_bytes=1 << 20, max_value_bytes=1024)
    cache.update(("t", "m", "written-only"), sealed(b"v", 1))
    assert cache.get(("t", "m", "written-only")) is MISS
    cache.put(("t", "m", "read"), None)
    cache.update(("t", "m", "read"), sealed(b"v", 2))
    assert opened(cache.get(("t", "m", "read"))) == Record(b"v", 2)


def test_drop_tenant_forgets_only_that_tenant() -> None:
    cache = RecordCache(max_entries=10, max_bytes=1 << 20, max_value_bytes=1024)
    cache.put(("acme", "m", "k"), sealed(b"a", 1))
    cache.put(("acme-2", "m", "k"), sealed(b"b", 2))
    cache.drop_tenant("acme")
    assert cache.get(("acme", "m", "k")) is MISS
    assert opened(cache.get(("acme-2", "m", "k"))) == Record(b"b", 2)


def test_the_reprs_show_no_key_and_no_value() -> None:
    cache = RecordCache(max_entries=10, max_bytes=1 << 20, max_value_bytes=1024)
    entry = sealed(SECRET, 1)
    cache.put(("acme", "auth", "token/deadbeef"), entry)
    for text in (repr(cache), repr(entry)):
        assert "deadbeef" not in text
        assert SECRET.decode() not in text
        assert entry.sealed.hex() not in text


async def test_the_cache_holds_no_clear_text(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "k", SECRET, expected_revision=0)
    record = await acme.read("acme", "secret", "k")
    assert record is not None
    assert record.value == SECRET
    entry = acme._cache.get(("acme", "secret", "k"))
    assert isinstance(entry, SealedRecord)
    assert SECRET not in entry.sealed
    assert SECRET not in entry.associated_data
