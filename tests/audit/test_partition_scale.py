"""The audit store's work per request does not grow with the number of tenants (issue 16).

The store holds one table per tenant incarnation, so a store of 10,000 tenants holds 10,000
tables. What a request costs it (the batch its entries go in, a tenant's own query) must be
the same SQL whatever the count: the statements the writer's connection runs are recorded
with SQLite's trace callback and compared between a store of 10 partitions and one of 1,000
(table numbers aside). Counting statements, not timing them: this fails on any statement per
partition, however fast the machine.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tenantvault.audit._chain import ChainState, seal_entry
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._partitions import AuditDatabase
from tenantvault.audit._redact import Redactor

REDACTOR = Redactor(b"s" * 32)
# The tenants a request batch touches: a few, as under load from a few tenants' tokens.
BUSY = ("t00001", "t00005", "t00007")


class Writer:
    """Sealed request/response entries of any tenant, chained as one sink's."""

    def __init__(self) -> None:
        self.state = ChainState()
        self.count = 0

    def entries(self, tenants: tuple[str, ...] | list[str]) -> list[bytes]:
        lines = []
        for tenant in tenants:
            self.count += 1
            for kind in ("request", "response"):
                event = AuditEvent(
                    type=kind,
                    time_ns=1_700_000_000_000_000_000 + self.count,
                    request_id=f"req-{self.count}",
                    operation="read",
                    tenant=tenant,
                    tenant_uid=f"uid-{tenant}",
                    mount="secret",
                    path="secret/data/app0/s0",
                    remote_address="127.0.0.1",
                    status=200 if kind == "response" else 0,
                )
                lines.append(seal_entry(self.state, event.render(REDACTOR)))
        return lines


class Trace:
    """The SQL every connection of the store runs (each is made in `_connect`), by step."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: dict[str, list[str]] = {}
        self._current: list[str] | None = None
        connect = AuditDatabase._connect

        def traced_connect(database: AuditDatabase) -> sqlite3.Connection:
            conn = connect(database)
            conn.set_trace_callback(self._seen)
            return conn

        monkeypatch.setattr(AuditDatabase, "_connect", traced_connect)

    def _seen(self, statement: str) -> None:
        if self._current is not None:
            self._current.append(_alike(statement))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._current = self.steps[name] = []
        try:
            yield
        finally:
            self._current = None


def _work_of_one_request(
    path: Path, partitions: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, list[str]]:
    """A store of `partitions` tenants: the SQL of a batch, a tenant's query, a reopen."""
    writer = Writer()
    trace = Trace(monkeypatch)
    database = AuditDatabase(path)
    try:
        names = [f"t{n:05d}" for n in range(partitions)]
        for start in range(0, len(names), 250):
            database.append(writer.entries(names[start : start + 250]))
        database.append(writer.entries(BUSY))  # every busy partition seen once before
        with trace.step("batch"):
            database.append(writer.entries(BUSY))
        with trace.step("view"):
            partition = database.open_partition("t00005", "uid-t00005", redactor=REDACTOR)
            try:
                rows = partition.read("SELECT id FROM {events} ORDER BY id DESC LIMIT 5", ())
            finally:
                partition.close()
        assert len(rows) == 5
    finally:
        database.close()
    with trace.step("open"):  # a cold start reopens the store
        AuditDatabase(path).close()
    return trace.steps


def _alike(statement: str) -> str:
    """`statement` with its table number and bound values (the trace expands them) as `?`."""
    shape = re.sub(r"events_\d+", "events_N", statement)
    shape = re.sub(r"x?'(?:[^']|'')*'", "?", shape)
    return re.sub(r"\b\d+\b", "?", shape)


def test_the_same_sql_with_10_or_1000_tenants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _work_of_one_request(tmp_path / "small.db", 10, monkeypatch)
    large = _work_of_one_request(tmp_path / "large.db", 1000, monkeypatch)
    for step in ("batch", "view", "open"):
        assert small[step], step  # the trace saw the work
        assert large[step] == small[step], step
