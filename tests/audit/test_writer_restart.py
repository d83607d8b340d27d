"""Issue 16: a crashed audit writer is restarted by the supervisor; no entry is lost.

The writer threads and the chain-head persister are watched by the `audit` service. When a
writer thread dies, requests wait for the restarted thread instead of failing; the chain on
disk stays intact (no duplicate, no hole); an entry that crashes a writer twice fails its own
request (fail closed) and only that one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import tenantvault
from tenantvault import TenantVaultError
from tenantvault.audit import _writer, verify_lines
from tenantvault.audit._chain import seal_entry
from tenantvault.audit._sinks import FileSink
from tenantvault.services import (
    Supervisor,
    SupervisorSettings,
    audit_detail,
    run_audit_workers,
)
from tenantvault.testing import core_of


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop (and the writer thread) run until `condition` holds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def _settings() -> SupervisorSettings:
    return SupervisorSettings(sleep=_no_wait, random=lambda: 1.0)


def _entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _crash_sealing(
    monkeypatch: pytest.MonkeyPatch, *, when: Callable[[dict[str, Any]], bool], times: int
) -> list[int]:
    """Make the writer thread crash while sealing an entry that `when` picks, `times` times
    (a bug outside the sink's write: the thread dies, nothing of its batch is written)."""
    crashes = [0]
    seal = seal_entry  # the writer's own, from the chain module

    def faulty(state: Any, entry: dict[str, Any]) -> bytes:
        if crashes[0] < times and when(entry):
            crashes[0] += 1
            raise RuntimeError("injected writer crash")
        return seal(state, entry)

    monkeypatch.setattr(_writer, "seal_entry", faulty)
    return crashes


def _any(entry: dict[str, Any]) -> bool:
    return True


def _for_path(part: str) -> Callable[[dict[str, Any]], bool]:
    return lambda entry: part in str(entry.get("request", {}).get("path", ""))


@contextlib.asynccontextmanager
async def _audited(tmp_path: Path, *, supervised: bool = True) -> AsyncIterator[Any]:
    """A store with a file sink, its `acme` tenant, and (if `supervised`) the audit service."""
    log = tmp_path / "audit.log"
    async with tenantvault.open("memory://") as tv:
        broker = core_of(tv).audit_broker
        await broker.enable("file", "file", {"file_path": str(log)}, persist=False)
        await tv.create_tenant("acme")
        services = Supervisor(_settings())
        if supervised:
            services.add("audit", lambda: run_audit_workers(broker))
        async with services:
            yield tv, broker, services, log


async def test_a_writer_crash_is_restarted_and_no_request_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _audited(tmp_path) as (tv, _broker, services, log):
        crashes = _crash_sealing(monkeypatch, when=_any, times=1)
        acme = tv.tenant("acme")
        await asyncio.gather(*(acme.kv.put(f"app/k{n}", {"v": n}) for n in range(20)))
        assert crashes == [1]
        report = services.report()["audit"]
        assert report["restarts"] == 1
        assert report["last_error"] == "RuntimeError"
        assert report["state"] == "running"
        assert report["crash_looping"] is False
    verdict = verify_lines(log.read_bytes().splitlines(keepends=True))
    assert verdict.ok, verdict.describe()
    puts = [e for e in _entries(log) if e["type"] == "response" and "app/k" in e["request"]["path"]]
    assert len(puts) == 20  # each written once: none lost, none twice


async def test_entries_queued_while_the_writer_is_down_wait_for_its_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _audited(tmp_path, supervised=False) as (tv, broker, _services, log):
        writer = broker.writers()["file"]
        _crash_sealing(monkeypatch, when=_any, times=1)
        first = asyncio.ensure_future(tv.tenant("acme").kv.put("app/a", {"v": 1}))
        await until(lambda: writer.crash is not None)
        second = asyncio.ensure_future(tv.tenant("acme").kv.put("app/b", {"v": 2}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not first.done()  # waiting, not failed
        assert not second.done()
        assert not writer.is_alive
        assert writer.restart()
        await asyncio.gather(first, second)
        assert writer.is_alive
    paths = [e["request"]["path"] for e in _entries(log) if e["type"] == "response"]
    assert [path for path in paths if "/data/app/" in path] == [
        "secret/data/app/a",
        "secret/data/app/b",
    ], paths  # in order
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_an_entry_that_crashes_the_writer_twice_fails_its_request_and_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _audited(tmp_path) as (tv, broker, services, log):
        _crash_sealing(monkeypatch, when=_for_path("poison"), times=1000)
        acme = tv.tenant("acme")
        with pytest.raises(TenantVaultError) as refused:
            await acme.kv.put("poison", {"v": 0})
        assert refused.value.status == 500  # fail closed: no sink could record it
        # Taken up once after the first crash; the second failed it.
        await until(lambda: services.report()["audit"]["restarts"] == 2)
        # The sink failed that entry, so the broker probes it back to health (as after any
        # failed write); then the writer goes on with everything else.
        await until(lambda: not broker.failing)
        await asyncio.gather(*(acme.kv.put(f"app/k{n}", {"v": n}) for n in range(10)))
        assert services.report()["audit"]["state"] == "running"
        # Never written: the request failed before it ran (listed, not read: a read of that
        # path would crash the writer again).
        assert "poison" not in await acme.kv.list()
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_a_crash_after_a_batch_is_durable_never_writes_it_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _audited(tmp_path) as (tv, _broker, services, log):
        settle = _writer._settle_all
        crashed = [False]

        def then_crash(futures: Any, error: Exception | None) -> None:
            settle(futures, error)
            if not crashed[0]:
                crashed[0] = True
                raise RuntimeError("injected crash after the write")

        monkeypatch.setattr(_writer, "_settle_all", then_crash)
        acme = tv.tenant("acme")
        await asyncio.gather(*(acme.kv.put(f"app/k{n}", {"v": n}) for n in range(10)))
        await until(lambda: services.report()["audit"]["restarts"] == 1)
    entries = _entries(log)
    assert len({e["seq"] for e in entries}) == len(entries)
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_a_crashed_head_persister_is_restarted_and_the_head_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _audited(tmp_path) as (tv, broker, services, _log):
        persist = broker._persist_round
        calls = [0]

        async def faulty() -> None:
            calls[0] += 1
            if calls[0] == 1:
                raise RuntimeError("injected persister crash")
            await persist()

        monkeypatch.setattr(broker, "_persist_round", faulty)
        await tv.tenant("acme").kv.put("app/k", {"v": 1})
        await until(lambda: services.report()["audit"]["restarts"] == 1)
        assert services.report()["audit"]["last_error"] == "RuntimeError"
        sink = broker.sinks["file"]
        assert isinstance(sink, FileSink)

        async def stored_seq() -> int:
            head = await broker._stored_head("file")
            return head.seq if head is not None else 0

        for _ in range(200):
            if await stored_seq() == sink.head.seq:
                break
            await asyncio.sleep(0.01)
        assert await stored_seq() == sink.head.seq


async def test_closing_a_crashed_writer_still_flushes_its_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.log"
    sink = FileSink("file", log, salt=b"s" * 32)
    writer = sink.writer
    await sink.checkpoint("before")
    _crash_sealing(monkeypatch, when=_any, times=1)
    pending = asyncio.ensure_future(sink.checkpoint("queued"))
    await until(lambda: writer.crash is not None)
    await sink.aclose()  # restarts it once to write what waits, then the close checkpoint
    await pending
    reasons = [e.get("reason") for e in _entries(log)]
    assert reasons == ["open", "before", "queued", "close"]
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok


async def test_the_audit_service_detail_names_the_writers_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Health detail: the sinks whose writer thread is not running (names only)."""
    async with _audited(tmp_path, supervised=False) as (tv, broker, _services, _log):
        up = {"writers": 1, "writers_down": [], "persister_crashed": False}
        assert audit_detail(broker) == up
        writer = broker.writers()["file"]
        _crash_sealing(monkeypatch, when=_any, times=1)
        put = asyncio.ensure_future(tv.tenant("acme").kv.put("app/k", {"v": 1}))
        await until(lambda: writer.crash is not None and not writer.is_alive)
        assert audit_detail(broker) == {**up, "writers_down": ["file"]}
        writer.restart()
        await put
        assert audit_detail(broker) == up


async def test_a_sink_enabled_while_running_is_watched_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tenantvault.open("memory://") as tv:
        broker = core_of(tv).audit_broker
        services = Supervisor(_settings())
        services.add("audit", lambda: run_audit_workers(broker, rescan_seconds=0.01))
        async with services:
            await until(lambda: services.report()["audit"]["state"] == "running")
            log = tmp_path / "late.log"
            await broker.enable("late", "file", {"file_path": str(log)}, persist=False)
            _crash_sealing(monkeypatch, when=_any, times=1)
            await tv.create_tenant("acme")  # its entries crash the new sink's writer once
            await until(lambda: services.report()["audit"]["restarts"] == 1)
            await tv.tenant("acme").kv.put("app/k", {"v": 1})
        assert broker.writers()["late"].is_alive
    assert verify_lines(log.read_bytes().splitlines(keepends=True)).ok
