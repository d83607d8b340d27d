"""The audit store's retention (`--audit-store-retention`): entries older than it are deleted,
in chunks, across partitions, the deletion recorded in the chain, the file bounded.

Without it the store on disk grows until the disk is full, and then every request fails
closed because no sink can record it: issue 16's fault tolerance, on the slow side.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.audit import StoreSink
from tenantvault.audit._broker import AuditBroker
from tenantvault.audit._chain import ChainState, seal_entry
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._partitions import AuditDatabase
from tenantvault.audit._redact import Redactor
from tenantvault.backends import MemoryBackend
from tenantvault.cli import _serve
from tenantvault.services._audit_retention import AuditRetention, retention_interval_seconds
from tests.audit._layouts import store_rows

SALT = b"p" * 32
SECOND = 1_000_000_000


def _entry(n: int, time_ns: int, tenant: str | None) -> AuditEvent:
    return AuditEvent(
        type="request",
        time_ns=time_ns,
        request_id=f"req-{n}",
        operation="read",
        tenant=tenant,
        tenant_uid=f"uid-{tenant}" if tenant else "",
        mount="secret",
        path=f"secret/data/k{n}",
        remote_address="127.0.0.1",
        request_data={"pad": "y" * 300},
    )


def _lines(times: list[int], state: ChainState, *, first: int = 0) -> list[bytes]:
    """Sealed entries at `times` (ns), spread over two tenants and root's partition."""
    redactor = Redactor(SALT)
    owners = ("alpha", "beta", None)
    return [
        seal_entry(state, _entry(first + i, t, owners[(first + i) % 3]).render(redactor))
        for i, t in enumerate(times)
    ]


def _times(database: AuditDatabase) -> list[int]:
    found: list[int] = []
    for partition in database.select(None, None, redactor=Redactor(SALT)):
        found.extend(int(r[0]) for r in partition.read("SELECT time_ns FROM {events}", ()))
    return sorted(found)


def test_prune_deletes_the_entries_older_than_the_cut_in_every_partition(tmp_path: Path) -> None:
    database = AuditDatabase(tmp_path / "audit.db")
    state = ChainState()
    try:
        times = [n * SECOND for n in range(1, 301)]
        database.append(_lines(times, state))
        assert database.prune(101 * SECOND, chunk=7) == 100
        assert _times(database) == times[100:]
        assert database.prune(101 * SECOND) == 0  # nothing older is left
        # Everything newer than the cut stays: also an entry without a time (a sink's
        # opening checkpoint is one) written after it.
        database.append([seal_entry(state, {"type": "checkpoint", "reason": "open"})])
        assert database.prune(200 * SECOND) == 99
        assert _times(database) == [0, *times[199:]]
    finally:
        database.close()


def test_prune_cuts_by_row_id_so_a_clock_running_behind_loses_nothing_newer(
    tmp_path: Path,
) -> None:
    """An entry stamped a little earlier than the one before it (two threads, one clock step)
    stays while anything written before it is still kept."""
    database = AuditDatabase(tmp_path / "audit.db")
    state = ChainState()
    try:
        database.append(_lines([10 * SECOND, 20 * SECOND, 19 * SECOND, 30 * SECOND], state))
        # Cut at 20 s: the 19 s entry comes after the first entry of 20 s, so it stays.
        assert database.prune(20 * SECOND) == 1
        assert _times(database) == [19 * SECOND, 20 * SECOND, 30 * SECOND]
    finally:
        database.close()


def test_a_pruned_store_stops_growing_on_disk(tmp_path: Path) -> None:
    """Insert a window's worth, prune what aged out, again and again: SQLite reuses the freed
    pages, so the file levels off instead of growing with every entry ever written."""
    path = tmp_path / "audit.db"
    database = AuditDatabase(path)
    state = ChainState()
    try:
        sizes = []
        now = 0
        for _ in range(30):
            times = [now + n for n in range(1, 401)]
            database.append(_lines(times, state, first=now))
            now += 400
            database.prune(now - 1199)  # keep the last three rounds
            database.query("PRAGMA wal_checkpoint(TRUNCATE)", ())
            sizes.append(path.stat().st_size)
        assert max(sizes[10:]) <= sizes[9] * 1.1, sizes
        assert len(_times(database)) == 1200
    finally:
        database.close()


async def test_a_prune_that_deleted_entries_is_recorded_in_the_chain() -> None:
    sink = StoreSink("store", None, salt=SALT)
    try:
        for n in range(6):
            await sink.write(_entry(n, (n + 1) * SECOND, "alpha"))
        assert await sink.prune(4 * SECOND, now_ns=100 * SECOND) == 3
        assert await sink.prune(4 * SECOND, now_ns=101 * SECOND) == 0  # no second checkpoint
        entries = [orjson.loads(line) for _, line in store_rows(sink)]
        assert [e["type"] for e in entries] == ["request"] * 3 + ["checkpoint"]
        checkpoint = entries[-1]
        assert checkpoint["reason"] == "retention"
        assert checkpoint["deleted"] == 3
        assert checkpoint["before"] == "1970-01-01T00:00:04.000000000Z"
        # It carries its own time, so it ages out with the entries written after it.
        assert checkpoint["time_ns"] == 100 * SECOND
        assert checkpoint["seq"] == entries[-2]["seq"] + 1
        assert checkpoint["prev_hash"] == entries[-2]["hash"]
    finally:
        await sink.aclose()


async def test_the_service_prunes_every_store_and_reports_in_health() -> None:
    broker = AuditBroker(MemoryBackend())
    now = [1_000 * SECOND]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise asyncio.CancelledError

    try:
        await broker.enable("one", "store", {}, persist=False)
        await broker.enable("two", "store", {}, persist=False)
        stores = broker.stores()
        assert len(stores) == 2
        for n in range(10):
            for store in stores:
                await store.write(_entry(n, (900 + 10 * n) * SECOND, "alpha"))
        retention = AuditRetention(broker, 50, clock=lambda: now[0], sleep=sleep)
        assert retention.health() == {"retention_seconds": 50, "last_pass": "", "deleted": 0}
        with pytest.raises(asyncio.CancelledError):
            await retention.run()
        # Older than 950 s: the entries of 900-940 s, in each store; then nothing more.
        assert retention.deleted_total == 10
        assert slept == [5.0, 5.0]
        assert retention.health() == {
            "retention_seconds": 50,
            "last_pass": "1970-01-01T00:16:40.000000000Z",
            "deleted": 10,
        }
    finally:
        await broker.aclose()


def test_passes_run_every_tenth_of_the_retention_within_a_second_and_an_hour() -> None:
    assert retention_interval_seconds(3) == 1.0
    assert retention_interval_seconds(600) == 60.0
    assert retention_interval_seconds(90 * 86_400) == 3600.0
    with pytest.raises(ValueError, match="at least one second"):
        AuditRetention(AuditBroker(MemoryBackend()), 0)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _serve.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", "--dev", *argv])


def test_the_retention_setting_from_a_flag_the_environment_or_the_config_file(
    tmp_path: Path,
) -> None:
    assert _serve._settings(_parse(), {}).audit_store_retention_seconds == 0
    flagged = _serve._settings(_parse("--audit-store-retention", "90d"), {})
    assert flagged.audit_store_retention_seconds == 90 * 86_400
    environ = {"TENANTVAULT_AUDIT_STORE_RETENTION": "720h"}
    assert _serve._settings(_parse(), environ).audit_store_retention_seconds == 720 * 3600
    config = tmp_path / "tenantvault.toml"
    config.write_text('audit-store-retention = "30d"\n')
    filed = _serve._settings(_parse("--config", str(config)), {})
    assert filed.audit_store_retention_seconds == 30 * 86_400
    with pytest.raises(Exception, match="audit_store_retention_seconds must be 0 or more"):
        ServerSettings(dev=True, audit_store_retention_seconds=-1)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--audit-store-retention", "soon"], {}, "--audit-store-retention must be a duration"),
        (
            [],
            {"TENANTVAULT_AUDIT_STORE_RETENTION": "later"},
            "TENANTVAULT_AUDIT_STORE_RETENTION must be a duration",
        ),
    ],
)
def test_a_bad_retention_exits_2_before_anything_starts(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert _serve.run(_parse(*argv), environ=environ, stdout=out, stderr=err) == 2
    assert message in err.getvalue()


def test_a_pass_touches_only_the_partitions_that_hold_entries_older_than_the_cut(
    tmp_path: Path,
) -> None:
    """With thousands of tenants, an hourly pass must not write to every partition: after a
    partition was pruned, the next pass issues no statement on it until it ages again."""
    database = AuditDatabase(tmp_path / "audit.db")
    state = ChainState()
    redactor = Redactor(SALT)
    deletes: list[str] = []
    try:
        # 40 tenants' entries at 1-40 s, then one newer entry of the first tenant.
        lines = [
            seal_entry(state, _entry(n, (n + 1) * SECOND, f"t{n}").render(redactor))
            for n in range(40)
        ]
        lines.append(seal_entry(state, _entry(40, 100 * SECOND, "t0").render(redactor)))
        database.append(lines)
        # Counting the statements the passes run.
        database._conn.set_trace_callback(
            lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None
        )
        assert database.prune(50 * SECOND) == 40
        assert len(deletes) == 40  # one per partition that held an old entry
        deletes.clear()
        assert database.prune(50 * SECOND) == 0
        assert deletes == []
        assert database.prune(200 * SECOND) == 1  # only t0's partition still held one
        assert len(deletes) == 1
    finally:
        database.close()
