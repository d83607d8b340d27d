"""The audit store is partitioned by tenant incarnation (issue 9: "storage partitioned by tenant
for ... audit records"), and a store of the single-table layout is migrated when it opens.

Each incarnation's entries live in a table of their own; entries of no tenant in the root
partition. The migration keeps every row (ids and sealed bytes), is atomic (a crash part way
leaves the old layout, which migrates on the next open) and the chain goes on across it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import Operation
from tenantvault.audit import StoreSink, verify_lines
from tenantvault.audit._chain import ChainState, seal_entry
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._partitions import WAL_CHECKPOINT_PAGES, AuditDatabase
from tenantvault.audit._query import EventQuery, run_query
from tenantvault.audit._redact import Redactor
from tenantvault.testing import core_of
from tests.audit._layouts import OLD_INDEXES, OLD_TABLE, catalog, store_rows

SALT = b"s" * 32
# (tenant, incarnation) of the old store's rows: two tenants, a tenant's rows from before
# incarnation ids, and root's own (no tenant).
OWNERS = [("acme", "uid-acme"), ("beta", "uid-beta"), ("acme", ""), (None, "")]


def _entries(count: int, *, padding: int = 0) -> Iterator[tuple[tuple[str | None, str], bytes]]:
    """Sealed request/response entries of every owner in turn, chained as one sink's."""
    redactor = Redactor(SALT)
    state = ChainState()
    for n in range(count):
        tenant, uid = OWNERS[n % len(OWNERS)]
        for kind in ("request", "response"):
            event = AuditEvent(
                type=kind,
                time_ns=1_700_000_000_000_000_000 + n,
                request_id=f"req-{n}",
                operation="read",
                tenant=tenant,
                tenant_uid=uid,
                mount="secret",
                path=f"secret/data/k{n}",
                remote_address="127.0.0.1",
                status=200 if kind == "response" else 0,
                request_data={"pad": "x" * padding} if padding else None,
            )
            yield (tenant, uid), seal_entry(state, event.render(redactor))


def _old_store(path: Path, count: int, *, with_uid: bool = True, padding: int = 0) -> int:
    """An audit.db in the single-table layout with `count` requests; returns its row count."""
    rows = 0
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(OLD_TABLE)
        for statement in OLD_INDEXES:
            conn.execute(statement)
        for (tenant, uid), line in _entries(count, padding=padding):
            entry = orjson.loads(line)
            response = entry.get("response") or {}
            conn.execute(
                "INSERT INTO events (seq, time_ns, type, request_id, tenant, operation, mount,"
                " path, outcome, status, accessor, entry, tenant_uid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry["seq"],
                    entry["time_ns"],
                    entry["type"],
                    entry["request"]["id"],
                    tenant or "",
                    "read",
                    "secret",
                    entry["request"]["path"],
                    response.get("outcome", ""),
                    response.get("status", 0),
                    "",
                    line.rstrip(b"\n"),
                    uid,
                ),
            )
            rows += 1
        if not with_uid:
            conn.execute("DROP INDEX events_tenant_uid_time")
            conn.execute("ALTER TABLE events DROP COLUMN tenant_uid")
    conn.close()
    return rows


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    return names


def _old_rows(path: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(path) as conn:
        rows = [(int(i), bytes(e)) for i, e in conn.execute("SELECT id, entry FROM events")]
    conn.close()
    return rows


def _partition_rows(sink: StoreSink, number: int) -> list[tuple[int, bytes]]:
    rows = sink.query(f"SELECT id, entry FROM events_{number} ORDER BY id", ())  # noqa: S608 -- an integer
    return [(int(i), bytes(e)) for i, e in rows]


def _all_rows(sink: StoreSink) -> list[tuple[int, bytes]]:
    return [(int(i), bytes(e)) for i, e in store_rows(sink)]


def _requests(tenants: list[str]) -> list[bytes]:
    """Sealed request entries, one per item of `tenants` (whose entry it is), chained."""
    redactor = Redactor(SALT)
    state = ChainState()
    return [
        seal_entry(
            state,
            AuditEvent(
                type="request",
                time_ns=n,
                request_id=f"req-{n}",
                operation="read",
                tenant=tenant,
                tenant_uid=f"uid-{tenant}",
                mount="secret",
                path=f"secret/data/k{n}",
                remote_address=None,
            ).render(redactor),
        )
        for n, tenant in enumerate(tenants)
    ]


@pytest.mark.parametrize("with_uid", [True, False], ids=["single-table", "before-uids"])
async def test_a_single_table_store_is_migrated_row_for_row(tmp_path: Path, with_uid: bool) -> None:
    db = tmp_path / "audit.db"
    total = _old_store(db, 20, with_uid=with_uid)
    before = _old_rows(db)

    sink = StoreSink("store", db, salt=SALT)
    try:
        assert "events" not in _tables(db)
        partitions = catalog(sink)
        expected = {("", ""), ("acme", ""), ("beta", "")}
        if with_uid:
            expected = {("", ""), ("acme", "uid-acme"), ("beta", "uid-beta"), ("acme", "")}
        assert set(partitions) == expected
        assert partitions[("", "")] == 0  # the root partition
        # Every row, with its id (cursors stay valid) and its sealed bytes (the chain verifies).
        assert _all_rows(sink) == sorted(before)
        assert len(before) == total
        for (tenant, uid), number in partitions.items():
            for _, entry in _partition_rows(sink, number):
                request = orjson.loads(entry)["request"]
                assert request["tenant"] == tenant
                assert (request["namespace"]["id"] if with_uid else "") == uid
        # The chain goes on from the migrated store's head.
        await sink.checkpoint("after-migration")
    finally:
        await sink.aclose()

    reopened = StoreSink("store", db, salt=SALT)  # opens as it is: nothing to migrate again
    try:
        rows = _all_rows(reopened)
        assert [i for i, _ in rows] == list(range(1, total + 3))
        report = verify_lines(entry for _, entry in rows)
        assert report.ok, report.describe()
        assert report.entries == total + 2  # the checkpoint and the close checkpoint
    finally:
        await reopened.aclose()


_CRASH = """
import os, sys
from pathlib import Path
import tenantvault.audit._migrate as migrate
import tenantvault.audit._partitions as partitions
from tenantvault.audit import StoreSink

point = sys.argv[2]
real_create, real_migrate = migrate.create_partition, migrate.migrate_single_table
created = []

def create_then_crash(conn, *args):
    created.append(args)
    if len(created) == 2:  # one tenant's rows already copied, the next partition made
        os._exit(17)
    return real_create(conn, *args)

def migrate_then_crash(conn):
    conn.execute("PRAGMA cache_size = 2")  # spill: the uncommitted pages reach the WAL file
    real_migrate(conn)
    os._exit(17)  # everything done, the old table dropped, nothing committed

if point == "mid-copy":
    migrate.create_partition = create_then_crash
else:
    partitions.migrate_single_table = migrate_then_crash
StoreSink("store", Path(sys.argv[1]), salt=b"s" * 32)
"""


@pytest.mark.parametrize("point", ["mid-copy", "before-commit"])
async def test_a_crash_mid_migration_leaves_a_store_that_migrates_again(
    tmp_path: Path, point: str
) -> None:
    db = tmp_path / "audit.db"
    _old_store(db, 40, padding=2000)  # large enough that the migration spills to the WAL
    before = _old_rows(db)

    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASH, str(db), point, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await crashed.communicate()
    assert crashed.returncode == 17, stderr.decode()
    if point == "before-commit":
        wal = db.with_name(db.name + "-wal")
        assert wal.stat().st_size > 0  # the migration had written, uncommitted, when it died
    # The old layout, whole: the crash took nothing with it.
    assert "events" in _tables(db)
    assert "audit_partitions" not in _tables(db)
    assert _old_rows(db) == before

    sink = StoreSink("store", db, salt=SALT)
    try:
        assert _all_rows(sink) == sorted(before)
        assert "events" not in _tables(db)
    finally:
        await sink.aclose()


AUDITOR = 'path "sys/audit/events" { capabilities = ["read"] }'


async def _events(tv: tenantvault.TenantVault, **params: Any) -> list[dict[str, Any]]:
    """Every page of `sys/audit/events`, checking the cursor moves forward without repeats."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await tv.request(
            Operation.READ, "sys/audit/events", {**params, "after": after, "limit": 7}
        )
        data = response.data or {}
        events.extend(data["events"])
        if data["next"] is None:
            return events
        assert data["next"] > after
        after = data["next"]


async def test_each_incarnation_writes_to_its_own_partition(tv: tenantvault.TenantVault) -> None:
    await tv.request(Operation.UPDATE, "sys/audit/store", {"type": "store", "options": {}})
    tokens = {}
    for tenant in ("acme", "beta"):
        await tv.create_tenant(tenant)
        await tv.tenant(tenant).policies.write("auditor", AUDITOR)
        tokens[tenant] = (await tv.tenant(tenant).tokens.create(policies=["auditor"])).token
        await tv.tenant(tenant).kv.put(f"{tenant}-secret", {"v": 1})
    core = core_of(tv)
    sink = core.audit_broker.store()
    assert isinstance(sink, StoreSink)
    partitions = catalog(sink)
    uids = {tenant: await core.tenants.uid(tenant) for tenant in tokens}
    assert set(partitions) == {("", ""), ("acme", uids["acme"]), ("beta", uids["beta"])}
    for (tenant, _), number in partitions.items():
        seen = {
            orjson.loads(entry)["request"]["tenant"] for _, entry in _partition_rows(sink, number)
        }
        assert seen == {tenant}
    # A tenant's query reads its partition; root's pages run over all of them, in id order.
    acme = await _events(tv.with_token(tokens["acme"]))
    assert {e["request"]["tenant"] for e in acme} == {"acme"}
    everything = await _events(tv)
    ids = [e["seq"] for e in everything]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {e["request"]["tenant"] for e in everything} == {"", "acme", "beta"}
    assert len(everything) == len(_all_rows(sink)) - 1  # all but this page's response entry


async def test_a_page_over_many_partitions_is_the_page_of_all_their_entries() -> None:
    """Root's pages merge the partitions (reading only those that can hold the page's ids):
    every page, from any cursor, is what one table ordered by id would give."""
    redactor = Redactor(SALT)
    # Interleaved tenants, then long runs of one tenant, then stragglers.
    owners = [n % 30 for n in range(90)] + [n // 20 for n in range(200)] + [29, 3, 29, 7]
    lines = _requests([f"t{owner}" for owner in owners])
    database = AuditDatabase(None)
    try:
        for start in range(0, len(lines), 13):
            database.append(lines[start : start + 13])
        partitions = database.select(None, None, redactor=redactor)
        assert len(partitions) == 31  # 30 tenants and root's (empty)
        every = list(range(1, len(lines) + 1))
        for after in (0, 1, 29, 30, 89, 90, 150, 289, 290, 293, 294):
            for limit in (1, 7, 50, 1000):
                events, cursor = await run_query(
                    partitions, EventQuery(after_id=after, limit=limit)
                )
                expected = [i for i in every if i > after][:limit]
                assert [e["seq"] for e in events] == expected, (after, limit)
                more = len([i for i in every if i > after]) > limit
                assert cursor == (expected[-1] if more else None), (after, limit)
    finally:
        database.close()


async def test_two_writers_of_one_file_take_up_each_others_rows(tmp_path: Path) -> None:
    """Two sinks pointed at one file (one process here; two processes alike) neither collide
    on row ids nor on partitions: each takes up what the other wrote before its batch."""
    db = tmp_path / "audit.db"
    first = AuditDatabase(db)
    second = AuditDatabase(db)
    try:
        lines = [line for _, line in _entries(12)]
        for n, line in enumerate(lines):
            (first if n % 3 else second).append([line])
        # The same incarnation's partition, whichever writer created it first.
        assert catalog(first._conn) == catalog(second._conn)
        rows = first.query(
            " UNION ALL ".join(f"SELECT id, entry FROM events_{n}" for n in range(4)),  # noqa: S608
            (),
        )
        assert sorted(int(i) for i, _ in rows) == list(range(1, len(lines) + 1))
        assert {bytes(e) for _, e in rows} == {line.rstrip(b"\n") for line in lines}
    finally:
        first.close()
        second.close()


def test_the_wal_is_checkpointed_in_small_steps(tmp_path: Path) -> None:
    """No commit carries a large checkpoint: the WAL is folded back every
    `WAL_CHECKPOINT_PAGES` pages, not at SQLite's default of 1,000 (a 40-110 ms commit under
    load), so the WAL file never holds much more than that many pages plus one batch."""
    db = tmp_path / "audit.db"
    database = AuditDatabase(db)
    try:
        page_size = int(database.query("PRAGMA page_size", ())[0][0])
        bound = (WAL_CHECKPOINT_PAGES + 40) * (page_size + 24)  # + one batch, frame headers
        lines = [line for _, line in _entries(4000, padding=300)]
        largest = 0
        for start in range(0, len(lines), 20):  # 20 entries a batch, ~5.5 MB in all
            database.append(lines[start : start + 20])
            largest = max(largest, (tmp_path / "audit.db-wal").stat().st_size)
        # Well past the default's WAL: at 1,000 pages the file would pass `bound` long before.
        assert sum(len(line) for line in lines) > 1000 * page_size
        assert largest <= bound
    finally:
        database.close()


@pytest.mark.parametrize("size", [1, 3, 4, 17, 64, 85, 150])
def test_a_batch_goes_in_a_few_statements_row_for_row(tmp_path: Path, size: int) -> None:
    """Every row of a batch lands, in chain order and with its sealed bytes, whatever the
    batch's size; and in a few multi-row INSERTs, not one statement per row (each statement
    is a GIL hand-off of the writer thread, see `_CHUNKS`)."""
    lines = _requests(["acme"] * size)
    database = AuditDatabase(tmp_path / "audit.db")
    statements: list[str] = []
    database._conn.set_trace_callback(statements.append)
    try:
        database.append(lines)
        inserts = [s for s in statements if s.startswith("INSERT INTO events_1 ")]
        # One 64-row statement per 64 rows, then one per bit of the rest.
        assert len(inserts) == size // 64 + (size % 64).bit_count()
        rows = database.query("SELECT id, seq, entry FROM events_1 ORDER BY id", ())
        assert [int(i) for i, _, _ in rows] == list(range(1, size + 1))
        assert [int(seq) for _, seq, _ in rows] == list(range(1, size + 1))
        assert [bytes(e) for _, _, e in rows] == [line.rstrip(b"\n") for line in lines]
    finally:
        database.close()
