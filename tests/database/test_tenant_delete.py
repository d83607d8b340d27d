"""Deleting a tenant with live database leases: its users are dropped first (as OpenBao's
namespace deletion unmounts, revoking every lease), and a lease that cannot be revoked stops
the deletion instead of leaving its user behind."""

from __future__ import annotations

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
