"""Dynamic database credentials and their leases, on a real PostgreSQL, through the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import sql

from tenantvault.server import TenantVaultApp
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login, execute, role_exists
from tests.integration._support import remember_secret
from tests.server.conftest import Vault, assert_no_canary

CREATE = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
)
POLL_SECONDS = 60.0


async def setup_engine(
    vault: Vault, admin: Admin, *, namespace: str | None = None, **role: Any
) -> None:
    """`database/` with config `pg` and role `r` (allowed)."""
    response = await vault.root(
        "POST", "sys/mounts/database", namespace=namespace, json={"type": "database"}
    )
    assert response.status_code == 204, response.text
    response = await vault.root(
        "POST",
        "database/config/pg",
        namespace=namespace,
        json=admin.config(allowed_roles=["r"]),
    )
    assert response.status_code == 204, response.text
    body = {"db_name": "pg", "creation_statements": [CREATE], "default_ttl": "1h", **role}
    response = await vault.root("POST", "database/roles/r", namespace=namespace, json=body)
    assert response.status_code == 204, response.text


async def creds(vault: Vault, *, token: str | None = None, namespace: str | None = None) -> Any:
    response = await vault.request(
        "GET", "database/creds/r", token=token or vault.root_token, namespace=namespace
    )
    assert response.status_code == 200, response.text
    body = response.json()
    remember_secret(body["data"]["password"])
    return body


async def eventually(check: Any, what: str) -> None:
    """Poll `check()` until it is true (a deadline, not a timed assertion)."""
    deadline = asyncio.get_running_loop().time() + POLL_SECONDS
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.2)


async def test_creds_connect_and_revoke_drops_the_role(
    vault: Vault, admin: Admin, postgres: PostgresCluster, logs: pytest.LogCaptureFixture
) -> None:
    """A dynamic user logs in and queries; `sys/leases/revoke` makes the login fail and
    drops the role; lookup shows Vault's shape; nothing secret is logged."""
    await setup_engine(vault, admin)
    body = await creds(vault)
    assert body["renewable"] is True
    assert body["lease_duration"] == 3600
    lease_id = body["lease_id"]
    assert lease_id.startswith("database/creds/r/")
    assert len(lease_id.rsplit("/", 1)[1]) == 24
    username, password = body["data"]["username"], body["data"]["password"]
    assert sorted(body["data"]) == ["password", "username"]
    assert username.startswith("v-token-r-")
    assert len(password) == 20
    assert await can_login(postgres, username, password)

    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": lease_id})
    assert lookup.status_code == 200, lookup.text
    data = lookup.json()["data"]
    assert sorted(data) == [
        "expire_time",
        "id",
        "issue_time",
        "last_renewal",
        "path",
        "renewable",
        "ttl",
    ]
    assert data["id"] == lease_id
    assert data["path"] == "database/creds/r"
    assert data["last_renewal"] is None
    assert 3590 <= data["ttl"] <= 3600

    listed = await vault.root("LIST", "sys/leases/lookup/database/creds/r/")
    assert listed.json()["data"]["keys"] == [lease_id.rsplit("/", 1)[1]]

    revoked = await vault.root("POST", "sys/leases/revoke", json={"lease_id": lease_id})
    assert revoked.status_code == 204, revoked.text
    assert not await can_login(postgres, username, password)
    assert not await role_exists(postgres, username)
    gone = await vault.root("POST", "sys/leases/lookup", json={"lease_id": lease_id})
    assert (gone.status_code, gone.json()) == (400, {"errors": ["invalid lease"]})
    # Revoking again is nothing to do, as in OpenBao.
    again = await vault.root("POST", "sys/leases/revoke", json={"lease_id": lease_id})
    assert again.status_code == 204
    assert_no_canary([r.getMessage() for r in logs.records], password, admin.password)
    # The audit trail recorded the config write and the creds answer, with no secret in it.
    events = await vault.root("GET", "sys/audit/events", params={"limit": "1000"})
    assert events.status_code == 200, events.text
    assert "database/creds/r" in events.text
    assert_no_canary([events.text], password, admin.password)


async def test_config_never_returns_the_password(vault: Vault, admin: Admin) -> None:
    await setup_engine(vault, admin)
    response = await vault.root("GET", "database/config/pg")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert admin.password not in response.text
    assert data["connection_details"] == {
        "connection_url": admin.cluster.template_url(),
        "username": admin.user,
    }
    assert data["allowed_roles"] == ["r"]
    assert data["plugin_name"] == "postgresql-database-plugin"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://{{username}}:{{password}}@127.0.0.1:5432/postgres",
        "postgresql://{{username}}:{{password}}@/postgres",
        "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?host=/var/run/postgresql",
        "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?passfile=/etc/passwd",
        "postgresql://{{username}}:{{password}}@%2Fvar%2Frun%2Fpostgresql/postgres",
    ],
)
async def test_connection_urls_are_validated(vault: Vault, admin: Admin, url: str) -> None:
    """Only postgres:// URLs with a host, and no option that picks another target."""
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    body = admin.config(connection_url=url, verify_connection=False)
    response = await vault.root("POST", "database/config/pg", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0].startswith("error creating database object: ")
    assert (await vault.root("GET", "database/config/pg")).status_code == 404


async def test_renew_moves_valid_until_within_max_ttl(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await setup_engine(vault, admin, default_ttl=60, max_ttl=120)
    body = await creds(vault)
    assert body["lease_duration"] == 60
    username = body["data"]["username"]
    rows = await execute(
        postgres.dsn(),
        sql.SQL("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s"),
        username,
    )
    before = rows[0][0]
    renewed = await vault.root(
        "POST", "sys/leases/renew", json={"lease_id": body["lease_id"], "increment": 90}
    )
    assert renewed.status_code == 200, renewed.text
    out = renewed.json()
    assert out["lease_id"] == body["lease_id"]
    assert out["renewable"] is True
    assert 85 <= out["lease_duration"] <= 90
    assert out["data"] is None
    capped = await vault.root(
        "POST", "sys/leases/renew", json={"lease_id": body["lease_id"], "increment": 9999}
    )
    assert capped.status_code == 200, capped.text
    assert capped.json()["lease_duration"] <= 120
    assert "exceeded the effective max_ttl" in capped.json()["warnings"][0]
    rows = await execute(
        postgres.dsn(),
        sql.SQL("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s"),
        username,
    )
    assert rows[0][0] > before
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.json()["data"]["last_renewal"] is not None


async def test_expiry_revokes_by_itself(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """The expiration service drops the user once the lease's TTL has passed."""
    await setup_engine(vault, admin, default_ttl=2)
    body = await creds(vault)
    assert body["lease_duration"] == 2
    username = body["data"]["username"]
    assert await role_exists(postgres, username)

    async def dropped() -> bool:
        return not await role_exists(postgres, username)

    await eventually(dropped, "the expired lease's role was dropped")
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.status_code == 400


async def test_revoking_the_parent_token_revokes_its_leases(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await setup_engine(vault, admin)
    await vault.write_policy(
        None,
        "db",
        'path "database/creds/*" { capabilities = ["read"] }\n'
        'path "auth/token/create" { capabilities = ["update"] }',
    )
    parent = (await vault.create_token(None, ["db"]))["client_token"]
    created = await vault.request(
        "POST", "auth/token/create", token=parent, json={"policies": ["db"]}
    )
    child = created.json()["auth"]["client_token"]
    body = await creds(vault, token=child)
    username = body["data"]["username"]
    assert await role_exists(postgres, username)
    response = await vault.root("POST", "auth/token/revoke", json={"token": parent})
    assert response.status_code == 204, response.text
    assert not await role_exists(postgres, username)
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.status_code == 400


async def test_lease_endpoints_need_their_capabilities(vault: Vault, admin: Admin) -> None:
    """lookup/renew/revoke need update on their path; listing and revoke-prefix need sudo."""
    await setup_engine(vault, admin)
    body = await creds(vault)
    await vault.write_policy(
        None,
        "leases",
        'path "sys/leases/*" { capabilities = ["update", "list"] }',
    )
    token = (await vault.create_token(None, ["leases"]))["client_token"]
    ok = await vault.request(
        "POST", "sys/leases/lookup", token=token, json={"lease_id": body["lease_id"]}
    )
    assert ok.status_code == 200
    listed = await vault.request("LIST", "sys/leases/lookup/database/", token=token)
    assert listed.status_code == 403
    prefix = await vault.request("POST", "sys/leases/revoke-prefix/database/", token=token)
    assert prefix.status_code == 403
    assert (
        await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    ).status_code == 200
    forced = await vault.root("POST", "sys/leases/revoke-prefix/database/creds")
    assert forced.status_code == 204
    assert (
        await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    ).status_code == 400


async def test_a_tenant_never_reaches_another_tenants_config_or_leases(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await vault.create_tenant("dbone")
    await vault.create_tenant("dbtwo")
    await setup_engine(vault, admin, namespace="dbone")
    body = await creds(vault, namespace="dbone")
    assert body["lease_id"].startswith("database/creds/r/")
    # The other tenant has no such config, role or lease, even with the same names.
    await vault.root("POST", "sys/mounts/database", namespace="dbtwo", json={"type": "database"})
    for path in ("database/config/pg", "database/roles/r"):
        response = await vault.root("GET", path, namespace="dbtwo")
        assert response.status_code == 404
    response = await vault.root("GET", "database/creds/r", namespace="dbtwo")
    assert (response.status_code, response.json()) == (400, {"errors": ["unknown role: r"]})
    lookup = await vault.root(
        "POST", "sys/leases/lookup", namespace="dbtwo", json={"lease_id": body["lease_id"]}
    )
    assert lookup.status_code == 400
    revoke = await vault.root(
        "POST", "sys/leases/revoke", namespace="dbtwo", json={"lease_id": body["lease_id"]}
    )
    assert revoke.status_code == 204
    force = await vault.root("POST", "sys/leases/revoke-force/database", namespace="dbtwo")
    assert force.status_code == 204
    assert await role_exists(postgres, body["data"]["username"])
    still = await vault.root(
        "POST", "sys/leases/lookup", namespace="dbone", json={"lease_id": body["lease_id"]}
    )
    assert still.status_code == 200


async def test_lease_quota_refuses_with_429_and_drops_the_user(
    app: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await setup_engine(vault, admin)
    app.core.leases.quota = 1
    await creds(vault)
    users = sql.SQL("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-token-r-%%'")
    before = await execute(postgres.dsn(), users)
    response = await vault.root("GET", "database/creds/r")
    assert (response.status_code, response.json()) == (
        429,
        {"errors": ["lease count quota exceeded"]},
    )
    # The user made for the refused lease was dropped again.
    assert await execute(postgres.dsn(), users) == before
    # Revoking a lease frees room under the quota.
    await vault.root("POST", "sys/leases/revoke-prefix/database/creds/r")
    await creds(vault)


async def test_a_failed_revocation_is_retried_and_shown_in_health(
    app: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """The database is unreachable at expiry: the lease stays, health counts the failure,
    lookup shows the error; once the database is back, a retry revokes it."""
    await setup_engine(vault, admin, default_ttl=1)
    app.core.leases.backoff_base_seconds = 0.2
    body = await creds(vault)
    broken = admin.config(
        connection_url=admin.cluster.template_url().replace(f":{admin.cluster.port}/", ":1/"),
        verify_connection=False,
    )
    assert (await vault.root("POST", "database/config/pg", json=broken)).status_code == 204

    async def failed() -> bool:
        health = (await vault.client.get("/v1/sys/health")).json()
        return int(health["services"]["lease-expiration"]["detail"]["failures"]) >= 1

    await eventually(failed, "the failed revocation shows in sys/health")
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.status_code == 200
    assert lookup.json()["data"]["revoke_error"]
    assert admin.password not in lookup.text
    assert await role_exists(postgres, body["data"]["username"])
    fixed = admin.config(verify_connection=False)
    assert (await vault.root("POST", "database/config/pg", json=fixed)).status_code == 204

    async def dropped() -> bool:
        return not await role_exists(postgres, body["data"]["username"])

    await eventually(dropped, "the retry revoked the lease")


async def test_revoke_without_sync_is_queued_and_done_by_the_service(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await setup_engine(vault, admin)
    body = await creds(vault)
    response = await vault.root(
        "POST", "sys/leases/revoke", json={"lease_id": body["lease_id"], "sync": False}
    )
    assert response.status_code == 202, response.text

    async def dropped() -> bool:
        return not await role_exists(postgres, body["data"]["username"])

    await eventually(dropped, "the queued revocation dropped the role")


async def test_disabling_the_mount_revokes_its_leases(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """As Vault's unmount: the mount's dynamic users are dropped, its leases are gone."""
    await setup_engine(vault, admin)
    body = await creds(vault)
    assert await role_exists(postgres, body["data"]["username"])
    response = await vault.root("DELETE", "sys/mounts/database")
    assert response.status_code == 204, response.text
    assert not await role_exists(postgres, body["data"]["username"])
    lookup = await vault.root("POST", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    assert lookup.status_code == 400
