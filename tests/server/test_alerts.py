"""Anomaly alerts through the HTTP API, on a fake clock: a token's burst of distinct secret
reads, a tenant's burst of denials and a token's new client address each raise exactly the
expected alert with its numbers; a steady workload raises none; `sys/alerts` is scoped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantvault import Core
from tenantvault._config import ServerSettings
from tenantvault.backends import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests.conftest import FakeClock
from tests.server.conftest import BASE_URL, Vault
from tests.server.test_metrics import OBSERVER_POLICY

INTERVAL = 60  # the detector's default interval, seconds
STEADY_INTERVALS = 8


@pytest.fixture
async def clocked(root_token: str, clock: FakeClock) -> AsyncIterator[TenantVaultApp]:
    async def factory() -> Core:
        core = Core(MemoryBackend(), clock=clock)
        await core.start()
        return core

    app = create_app(ServerSettings(dev=True, dev_root_token=root_token), core_factory=factory)
    async with app as started:
        yield started


def _client(app: TenantVaultApp, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def vault(clocked: TenantVaultApp, root_token: str) -> AsyncIterator[Vault]:
    async with _client(clocked, "10.0.0.1") as client:
        yield Vault(client, root_token)


async def _setup(vault: Vault, tenant: str, secrets: int) -> tuple[str, str]:
    """A tenant with `secrets` secrets; (its observer/admin token, a token without grants)."""
    await vault.create_tenant(tenant)
    await vault.write_policy(tenant, "observer", OBSERVER_POLICY)
    admin = str(
        (await vault.create_token(tenant, ["observer"], display_name="ops"))["client_token"]
    )
    for i in range(secrets):
        await vault.put(tenant, f"app/s{i}", {"v": str(i)})
    nobody = str((await vault.create_token(tenant, ["default"]))["client_token"])
    return admin, nobody


async def _steady(vault: Vault, clock: FakeClock, token: str, nobody: str) -> None:
    """Each interval: 2 distinct reads and 1 denial, from the same address."""
    for _ in range(STEADY_INTERVALS):
        clock.advance(INTERVAL)
        for i in (0, 1):
            response = await vault.request("GET", f"secret/data/app/s{i}", token=token)
            assert response.status_code == 200
        assert (await vault.request("GET", "secret/data/app/s0", token=nobody)).status_code == 403


async def _alerts(vault: Vault, token: str) -> list[dict[str, Any]]:
    response = await vault.request("GET", "sys/alerts", token=token)
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
    return alerts


async def test_a_steady_workload_raises_no_alert(vault: Vault, clock: FakeClock) -> None:
    admin, nobody = await _setup(vault, "acme", 2)
    await _steady(vault, clock, admin, nobody)
    clock.advance(INTERVAL)
    await _steady(vault, clock, admin, nobody)
    assert await _alerts(vault, admin) == []
    assert await _alerts(vault, vault.root_token) == []


async def test_a_burst_of_distinct_reads_raises_one_alert(vault: Vault, clock: FakeClock) -> None:
    """After a steady baseline of 2 distinct secrets a minute, 50 in one minute."""
    admin, nobody = await _setup(vault, "acme", 50)
    await _steady(vault, clock, admin, nobody)
    clock.advance(INTERVAL)
    for i in range(50):
        assert (await vault.request("GET", f"secret/data/app/s{i}", token=admin)).status_code == 200
    alerts = await _alerts(vault, admin)
    assert [alert["kind"] for alert in alerts] == ["distinct_secrets"]
    alert = alerts[0]
    numbers = alert["numbers"]
    assert alert["tenant"] == "acme"
    assert alert["display_name"] == "token-ops"
    assert numbers["baseline_mean"] == pytest.approx(2.0)
    assert numbers["intervals"] == STEADY_INTERVALS
    # The alert fires on the read that crossed the threshold (mean 2 + 4 x std floor 1 = 6,
    # and at least 10 distinct): the 10th distinct secret, and only once in the interval.
    assert numbers["threshold"] == pytest.approx(6.0)
    assert numbers["observed"] == 10
    assert numbers["z_score"] == pytest.approx(8.0)


async def test_a_burst_of_denials_raises_one_alert(vault: Vault, clock: FakeClock) -> None:
    """After a steady baseline of one denial a minute, 30 denials in one minute."""
    admin, nobody = await _setup(vault, "acme", 2)
    await _steady(vault, clock, admin, nobody)
    clock.advance(INTERVAL)
    for _ in range(30):
        assert (await vault.request("GET", "secret/data/app/s0", token=nobody)).status_code == 403
    alerts = await _alerts(vault, admin)
    assert [alert["kind"] for alert in alerts] == ["denial_spike"]
    numbers = alerts[0]["numbers"]
    # The setup minute had no denial, then 8 minutes one each: the EWMA (alpha 0.3) of that
    # step is 1 - 0.7^8; its spread is below the floor of 1, so the threshold is mean + 4.
    assert numbers["intervals"] == STEADY_INTERVALS + 1
    assert numbers["baseline_mean"] == pytest.approx(1 - 0.7**8, abs=1e-3)
    assert numbers["baseline_std"] == 1.0
    assert numbers["threshold"] == pytest.approx(numbers["baseline_mean"] + 4, abs=1e-3)
    assert numbers["observed"] == 10  # past the threshold, and the 10-denial minimum
    assert alerts[0]["accessor"] == ""  # a tenant-wide alert


async def test_a_new_client_address_raises_one_alert(
    clocked: TenantVaultApp, vault: Vault, clock: FakeClock
) -> None:
    admin, nobody = await _setup(vault, "acme", 2)
    await _steady(vault, clock, admin, nobody)
    async with _client(clocked, "203.0.113.9") as elsewhere:
        moved = Vault(elsewhere, vault.root_token)
        for _ in range(3):
            response = await moved.request("GET", "secret/data/app/s0", token=admin)
            assert response.status_code == 200
    alerts = await _alerts(vault, admin)
    assert [alert["kind"] for alert in alerts] == ["new_client_address"]
    assert alerts[0]["numbers"] == {
        "address": "203.0.113.9",
        "known_addresses": 1,
        "intervals": STEADY_INTERVALS - 1,
    }


async def test_alerts_are_scoped_to_the_tenant(vault: Vault, clock: FakeClock) -> None:
    """beta's admin never sees acme's alert; root sees it, naming acme."""
    admin, nobody = await _setup(vault, "acme", 30)
    beta, _ = await _setup(vault, "beta", 0)
    await _steady(vault, clock, admin, nobody)
    clock.advance(INTERVAL)
    for i in range(30):
        await vault.request("GET", f"secret/data/app/s{i}", token=admin)
    assert [a["tenant"] for a in await _alerts(vault, vault.root_token)] == ["acme"]
    assert await _alerts(vault, beta) == []
