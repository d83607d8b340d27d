"""A store in memory keeps its newest entries only, so memory does not grow with requests served.

Unbounded, `serve --dev` (whose store is in memory) grew by 2.9 MB/s at 1,000 audited reads/s
and a 10-minute soak would have failed issue 16's RSS bound; on disk every entry is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantvault import InvalidRequestError
from tenantvault.audit import StoreSink
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._chain import ChainState, seal_entry
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._partitions import MEMORY_STORE_ENTRIES, AuditDatabase
from tenantvault.audit._query import EventQuery, run_query
from tenantvault.audit._redact import Redactor
from tenantvault.backends import MemoryBackend

SALT = b"r" * 32


def _lines(
    count: int,
    state: ChainState,
    *,
    start: int = 0,
    owners: tuple[str | None, ...] = ("alpha", "beta", "gamma", None),
) -> list[bytes]:
    """`count` sealed request entries of `owners` in turn (None: root's), chained on `state`."""
    redactor = Redactor(SALT)
    return [
        seal_entry(
            state,
            AuditEvent(
                type="request",
                time_ns=n,
                request_id=f"req-{n}",
                operation="read",
                tenant=owners[n % len(owners)],
                tenant_uid=f"uid-{owners[n % len(owners)]}" if owners[n % len(owners)] else "",
                mount="secret",
                path=f"secret/data/k{n}",
                remote_address="127.0.0.1",
                request_data={"pad": "x" * 200},
            ).render(redactor),
        )
        for n in range(start, start + count)
    ]


def _ids(database: AuditDatabase) -> list[int]:
    ids: list[int] = []
    for partition in database.select(None, None, redactor=Redactor(SALT)):
        ids.extend(int(row[0]) for row in partition.read("SELECT id FROM {events}", ()))
    return sorted(ids)


def _page_count(database: AuditDatabase) -> int:
    return int(database.query("PRAGMA page_count", ())[0][0])


async def test_a_store_in_memory_keeps_its_newest_entries_across_partitions() -> None:
    """Past `keep_newest` (plus a tenth), the oldest rows of every partition go; what stays is
    exactly the newest ids, and a query over the partitions pages through them in order."""
    database = AuditDatabase(None, keep_newest=100)
    state = ChainState()
    try:
        written = 0
        for _ in range(40):
            database.append(_lines(13, state, start=written))
            written += 13
            ids = _ids(database)
            assert len(ids) <= 110, written
            assert ids == list(range(written - len(ids) + 1, written + 1)), written
        assert len(_ids(database)) >= 100
        partitions = database.select(None, None, redactor=Redactor(SALT))
        assert {p.keeps_newest for p in partitions} == {100}
        events, cursor = await run_query(partitions, EventQuery(after_id=0, limit=1000))
        assert cursor is None
        assert [e["seq"] for e in events] == _ids(database)
        # From a cursor inside the window, pages carry on as they would in one table.
        first_page, cursor = await run_query(partitions, EventQuery(after_id=0, limit=30))
        assert cursor is not None
        next_page, _ = await run_query(partitions, EventQuery(after_id=cursor, limit=30))
        assert [e["seq"] for e in first_page + next_page] == _ids(database)[:60]
    finally:
        database.close()


def test_the_memory_of_a_trimmed_store_stops_growing() -> None:
    """The database's page count (its memory) levels off: freed pages are reused."""
    database = AuditDatabase(None, keep_newest=500)
    state = ChainState()
    try:
        written = 0
        counts = []
        for _ in range(30):
            database.append(_lines(200, state, start=written))
            written += 200
            counts.append(_page_count(database))
        assert written == 12 * 500
        # After a few windows' worth it is as big as it gets: no growth over the last half.
        assert max(counts[15:]) <= counts[14] * 1.1, counts
        assert counts[-1] < counts[2] * 2, counts
    finally:
        database.close()


def test_a_store_on_disk_keeps_every_entry(tmp_path: Path) -> None:
    """No retention on disk by default: every entry of many windows' worth is still there."""
    database = AuditDatabase(tmp_path / "audit.db")
    state = ChainState()
    try:
        for start in range(0, 3 * MEMORY_STORE_ENTRIES // 100, 100):
            database.append(_lines(100, state, start=start))
        assert len(_ids(database)) == 3 * MEMORY_STORE_ENTRIES // 100
        assert database.keep_newest is None
    finally:
        database.close()


def test_keep_newest_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AuditDatabase(None, keep_newest=0)


async def test_a_store_sink_in_memory_is_bounded_by_default() -> None:
    """The default of every store in memory (the one `serve --dev` enables among them), and
    what the sink's options report."""
    sink = StoreSink("store", None, salt=SALT)
    try:
        assert sink.options == {"path": ":memory:", "keep_newest": str(MEMORY_STORE_ENTRIES)}
    finally:
        await sink.aclose()


async def test_keep_newest_is_an_option_of_a_store_in_memory_only(tmp_path: Path) -> None:
    """Enabled through the API: a store in memory takes `keep_newest`; a bad value, or the
    option on a store on disk, is a 400 naming the option."""
    broker = AuditBroker(MemoryBackend(), file_dir=tmp_path)
    try:
        await broker.enable("small", "store", {"keep_newest": "250"}, persist=False)
        assert broker.describe()["small/"]["options"] == {
            "path": ":memory:",
            "keep_newest": "250",
        }
        for bad in ("0", "-3", "1.5", "many", str(10**8)):
            with pytest.raises(InvalidRequestError, match="keep_newest"):
                await broker.enable("bad", "store", {"keep_newest": bad}, persist=False)
        with pytest.raises(InvalidRequestError, match="in memory only"):
            await broker.enable(
                "disk", "store", {"path": "audit.db", "keep_newest": "10"}, persist=False
            )
    finally:
        await broker.aclose()


def test_a_failed_trim_fails_no_batch(caplog: pytest.LogCaptureFixture) -> None:
    """The trim runs after its batch committed: if it fails, the batch still stands (its
    requests were recorded), the failure is logged, and the next batch tries again."""
    database = AuditDatabase(None, keep_newest=10)
    state = ChainState()
    try:
        database.append(_lines(8, state, owners=("gone",)))
        # A partition the store knows, gone behind its back: every DELETE now fails.
        [(number,)] = database.query("SELECT id FROM audit_partitions WHERE tenant = 'gone'", ())
        database.query(f"DROP TABLE events_{int(number)}", ())
        database.append(_lines(20, state, start=8))
        database.append(_lines(5, state, start=28))
        assert "trimming the oldest entries failed (SQLITE_ERROR)" in caplog.text
        assert int(database.query("SELECT last_id FROM audit_head", ())[0][0]) == 33
    finally:
        database.close()
