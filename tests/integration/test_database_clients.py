"""Real clients on the database engine and leases: hvac (`client.secrets.database`,
`client.sys.read_lease|renew_lease|revoke_lease|list_leases`) and the `bao` CLI (`bao secrets
enable database`, `bao write database/config/...`, `bao read database/creds/r`, `bao lease
lookup|renew|revoke`), against a tenant of our real server and a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import pytest

from tests._postgres import PostgresCluster, running_postgres
from tests.database.conftest import Admin, can_login, execute, new_login, role_exists
from tests.integration._support import BaoCLI, BaoResult, remember_secret, unique_name
from tests.integration.conftest import TenantVaultServer

pytestmark = pytest.mark.integration

CREATE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    with running_postgres(tmp_path_factory.mktemp("postgres-clients")) as cluster:
        yield cluster


async def _admin(cluster: PostgresCluster) -> Admin:
    from psycopg import sql

    user = f"adm_{uuid.uuid4().hex[:10]}"
    password = remember_secret(f"adm-{uuid.uuid4().hex}")
    await execute(
        cluster.dsn(),
        sql.SQL("CREATE ROLE {} WITH LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)
        ),
    )
    return Admin(cluster, user, password)


def ok(result: BaoResult) -> BaoResult:
    assert result.code == 0, f"bao failed ({result.code}):\n{result.err}\n{result.out}"
    return result


def as_json(result: BaoResult) -> Any:
    return json.loads(ok(result).out)


async def test_hvac_database_engine_and_leases(
    tenantvault_server: TenantVaultServer, postgres: PostgresCluster
) -> None:
    admin = await _admin(postgres)
    static_user, _ = await new_login(postgres)
    tenant = unique_name()
    root = hvac.Client(url=tenantvault_server.addr, token=tenantvault_server.root_token)
    root.sys.create_namespace(tenant)
    client = hvac.Client(
        url=tenantvault_server.addr, token=tenantvault_server.root_token, namespace=tenant
    )
    client.sys.enable_secrets_engine("database", path="db")
    db = client.secrets.database
    db.configure(
        "pg",
        "postgresql-database-plugin",
        connection_url=admin.cluster.template_url(),
        allowed_roles=["r", "s"],
        username=admin.user,
        password=admin.password,
        mount_point="db",
    )
    assert (
        db.read_connection("pg", mount_point="db")["data"]["connection_details"]["username"]
        == admin.user
    )
    db.create_role("r", "pg", [CREATE], default_ttl="1h", max_ttl="2h", mount_point="db")
    assert db.list_roles(mount_point="db")["data"]["keys"] == ["r"]
    creds = db.generate_credentials("r", mount_point="db")
    username, password = creds["data"]["username"], remember_secret(creds["data"]["password"])
    assert await can_login(postgres, username, password)
    lease = client.sys.read_lease(creds["lease_id"])
    assert lease["data"]["path"] == "db/creds/r"
    renewed = client.sys.renew_lease(creds["lease_id"], increment=600)
    assert renewed["lease_duration"] == 600
    assert client.sys.list_leases("db/creds/r")["data"]["keys"]
    client.sys.revoke_lease(creds["lease_id"])
    assert not await role_exists(postgres, username)

    db.create_static_role(
        "s",
        "pg",
        username=static_user,
        rotation_statements=[],
        rotation_period=3600,
        mount_point="db",
    )
    first = db.get_static_credentials("s", mount_point="db")["data"]
    remember_secret(first["password"])
    db.rotate_static_role_credentials("s", mount_point="db")
    second = db.get_static_credentials("s", mount_point="db")["data"]
    remember_secret(second["password"])
    assert second["password"] != first["password"]
    assert await can_login(postgres, static_user, second["password"])
    assert not await can_login(postgres, static_user, first["password"])
    db.rotate_root_credentials("pg", mount_point="db")
    # The admin's old password is dead; the engine still works with the new one.
    assert not await can_login(postgres, admin.user, admin.password)
    again = db.generate_credentials("r", mount_point="db")
    remember_secret(again["data"]["password"])
    client.sys.revoke_prefix("db/creds/r")
    assert not await role_exists(postgres, again["data"]["username"])


async def test_bao_cli_database_and_lease_commands(
    bao: BaoCLI, tenantvault_server: TenantVaultServer, postgres: PostgresCluster
) -> None:
    admin = await _admin(postgres)
    root = tenantvault_server.root_token
    tenant = unique_name()
    ok(bao.run("namespace", "create", tenant, token=root))

    def run(*args: str) -> BaoResult:
        return bao.run(*args, token=root, namespace=tenant)

    ok(run("secrets", "enable", "database"))
    ok(
        run(
            "write",
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            f"connection_url={admin.cluster.template_url()}",
            f"username={admin.user}",
            f"password={admin.password}",
            "allowed_roles=r",
        )
    )
    ok(
        run(
            "write",
            "database/roles/r",
            "db_name=pg",
            f"creation_statements={CREATE}",
            "default_ttl=1h",
        )
    )
    creds = as_json(run("read", "-format=json", "database/creds/r"))
    remember_secret(creds["data"]["password"])
    assert creds["lease_duration"] == 3600
    lease_id = creds["lease_id"]
    looked = as_json(run("lease", "lookup", "-format=json", lease_id))
    assert looked["data"]["id"] == lease_id
    renewed = as_json(run("lease", "renew", "-format=json", "-increment=30m", lease_id))
    assert renewed["lease_duration"] == 1800
    ok(run("lease", "revoke", "-sync", lease_id))
    assert not await role_exists(postgres, creds["data"]["username"])
    missing = run("lease", "lookup", lease_id)
    assert missing.code != 0
    assert "invalid lease" in missing.err
