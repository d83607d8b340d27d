"""Back-pressure over HTTP: in-flight bounds per tenant and overall, 429 + Retry-After past
them, audited and counted; probes answered under a flood; one tenant's flood leaves another
tenant's requests alone. Requests are held in flight by a backend gate, never by timing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from tenantvault._config import ServerSettings
from tenantvault._core import Core
from tenantvault.backends import MemoryBackend
from tenantvault.backends._protocol import Record
from tenantvault.server import TenantVaultApp, _admission, create_app
from tests.server.conftest import BASE_URL, READER_POLICY, Vault
from tests.server.test_metrics import parse

PER_TENANT = 4
TENANT_FULL = "in-flight request quota exceeded for this namespace"
SERVER_FULL = "in-flight request quota exceeded for this server"


class GatedBackend(MemoryBackend):
    """The memory backend, with the token lookup of one tenant's requests held while the gate
    is shut (one read per request), so that a test decides exactly how many are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.is_open = True
        self.held_tenants: set[str] = set()
        self.waiting = 0
        self.arrived = 0
        self._permits = 0
        self._moved = asyncio.Condition()

    async def read(self, tenant: str, mount: str, key: str) -> Record | None:
        if tenant in self.held_tenants and mount == "auth" and key.startswith("token/"):
            async with self._moved:
                if not self.is_open:
                    self.waiting += 1
                    self.arrived += 1
                    self._moved.notify_all()
                    try:
                        await self._moved.wait_for(lambda: self.is_open or self._permits > 0)
                    finally:
                        self.waiting -= 1
                    if not self.is_open:
                        self._permits -= 1
        return await super().read(tenant, mount, key)

    async def until_waiting(self, n: int) -> None:
        """Return once `n` requests are held at the gate."""
        async with self._moved:
            await self._moved.wait_for(lambda: self.waiting >= n)

    async def until_arrived(self, n: int) -> None:
        """Return once `n` requests in all have come to the gate since it was shut."""
        async with self._moved:
            await self._moved.wait_for(lambda: self.arrived >= n)

    def hold(self, *tenants: str) -> None:
        self.held_tenants = set(tenants)
        self.is_open = False
        self.arrived = 0

    async def let_through(self, n: int) -> None:
        """Let `n` held requests go on (the gate stays shut for the others)."""
        async with self._moved:
            self._permits += n
            self._moved.notify_all()

    def open(self) -> None:
        self.is_open = True
        # Wakes the held ones without the lock: notify needs it, so do it from a task.
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._moved:
            self._moved.notify_all()


@dataclass
class Server:
    app: TenantVaultApp
    backend: GatedBackend
    vault: Vault
    tokens: dict[str, str]


@contextlib.asynccontextmanager
async def _server(
    root_token: str, *, per_tenant: int, overall: int, running: int = 0
) -> AsyncIterator[Server]:
    """A dev server over a gated memory backend, with tenants acme and beta (a reader token
    each, a secret each) already served once."""
    backend = GatedBackend()

    async def factory() -> Core:
        core = Core(backend)
        await core.start()
        await core.audit_broker.enable("store", "store", {}, persist=False)
        return core

    settings = ServerSettings(
        dev=True,
        dev_root_token=root_token,
        max_inflight_per_tenant=per_tenant,
        max_inflight=overall,
        max_running=running,
    )
    async with create_app(settings, core_factory=factory) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, root_token)
            tokens: dict[str, str] = {}
            for tenant in ("acme", "beta"):
                await vault.create_tenant(tenant)
                await vault.write_policy(tenant, "reader", READER_POLICY)
                tokens[tenant] = (await vault.create_token(tenant, ["reader"]))["client_token"]
                await vault.put(tenant, "app/db", {"password": "pw"})
                # One request served: the controller now knows the tenant's token space.
                assert (await _read(vault, tokens[tenant])).status_code == 200
            try:
                yield Server(app, backend, vault, tokens)
            finally:
                backend.open()  # a failed test must not leave requests for shutdown to wait on


@pytest.fixture(autouse=True)
def _no_refusal_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals answered at once (the pause is the unit tests' and the bench's)."""
    monkeypatch.setattr(_admission, "REFUSAL_PAUSE_SECONDS", 0.0)


@pytest.fixture
async def server(root_token: str) -> AsyncIterator[Server]:
    async with _server(root_token, per_tenant=PER_TENANT, overall=64) as opened:
        yield opened


async def _read(vault: Vault, token: str) -> httpx.Response:
    return await vault.request("GET", "secret/data/app/db", token=token)


def _held(server: Server, tenant: str, n: int) -> list[asyncio.Task[httpx.Response]]:
    return [asyncio.create_task(_read(server.vault, server.tokens[tenant])) for _ in range(n)]


async def _until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until `predicate` holds (turns of the loop, never a timer)."""
    while not predicate():  # noqa: ASYNC110 -- the controller has no event to wait on
        await asyncio.sleep(0)


async def _audited(vault: Vault, request_id: str) -> list[dict[str, Any]]:
    response = await vault.root("GET", "sys/audit/events", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]["events"]
    return [event for event in events if request_id in str(event)]


async def test_past_the_tenant_bound_is_429_with_retry_after_audited_and_counted(
    server: Server,
) -> None:
    server.backend.hold("acme")
    held = _held(server, "acme", PER_TENANT)
    await server.backend.until_waiting(PER_TENANT)

    refused = await _read(server.vault, server.tokens["acme"])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {"errors": [TENANT_FULL]}
    request_id = refused.headers["x-request-id"]

    server.backend.open()
    assert [(await task).status_code for task in held] == [200] * PER_TENANT
    entries = await _audited(server.vault, request_id)
    assert entries, "the 429 is in the audit trail"
    assert "429" in str(entries)
    assert TENANT_FULL in str(entries)
    samples = parse(generate_latest(server.app.core.observability.registry).decode())
    labels = (("event", "tenant"), ("result", "failure"), ("tenant", "acme"))
    assert samples[("tenantvault_admission_events_total", labels)] == 1
    # Every slot came back: the tenant is served again.
    assert (await _read(server.vault, server.tokens["acme"])).status_code == 200


async def test_bounds_are_honoured_exactly(root_token: str) -> None:
    async with _server(root_token, per_tenant=PER_TENANT, overall=6) as server:
        server.backend.hold("acme", "beta")
        held = _held(server, "acme", PER_TENANT) + _held(server, "beta", 2)
        await server.backend.until_waiting(PER_TENANT + 2)
        # The server is full (6): beta, under its own bound, is refused by the overall one.
        beta = await _read(server.vault, server.tokens["beta"])
        assert beta.status_code == 429
        assert beta.json() == {"errors": [SERVER_FULL]}
        acme = await _read(server.vault, server.tokens["acme"])
        assert acme.json() == {"errors": [TENANT_FULL]}
        server.backend.open()
        assert {(await task).status_code for task in held} == {200}


async def test_health_and_seal_status_answer_while_every_slot_is_held(root_token: str) -> None:
    async with _server(root_token, per_tenant=PER_TENANT, overall=4) as server:
        server.backend.hold("acme")
        held = _held(server, "acme", PER_TENANT)
        await server.backend.until_waiting(PER_TENANT)
        assert (await server.vault.root("GET", "sys/mounts")).status_code == 429
        for path in ("sys/health", "sys/seal-status"):
            probe = await server.vault.root("GET", path)
            assert probe.status_code == 200, path
            assert probe.json()["sealed"] is False
        server.backend.open()
        await asyncio.gather(*held)


async def test_a_tenant_flooding_at_ten_times_its_bound_leaves_another_unharmed(
    server: Server,
) -> None:
    """Issue 16, acceptance 4 (the deterministic half; bench/fairness.py measures p99)."""
    server.backend.hold("acme")
    flood = _held(server, "acme", 10 * PER_TENANT)
    await server.backend.until_waiting(PER_TENANT)
    # While acme's slots are all held, every one of beta's requests is served at once (beta
    # at its own bound, PER_TENANT at a time).
    for _ in range(5):
        beta = await asyncio.gather(*_held(server, "beta", PER_TENANT))
        assert [reply.status_code for reply in beta] == [200] * PER_TENANT
    assert server.backend.waiting == PER_TENANT  # acme's, held all along
    # acme's other requests were answered 429 meanwhile (its admitted ones are still held).
    answered = asyncio.as_completed(flood)
    refused = [(await next(answered)).status_code for _ in range(9 * PER_TENANT)]
    assert refused == [429] * (9 * PER_TENANT)
    server.backend.open()
    assert [(await task).status_code for task in answered] == [200] * PER_TENANT


async def test_naming_another_namespace_charges_the_tokens_own_tenant(server: Server) -> None:
    """acme's token with `X-Vault-Namespace: beta` is acme's request: it holds acme's slots
    (and is refused 403 by the Core in the end), never beta's."""
    server.backend.hold("acme")
    vault = server.vault
    claims = [
        asyncio.create_task(
            vault.request(
                "GET", "secret/data/app/db", token=server.tokens["acme"], namespace="beta"
            )
        )
        for _ in range(PER_TENANT)
    ]
    await server.backend.until_waiting(PER_TENANT)
    assert (await _read(vault, server.tokens["acme"])).status_code == 429
    assert (await _read(vault, server.tokens["beta"])).status_code == 200
    server.backend.open()
    assert {(await task).status_code for task in claims} == {403}


async def test_turned_off_nothing_is_refused(root_token: str) -> None:
    async with _server(root_token, per_tenant=0, overall=0) as server:
        server.backend.hold("acme")
        held = _held(server, "acme", 50)
        await server.backend.until_waiting(50)
        server.backend.open()
        assert {(await task).status_code for task in held} == {200}


async def test_past_the_run_limit_a_flooding_tenant_costs_another_one_turn(
    root_token: str,
) -> None:
    """Two requests run at once; acme has both run slots and six requests in line when one
    of beta's arrives: beta's runs at the second slot that frees up, not after acme's six."""
    async with _server(root_token, per_tenant=10, overall=64, running=2) as server:
        server.backend.hold("acme")
        running = _held(server, "acme", 2)
        await server.backend.until_arrived(2)
        in_line = _held(server, "acme", 6)
        admission = server.app._admission
        await _until(lambda: admission.in_flight == 8)  # every one of them admitted
        beta = asyncio.create_task(_read(server.vault, server.tokens["beta"]))
        await _until(lambda: admission.in_flight == 9)
        assert admission.running == 2
        acme = running + in_line
        # One of acme's finishes: the turn is acme's line's (it queued first), then beta's.
        await server.backend.let_through(1)
        await server.backend.until_arrived(3)
        assert not beta.done()
        await server.backend.let_through(1)
        assert (await beta).status_code == 200
        assert sum(task.done() for task in acme) <= 2
        server.backend.open()
        assert {(await task).status_code for task in acme} == {200}
        assert admission.in_flight == 0
