"""Leases survive a restart of the server: those that fell due while it was down are revoked
when it starts again (the embedded SQLite store, a real PostgreSQL), in the root namespace
and in a tenant (start-up reads only the tenants holding leases: `_tenant_sets`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tenantvault._config import ServerSettings
from tenantvault.server import create_app
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, role_exists
from tests.database.test_dynamic import creds, eventually, setup_engine
from tests.server.conftest import BASE_URL, Vault

TTL_SECONDS = 3


@pytest.mark.parametrize("namespace", [None, "acme"])
async def test_leases_due_while_down_are_revoked_at_start(
    tmp_path: Path, admin: Admin, postgres: PostgresCluster, namespace: str | None
) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data")
    tokens: list[str] = []
    async with create_app(settings, on_root_token=tokens.append) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, tokens[0])
            if namespace is not None:
                await vault.create_tenant(namespace)
            await setup_engine(vault, admin, namespace=namespace, default_ttl=TTL_SECONDS)
            body = await creds(vault, namespace=namespace)
    username = body["data"]["username"]
    # Down for longer than the lease lives: nothing revokes it meanwhile.
    await asyncio.sleep(TTL_SECONDS + 1)
    assert await role_exists(postgres, username)
    async with create_app(settings) as app:

        async def dropped() -> bool:
            return not await role_exists(postgres, username)

        await eventually(dropped, "the overdue lease was revoked at start")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            vault = Vault(client, tokens[0])
            lookup = await vault.root(
                "POST",
                "sys/leases/lookup",
                namespace=namespace,
                json={"lease_id": body["lease_id"]},
            )
            assert lookup.status_code == 400
            health = await client.get("/v1/sys/health")
            services = health.json().get("services", {})
            assert services["lease-expiration"]["detail"]["revoked"] >= 1
