"""Issue 8: a hung sink costs one timeout, not one per request; it comes back by itself and
says what it missed. And the audit store is as durable as the data it describes."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import AuditError
from tenantvault.audit import AuditBroker, StoreSink, verify_lines
from tenantvault.testing import core_of


class _FifoReader:
    """Opens a FIFO for reading in a thread (which unblocks its writer) and keeps reading."""

    def __init__(self, path: Path) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        with path.open("rb") as handle:
            while chunk := handle.read1(65536):
                self.data += chunk

    def entries(self) -> list[dict[str, Any]]:
        self._thread.join(10)
        return [orjson.loads(line) for line in self.data.splitlines() if line.strip()]


def _hung_sink(tmp_path: Path) -> Path:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening a FIFO for writing blocks until a reader comes: a hung sink
    return fifo


async def _wait_healthy(broker: AuditBroker) -> None:
    for _ in range(200):
        if broker.health()["healthy"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the sink was not restored")


async def test_a_hung_sink_costs_one_timeout_then_is_skipped_probed_and_restored(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    """Before: every request waited the full timeout on the hung sink until it was disabled."""
    broker = core_of(tv).audit_broker
    assert broker is not None
    broker._timeout = 1.0
    good = tmp_path / "good.log"
    await broker.enable("good", "file", {"file_path": str(good)}, persist=False)
    fifo = _hung_sink(tmp_path)
    await broker.enable("hung", "file", {"file_path": str(fifo)}, persist=False)
    await tv.create_tenant("acme")  # waits for the timeout once
    assert broker.health()["failing_sinks"] == ["hung"]

    started = time.monotonic()
    for n in range(20):
        await tv.tenant("acme").kv.put("k", {"v": n})
    assert time.monotonic() - started < 5.0  # not 20 times the 1 s timeout

    reader = _FifoReader(fifo)
    await _wait_healthy(broker)
    await tv.tenant("acme").kv.put("k", {"v": "back"})
    await tv.aclose()

    hung = reader.entries()
    gaps = [e for e in hung if e["type"] == "checkpoint" and e["reason"] == "gap"]
    # The 20 puts (and the timed-out entry); a sink gets the responses of what it recorded.
    assert sum(g["missed_entries"] for g in gaps) >= 20
    assert verify_lines(orjson.dumps(e) + b"\n" for e in hung).gaps  # verify reports it
    after = hung[hung.index(gaps[-1]) + 1 :]
    assert [e["type"] for e in after] == ["request", "response", "checkpoint"]  # recording again
    assert verify_lines(good.read_bytes().splitlines(keepends=True)).ok
    assert broker.health()["chain_intact"] is False


async def test_with_only_a_hung_sink_requests_fail_closed_at_once_until_it_answers(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    broker = core_of(tv).audit_broker
    assert broker is not None
    broker._timeout = 1.0
    fifo = _hung_sink(tmp_path)
    await broker.enable("hung", "file", {"file_path": str(fifo)}, persist=False)
    with pytest.raises(AuditError):
        await tv.create_tenant("acme")
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(AuditError):
            await tv.create_tenant("acme")
    assert time.monotonic() - started < 1.0  # fails closed without waiting on the hung sink
    assert await core_of(tv).backend.has_tenant("acme") is False

    reader = _FifoReader(fifo)
    await _wait_healthy(broker)
    await tv.create_tenant("acme")
    await tv.aclose()
    entries = reader.entries()
    # Nothing was recorded elsewhere while it hung, so nothing is missing: `restored`.
    reasons = [e["reason"] for e in entries if e["type"] == "checkpoint"]
    assert "restored" in reasons
    assert "gap" not in reasons


async def test_closing_the_broker_leaves_no_probe_running(
    tv: tenantvault.TenantVault, tmp_path: Path
) -> None:
    broker = core_of(tv).audit_broker
    assert broker is not None
    await broker.enable("full", "file", {"file_path": "/dev/full"}, persist=False)
    with pytest.raises(AuditError):
        await tv.create_tenant("acme")
    assert [t for t in asyncio.all_tasks() if t.get_name() == "audit-probe-full"]
    await tv.aclose()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("audit-probe")]


async def test_the_audit_store_is_as_durable_as_the_data_store(tmp_path: Path) -> None:
    """An acknowledged request's entries survive power loss as its data does: FULL sync."""
    sink = StoreSink("store", tmp_path / "audit.db", salt=b"s" * 32)
    try:
        assert sink.query("PRAGMA synchronous", ()) == [(2,)]  # 2 = FULL
        assert sink.query("PRAGMA journal_mode", ()) == [("wal",)]
    finally:
        await sink.aclose()
