"""The server's background services: supervised, restarted after a crash without failing a
request, visible in sys/health, failing health while one crash-loops, stopped in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tenantvault._config import ServerSettings
from tenantvault.audit import _writer, verify_lines
from tenantvault.audit._chain import seal_entry
from tenantvault.backends._sqlite import SqliteBackend
from tenantvault.engines.database._engine import DatabaseEngine
from tenantvault.engines.pki import AutoTidy
from tenantvault.engines.transit._rotation import RotationScheduler as TransitRotation
from tenantvault.leases._manager import LeaseManager
from tenantvault.observability._webhook import AlertWebhook
from tenantvault.rotation._scheduler import RotationScheduler as KvRotation
from tenantvault.server import TenantVaultApp
from tenantvault.services import SupervisorSettings
from tenantvault.services._audit_retention import AuditRetention
from tests.server._supervision import (
    EveryService,
    Fault,
    burst_while,
    health,
    no_wait,
    service_report,
    serving,
    until_restarted,
)


async def test_every_background_service_runs_supervised_and_shows_in_health(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/sys/health")
    assert response.status_code == 200
    body = response.json()
    services = body["services"]
    assert {
        "audit",
        "transit-rotation",
        "pki-auto-tidy",
        "lease-expiration",
        "database-rotation",
        "kv-rotation",
    } <= set(services)
    for name, report in services.items():
        assert report["state"] == "running", name
        assert report["restarts"] == 0, name
        assert report["last_error"] is None, name
        assert report["crash_looping"] is False, name
    assert body["failing_services"] == []
    # The audit service's own fields: the dev server's audit store, its writer up.
    assert services["audit"]["detail"] == {
        "writers": 1,
        "writers_down": [],
        "persister_crashed": False,
    }


async def test_shutdown_leaves_no_service_task_behind(app: TenantVaultApp) -> None:
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "service:transit-rotation" in names
    assert "service:audit" in names
    await app.shutdown()
    assert not [task for task in asyncio.all_tasks() if task.get_name().startswith("service:")]


def _dev(tmp_path: Path) -> ServerSettings:
    return ServerSettings(dev=True, dev_root_token="root-of-the-supervision-tests")


def _embedded(tmp_path: Path) -> ServerSettings:
    # With an audit retention: its service runs only when one is set.
    return ServerSettings(data_dir=tmp_path / "data", audit_store_retention_seconds=86_400)


def _alerting(tmp_path: Path) -> ServerSettings:
    # Port 9 (discard): no alert is raised here, so nothing is ever sent to it.
    return _dev(tmp_path).replace(alert_webhook="http://127.0.0.1:9/alerts")


# Each service, the step it runs (patched on its class: every instance, before startup),
# and a server that runs it. None of these steps is on a request's path.
SERVICES: dict[str, tuple[object, str, Callable[[Path], ServerSettings]]] = {
    "transit-rotation": (TransitRotation, "rotate_due_keys", _dev),
    "pki-auto-tidy": (AutoTidy, "tidy_due", _dev),
    "lease-expiration": (LeaseManager, "revoke_due", _dev),
    "database-rotation": (DatabaseEngine, "rotate_due", _dev),
    "kv-rotation": (KvRotation, "run_due", _dev),
    "key-rewrap": (SqliteBackend, "rewrap_keys", _embedded),
    "audit-retention": (AuditRetention, "prune_once", _embedded),
    "alert-webhook": (AlertWebhook, "run", _alerting),
}


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_a_crashed_service_is_restarted_and_no_request_fails(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, step, settings = SERVICES[name]
    fault = Fault()
    fault.patch(monkeypatch, owner, step)
    async with serving(settings(tmp_path)) as (_app, vault):
        assert (await service_report(vault, name))["restarts"] == 0
        await vault.create_tenant("acme")
        await burst_while(vault, "acme", fault.fire.set)
        report = await until_restarted(vault, name)
        assert fault.fired == 1
        assert report["restarts"] == 1
        assert report["last_error"] == "RuntimeError"  # the type only, never the message
        assert report["crash_looping"] is False
        assert (await health(vault)).status_code == 200


@pytest.mark.parametrize("settings", [_alerting, _embedded], ids=["dev", "embedded"])
async def test_every_registered_service_crashed_at_once_comes_back_and_no_request_fails(
    settings: Callable[[Path], ServerSettings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever `_supervisor()` registers (a service added later too) is covered here."""
    faults = EveryService()
    faults.patch(monkeypatch)
    async with serving(settings(tmp_path)) as (_app, vault):
        names = set((await health(vault)).json()["services"])
        await vault.create_tenant("acme")
        await burst_while(vault, "acme", faults.fire.set)
        assert faults.crashed == names
        for name in sorted(names):
            report = await until_restarted(vault, name)
            assert report["restarts"] == 1, name
            assert report["last_error"] == "RuntimeError", name
        assert (await health(vault)).status_code == 200


async def test_a_crashed_audit_writer_is_restarted_and_no_request_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread of the audit store dies mid-batch: requests wait, none fails."""
    armed, fired = threading.Event(), threading.Event()

    def faulty(state: Any, entry: dict[str, Any]) -> bytes:  # in the writer thread
        if armed.is_set() and not fired.is_set():
            fired.set()
            raise RuntimeError("injected writer crash")
        return seal_entry(state, entry)

    monkeypatch.setattr(_writer, "seal_entry", faulty)
    async with serving(_dev(tmp_path)) as (_app, vault):
        await vault.create_tenant("acme")
        await burst_while(vault, "acme", armed.set)
        assert fired.is_set()
        report = await until_restarted(vault, "audit")
        assert report["restarts"] == 1
        assert report["last_error"] == "RuntimeError"
        assert report["detail"]["writers_down"] == []
        assert (await health(vault)).json()["audit"]["healthy"] is True


class ManualSleep:
    """The supervisor's pause: moves its clock; after `free` pauses, waits for `resume`."""

    def __init__(self, free: int) -> None:
        self.now = 0.0
        self.free = free
        self.pauses = 0
        self.resume = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.now += seconds
        self.pauses += 1
        if self.pauses > self.free:
            await self.resume.wait()
        await asyncio.sleep(0)


async def test_a_crash_looping_service_fails_health_until_it_runs_a_window_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    healed = False
    original = TransitRotation.rotate_due_keys

    async def broken(self: TransitRotation, *args: Any, **kwargs: Any) -> Any:
        if not healed:
            raise RuntimeError("still broken")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(TransitRotation, "rotate_due_keys", broken)
    sleep = ManualSleep(free=2)
    supervision = SupervisorSettings(
        max_delay_seconds=10.0,
        crash_loop_restarts=3,
        crash_loop_window_seconds=100.0,
        sleep=sleep,
        clock=sleep.clock,
        random=lambda: 1.0,
    )
    async with serving(_dev(tmp_path), supervision) as (_app, vault):
        # Three crashes within the window (the third pause waits): crash-looping.
        for _ in range(500):
            if sleep.pauses == 3:
                break
            await asyncio.sleep(0)
        failing = await health(vault)
        assert failing.status_code == 503  # a load balancer takes the instance out
        body = failing.json()
        assert body["failing_services"] == ["transit-rotation"]
        assert body["services"]["transit-rotation"]["crash_looping"] is True
        assert body["services"]["transit-rotation"]["restarts"] == 3
        assert body["sealed"] is False  # Vault's own fields say as before
        assert body["initialized"] is True
        head = await vault.client.head("/v1/sys/health")
        assert head.status_code == 503
        # Vault's way to pick the status of a state, for this one too.
        assert (await health(vault, servicesunhealthycode="299")).status_code == 299
        assert (await health(vault, servicesunhealthycode="99")).status_code == 400
        # The instance still serves: only its health says to take it out.
        await vault.create_tenant("acme")
        await vault.put("acme", "app/k", {"v": "1"})

        healed = True
        sleep.resume.set()
        report = await until_restarted(vault, "transit-rotation")
        assert report["crash_looping"] is True  # running again, not yet for the recovery time
        assert (await health(vault)).status_code == 503
        sleep.now += 100.0  # past the 30 s recovery time of this run
        recovered = await health(vault)
        assert recovered.status_code == 200
        assert recovered.json()["failing_services"] == []


async def test_shutdown_stops_the_audit_service_last_and_flushes_the_final_entries(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.log"
    settings = _dev(tmp_path).replace(audit_file=log)
    stopped: list[str] = []
    async with serving(settings, SupervisorSettings(sleep=no_wait)) as (app, vault):
        await vault.create_tenant("acme")
        for n in range(5):
            await vault.put("acme", f"app/k{n}", {"v": str(n)})
        tasks = {
            task.get_name(): task
            for task in asyncio.all_tasks()
            if task.get_name().startswith("service:")
        }

        def note(task: asyncio.Task[Any]) -> None:
            stopped.append(task.get_name())

        for task in tasks.values():
            task.add_done_callback(note)
        await app.shutdown()
    assert stopped[-1] == "service:audit"
    assert len(stopped) == len(tasks)
    lines = log.read_bytes().splitlines(keepends=True)
    assert verify_lines(lines).ok
    entries = [orjson.loads(line) for line in lines]
    assert entries[-1]["type"] == "checkpoint"
    assert entries[-1]["reason"] == "close"
    responses = [e for e in entries if e["type"] == "response"]
    assert sum("app/k" in e["request"]["path"] for e in responses) == 5
