"""The embedded store's group commit: what a write costs the worker, and what stays exact.

A write is one statement in the group's transaction (check-and-set and upsert at once), its
value sealed on the loop when the tenant's key is loaded; the revision counter lives in memory
and is stored once per group; `write_all` writes several keys all or none; a KV v2 write puts
its version data and metadata in one transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

import tenantvault
from tenantvault._exceptions import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
)
from tenantvault.backends._protocol import Record
from tenantvault.backends._sqlite import SqliteBackend
from tenantvault.crypto import AeadKey
from tenantvault.testing import core_of


async def _trace(backend: SqliteBackend) -> list[str]:
    """Every statement the worker runs from now on (SQLite's trace callback, on the worker)."""
    statements: list[str] = []
    await backend._call(lambda conn: conn.set_trace_callback(statements.append))
    return statements


async def _fill_the_disk(backend: SqliteBackend) -> None:
    await backend._call(
        lambda conn: conn.execute(
            "PRAGMA max_page_count = " + str(conn.execute("PRAGMA page_count").fetchone()[0])
        )
    )


async def test_a_write_is_one_statement_of_its_group(acme: SqliteBackend) -> None:
    await acme.write("acme", "secret", "warm", b"v", expected_revision=None)  # key loaded
    statements = await _trace(acme)
    await asyncio.gather(
        acme.write("acme", "secret", "a", b"1", expected_revision=None),
        acme.write("acme", "secret", "b", b"2", expected_revision=0),
    )
    # One statement per write, one store of the revision counter per group (the two writes
    # may or may not share one); no savepoint, no tenant lookup, no revision read.
    commits = statements.count("COMMIT")
    assert commits in (1, 2)
    records = [s for s in statements if s.startswith("INSERT INTO records")]
    counter = [s for s in statements if s.startswith("INSERT INTO meta")]
    assert len(records) == 2
    assert len(counter) == commits
    assert len(statements) == len(records) + len(counter) + 2 * commits  # + BEGIN, COMMIT


async def test_each_check_and_set_form_is_exact(acme: SqliteBackend) -> None:
    first = await acme.write("acme", "secret", "k", b"one", expected_revision=0)
    with pytest.raises(ConflictError):
        await acme.write("acme", "secret", "k", b"two", expected_revision=0)
    with pytest.raises(ConflictError):
        await acme.write("acme", "secret", "k", b"two", expected_revision=first + 1)
    with pytest.raises(ConflictError):
        await acme.write("acme", "secret", "absent", b"x", expected_revision=first)
    second = await acme.write("acme", "secret", "k", b"two", expected_revision=first)
    assert second > first
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=first)
    with pytest.raises(ConflictError):
        await acme.delete("acme", "secret", "k", expected_revision=0)
    assert await acme.delete("acme", "secret", "absent", expected_revision=0) is False
    assert await acme.delete("acme", "secret", "k", expected_revision=second) is True
    assert await acme.read("acme", "secret", "k") is None
    assert await acme.read("acme", "secret", "absent") is None


async def test_revisions_never_repeat_across_a_failed_group_and_a_reopen(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with await SqliteBackend.open(data_dir) as backend:
        await backend.create_tenant("acme")
        committed = await backend.write("acme", "secret", "k", b"v", expected_revision=None)
        await _fill_the_disk(backend)
        with pytest.raises(BackendUnavailableError, match="storage full"):
            await backend.write("acme", "secret", "big", b"x" * 200_000, expected_revision=None)
        await backend.delete("acme", "secret", "k")
    async with await SqliteBackend.open(data_dir) as reopened:
        again = await reopened.write("acme", "secret", "k", b"w", expected_revision=0)
        # Above every revision handed out before, so a holder of `committed` cannot pass.
        assert again > committed + 1
        with pytest.raises(ConflictError):
            await reopened.write("acme", "secret", "k", b"old", expected_revision=committed)


async def test_a_deleted_tenant_refuses_writes_though_its_key_was_loaded(
    acme: SqliteBackend,
) -> None:
    await acme.write("acme", "secret", "k", b"v", expected_revision=None)
    await acme.delete_tenant("acme")
    with pytest.raises(NotFoundError):
        await acme.write("acme", "secret", "k", b"v", expected_revision=None)
    with pytest.raises(NotFoundError):
        await acme.delete("acme", "secret", "k")


async def test_a_tenant_whose_creation_failed_refuses_writes(
    acme: SqliteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert = acme._insert_tenant

    def insert_then_fail(conn: sqlite3.Connection, tenant: str) -> AeadKey:
        insert(conn, tenant)  # the key is registered, then the creation fails
        raise sqlite3.OperationalError("injected failure")

    monkeypatch.setattr(acme, "_insert_tenant", insert_then_fail)
    with pytest.raises(BackendError):
        await acme.create_tenant("beta")
    monkeypatch.undo()
    assert "beta" not in await acme.list_tenants()
    with pytest.raises(NotFoundError):
        await acme.write("beta", "secret", "k", b"v", expected_revision=None)


async def test_a_value_sealed_under_a_key_the_tenant_no_longer_has_is_sealed_again(
    acme: SqliteBackend,
) -> None:
    await acme.write("acme", "secret", "warm", b"v", expected_revision=None)
    stale = acme._seal_on_loop("acme", "secret", "k", b"value")
    assert stale is not None
    await acme.delete_tenant("acme")
    await acme.create_tenant("acme")  # a new incarnation with a new data key
    revision = await acme._queued_write(
        lambda conn: (lambda done: (done[0], (done[1],)))(
            acme._write_sync(conn, "acme", "secret", "k", b"value", None, stale)
        ),
        (("acme", "secret", "k"),),
    )
    # Readable from disk (not only from the cache): sealed under the tenant's current key.
    acme._cache.clear()
    assert await acme.read("acme", "secret", "k") == Record(b"value", revision)


async def test_write_all_writes_every_key_or_none(acme: SqliteBackend) -> None:
    base = await acme.write("acme", "secret", "meta", b"m0", expected_revision=0)
    with pytest.raises(ConflictError):
        await acme.write_all("acme", "secret", [("data", b"d1", 0), ("meta", b"m1", base + 1000)])
    assert await acme.read("acme", "secret", "data") is None
    acme._cache.clear()
    assert await acme.read("acme", "secret", "data") is None
    assert await acme.read("acme", "secret", "meta") == Record(b"m0", base)
    revisions = await acme.write_all("acme", "secret", [("data", b"d1", 0), ("meta", b"m1", base)])
    assert revisions == sorted(revisions)
    assert revisions[0] > base
    assert await acme.read("acme", "secret", "data") == Record(b"d1", revisions[0])
    acme._cache.clear()
    assert await acme.read("acme", "secret", "meta") == Record(b"m1", revisions[1])


async def test_a_failed_write_all_leaves_the_rest_of_its_group(acme: SqliteBackend) -> None:
    base = await acme.write("acme", "secret", "meta", b"m0", expected_revision=0)
    results = await asyncio.gather(
        acme.write("acme", "secret", "before", b"b", expected_revision=None),
        acme.write_all("acme", "secret", [("data", b"d", 0), ("meta", b"m", base + 1)]),
        acme.write("acme", "secret", "after", b"a", expected_revision=None),
        return_exceptions=True,
    )
    assert isinstance(results[1], ConflictError)
    assert isinstance(results[0], int)
    assert isinstance(results[2], int)
    acme._cache.clear()
    assert await acme.read("acme", "secret", "data") is None
    assert await acme.read("acme", "secret", "before") == Record(b"b", results[0])
    assert await acme.read("acme", "secret", "after") == Record(b"a", results[2])


async def test_a_cancelled_caller_does_not_stop_its_group(acme: SqliteBackend) -> None:
    # Hold the worker so that every write below queues for one flush, the cancelled one
    # in the middle of the group.
    release = threading.Event()
    held = asyncio.ensure_future(acme._call(lambda conn: release.wait(10)))
    await asyncio.sleep(0)
    writes = [
        asyncio.ensure_future(acme.write("acme", "secret", f"k{n}", b"v", expected_revision=None))
        for n in range(5)
    ]
    await asyncio.sleep(0)  # every write queued
    writes[2].cancel()
    release.set()
    assert await held is True
    revisions = await asyncio.gather(*writes[:2], *writes[3:])
    assert len(set(revisions)) == 4
    for n in (0, 1, 3, 4):
        assert await acme.read("acme", "secret", f"k{n}") is not None


async def test_a_kv_write_commits_its_data_and_metadata_together(tmp_path: Path) -> None:
    async with tenantvault.open(f"sqlite://{tmp_path / 'data'}") as tv:
        await tv.create_tenant("acme")
        kv = tv.tenant("acme").kv
        await kv.put("warm", {"n": "0"})
        backend = core_of(tv).backend
        assert isinstance(backend, SqliteBackend)
        statements = await _trace(backend)
        await kv.put("app", {"password": "CANARY-group-commit"})
        assert statements.count("COMMIT") == 1
        assert (await kv.get("app")).data == {"password": "CANARY-group-commit"}
