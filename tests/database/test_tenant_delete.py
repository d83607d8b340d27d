"""Deleting a tenant with live database leases: its users are dropped first (as OpenBao's
namespace deletion unmounts, revoking every lease), and a lease that cannot be revoked stops
the deletion instead of leaving its user behind."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenantvault.leases._store import Lease, LeaseStore
from tenantvault.server import TenantVaultApp
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login, role_exists
from tests.database.test_dynamic import creds, setup_engine
from tests.server.conftest import Vault


async def test_deleting_a_tenant_drops_its_database_users(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """Leases made by the root token acting in the tenant (which no tenant token revocation
    reaches) and by a tenant token: all their users are gone with the tenant."""
    await vault.create_tenant("dbgone")
    await setup_engine(vault, admin, namespace="dbgone")
    by_root = await creds(vault, namespace="dbgone")
    token = (await vault.create_token("dbgone", ["root"]))["client_token"]
    by_tenant = await creds(vault, token=token, namespace="dbgone")
    users = [body["data"]["username"] for body in (by_root, by_tenant)]
    assert all([await role_exists(postgres, user) for user in users])

    response = await vault.root("DELETE", "sys/namespaces/dbgone")
    assert response.status_code == 200, response.text
    assert not [user for user in users if await role_exists(postgres, user)]
    assert (await vault.root("GET", "sys/namespaces/dbgone")).status_code == 404


async def test_a_lease_that_cannot_be_revoked_stops_the_deletion(
    app: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """The database is unreachable: the deletion is refused (400, Vault's status for a failed
    synchronous revocation), the tenant and its lease stay with the error, and once the
    database is back a second deletion drops the user."""
    await vault.create_tenant("dbstuck")
    await setup_engine(vault, admin, namespace="dbstuck")
    body = await creds(vault, namespace="dbstuck")
    username, password = body["data"]["username"], body["data"]["password"]
    broken = admin.config(
        connection_url=admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/"),
        verify_connection=False,
    )
    response = await vault.root("POST", "database/config/pg", namespace="dbstuck", json=broken)
    assert response.status_code == 204, response.text

    response = await vault.root("DELETE", "sys/namespaces/dbstuck")
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert "1 lease(s) could not be revoked" in error
    assert admin.password not in response.text
    assert (await vault.root("GET", "sys/namespaces/dbstuck")).status_code == 200
    lookup = await vault.root(
        "POST", "sys/leases/lookup", namespace="dbstuck", json={"lease_id": body["lease_id"]}
    )
    assert lookup.status_code == 200, lookup.text
    assert lookup.json()["data"]["revoke_error"]
    assert await can_login(postgres, username, password)
    assert app.core.leases.health()["failures"] >= 1

    fixed = admin.config(verify_connection=False)
    response = await vault.root("POST", "database/config/pg", namespace="dbstuck", json=fixed)
    assert response.status_code == 204, response.text
    response = await vault.root("DELETE", "sys/namespaces/dbstuck")
    assert response.status_code == 200, response.text
    assert not await role_exists(postgres, username)


async def test_revoke_force_lets_a_stuck_deletion_finish(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """The operator gives the secret up (`revoke-force`): the deletion goes through and the
    user is left to the operator, as Vault's force-revocation."""
    await vault.create_tenant("dbforce")
    await setup_engine(vault, admin, namespace="dbforce")
    body = await creds(vault, namespace="dbforce")
    broken = admin.config(
        connection_url=admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/"),
        verify_connection=False,
    )
    await vault.root("POST", "database/config/pg", namespace="dbforce", json=broken)
    assert (await vault.root("DELETE", "sys/namespaces/dbforce")).status_code == 400
    force = await vault.root("POST", "sys/leases/revoke-force/database", namespace="dbforce")
    assert force.status_code == 204, force.text
    response = await vault.root("DELETE", "sys/namespaces/dbforce")
    assert response.status_code == 200, response.text
    assert await role_exists(postgres, body["data"]["username"])


async def test_a_lease_issued_during_the_deletion_is_revoked_not_orphaned(
    app: TenantVaultApp,
    vault: Vault,
    admin: Admin,
    postgres: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race OpenBao closes by tainting the namespace first: a creds request of the root
    token is under way (its user made, its lease not yet stored) when the tenant's deletion
    lists the leases. The lease lands after the listing; it must not outlive the tenant with
    its user still able to log in: the request fails with OpenBao's tainted text, the user
    is dropped, the deletion completes."""
    await vault.create_tenant("dbrace")
    await setup_engine(vault, admin, namespace="dbrace")
    issued, store_lease = asyncio.Event(), asyncio.Event()
    listed, finish_deletion = asyncio.Event(), asyncio.Event()
    users: list[str] = []
    create = LeaseStore.create

    async def paused_create(store: LeaseStore, tenant: str, lease: Lease) -> None:
        if tenant == "dbrace":
            users.append(str(lease.internal["username"]))
            issued.set()
            await store_lease.wait()
        await create(store, tenant, lease)

    async def after_the_lease_step(tenant: str) -> None:
        if tenant == "dbrace":
            listed.set()  # the taint and the lease listing are behind the deletion now
            await finish_deletion.wait()

    monkeypatch.setattr(LeaseStore, "create", paused_create)
    app.core.tenants.on_delete(after_the_lease_step)
    request = asyncio.create_task(
        vault.request("GET", "database/creds/r", token=vault.root_token, namespace="dbrace")
    )
    await asyncio.wait_for(issued.wait(), 30)
    [user] = users
    assert await role_exists(postgres, user)
    deletion = asyncio.create_task(vault.root("DELETE", "sys/namespaces/dbrace"))
    await asyncio.wait_for(listed.wait(), 30)
    store_lease.set()
    response = await asyncio.wait_for(request, 30)
    assert response.status_code == 403, response.text
    assert response.json() == {
        "errors": [
            'no handler for route "database/creds/r" on namespace "dbrace/". route entry or '
            "namespace is tainted."
        ]
    }
    assert not await role_exists(postgres, user)
    finish_deletion.set()
    deleted = await asyncio.wait_for(deletion, 30)
    assert deleted.status_code == 200, deleted.text
    assert (await vault.root("GET", "sys/namespaces/dbrace")).status_code == 404


async def test_a_tenant_being_deleted_is_tainted_and_refuses_requests(
    app: TenantVaultApp, vault: Vault
) -> None:
    """While its deletion runs the tenant reads as tainted (`sys/namespaces`) and serves
    nobody, root included; a deletion that fails lifts the taint again (the stuck-lease test
    above mends the config and deletes again)."""
    await vault.create_tenant("tainting")
    written = await vault.root(
        "POST", "secret/data/app", namespace="tainting", json={"data": {"k": "v"}}
    )
    assert written.status_code == 200, written.text
    listed, finish_deletion = asyncio.Event(), asyncio.Event()
    seen: dict[str, object] = {}

    async def during(tenant: str) -> None:
        if tenant == "tainting":
            seen["info"] = (await vault.root("GET", "sys/namespaces/tainting")).json()
            seen["read"] = await vault.root("GET", "secret/data/app", namespace="tainting")
            seen["prefixed"] = await vault.root("GET", "tainting/secret/data/app")
            listed.set()
            await finish_deletion.wait()

    app.core.tenants.on_delete(during)
    deletion = asyncio.create_task(vault.root("DELETE", "sys/namespaces/tainting"))
    await asyncio.wait_for(listed.wait(), 30)
    info = seen["info"]
    assert isinstance(info, dict)
    assert info["data"]["tainted"] is True
    read = seen["read"]
    assert isinstance(read, httpx.Response)
    # OpenBao's 403 for a route into a tainted namespace, in the header and path forms (a
    # tenant token's binding no longer authenticates either).
    tainted = (
        'no handler for route "secret/data/app" on namespace "tainting/". route entry or '
        "namespace is tainted."
    )
    assert read.status_code == 403, read.text
    assert read.json() == {"errors": [tainted]}
    prefixed = seen["prefixed"]
    assert isinstance(prefixed, httpx.Response)
    assert prefixed.status_code == 403, prefixed.text
    assert prefixed.json() == {"errors": [tainted]}
    finish_deletion.set()
    assert (await asyncio.wait_for(deletion, 30)).status_code == 200
