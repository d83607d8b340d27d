"""A lease dies with the token that created them when that token expires (as OpenBao: the
lease keeps its own `lease_duration`, the token's expiry revokes it), unless the token was
renewed meanwhile; on a fake clock, with the expiration pass run by hand. Also: the lease
and token metrics counters move by exactly the events made."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenantvault import Core
from tenantvault._config import ServerSettings
from tenantvault.backends import MemoryBackend
from tenantvault.server import TenantVaultApp, create_app
from tests._postgres import PostgresCluster
from tests.conftest import FakeClock
from tests.database.conftest import Admin, role_exists
from tests.database.test_dynamic import creds, setup_engine
from tests.server.conftest import BASE_URL, Vault
from tests.server.test_metrics import scrape, value

DB_POLICY = (
    'path "database/creds/*" { capabilities = ["read"] }\n'
    'path "auth/token/renew-self" { capabilities = ["update"] }'
)


@pytest.fixture
async def clocked(root_token: str, clock: FakeClock) -> AsyncIterator[TenantVaultApp]:
    async def factory() -> Core:
        core = Core(MemoryBackend(), clock=clock)
        await core.start()
        return core

    app = create_app(ServerSettings(dev=True, dev_root_token=root_token), core_factory=factory)
    async with app as started:
        yield started


@pytest.fixture
async def vault(clocked: TenantVaultApp, root_token: str) -> AsyncIterator[Vault]:
    transport = httpx.ASGITransport(app=clocked)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield Vault(client, root_token)


async def _short_token(vault: Vault) -> str:
    await vault.write_policy(None, "db", DB_POLICY)
    return str((await vault.create_token(None, ["db"], ttl="30s"))["client_token"])


async def test_a_lease_is_revoked_when_its_token_expires(
    clocked: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster, clock: FakeClock
) -> None:
    await setup_engine(vault, admin)
    body = await creds(vault, token=await _short_token(vault))
    assert body["lease_duration"] == 3600  # OpenBao reports the lease's own TTL
    username = body["data"]["username"]
    clock.advance(29)
    await clocked.core.leases.revoke_due()
    assert await role_exists(postgres, username)
    clock.advance(2)
    await clocked.core.leases.revoke_due()
    assert not await role_exists(postgres, username)
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert (lookup.status_code, lookup.json()) == (400, {"errors": ["invalid lease"]})


async def test_a_renewed_token_keeps_its_lease_until_the_new_expiry(
    clocked: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster, clock: FakeClock
) -> None:
    await setup_engine(vault, admin)
    token = await _short_token(vault)
    body = await creds(vault, token=token)
    username = body["data"]["username"]
    renewed = await vault.request(
        "POST", "auth/token/renew-self", token=token, json={"increment": "120s"}
    )
    assert renewed.status_code == 200, renewed.text
    clock.advance(31)
    await clocked.core.leases.revoke_due()
    assert await role_exists(postgres, username)
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.status_code == 200, lookup.text
    clock.advance(90)
    await clocked.core.leases.revoke_due()
    assert not await role_exists(postgres, username)


async def test_a_root_tokens_lease_lives_its_own_ttl(
    clocked: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster, clock: FakeClock
) -> None:
    await setup_engine(vault, admin, default_ttl="1h")
    body = await creds(vault)
    clock.advance(3599)
    await clocked.core.leases.revoke_due()
    assert await role_exists(postgres, body["data"]["username"])
    clock.advance(2)
    await clocked.core.leases.revoke_due()
    assert not await role_exists(postgres, body["data"]["username"])


async def test_token_and_lease_counters_rise_by_exactly_the_events(
    clocked: TenantVaultApp, vault: Vault, admin: Admin
) -> None:
    await setup_engine(vault, admin)
    before = await scrape(vault, vault.root_token)
    n = 3
    tokens = [str((await vault.create_token(None, ["default"]))["client_token"]) for _ in range(n)]
    for token in tokens[:2]:
        response = await vault.root("POST", "auth/token/revoke", json={"token": token})
        assert response.status_code == 204, response.text
    body = await creds(vault)
    revoked = await vault.root("POST", "sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert revoked.status_code == 204, revoked.text
    after = await scrape(vault, vault.root_token)

    def rose(name: str, event: str) -> float:
        labels = {"event": event, "result": "success", "tenant": "root"}
        return value(after, name, **labels) - value(before, name, **labels)

    assert rose("tenantvault_token_events_total", "created") == n
    assert rose("tenantvault_token_events_total", "revoked") == 2
    assert rose("tenantvault_lease_events_total", "created") == 1
    assert rose("tenantvault_lease_events_total", "revoked") == 1
