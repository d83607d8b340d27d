"""Static database roles on a real PostgreSQL: rotate-role, scheduled rotation, validation."""

from __future__ import annotations

import uuid
from typing import Any

from tenantvault.server import TenantVaultApp
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login, new_login
from tests.database.test_dynamic import eventually
from tests.integration._support import remember_secret
from tests.server.conftest import Vault


async def setup_static(vault: Vault, admin: Admin, user: str, **fields: Any) -> None:
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    response = await vault.root(
        "POST", "database/config/pg", json=admin.config(allowed_roles=["s"])
    )
    assert response.status_code == 204, response.text
    body = {"db_name": "pg", "username": user, "rotation_period": "1h", **fields}
    response = await vault.root("POST", "database/static-roles/s", json=body)
    assert response.status_code == 204, response.text


async def static_creds(vault: Vault) -> dict[str, Any]:
    response = await vault.root("GET", "database/static-creds/s")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    remember_secret(data["password"])
    return data


async def test_creating_rotates_and_rotate_role_changes_the_password(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    user, first = await new_login(postgres)
    await setup_static(vault, admin, user)
    # Creating the role rotated the password at once (as Vault): the first one is dead.
    assert not await can_login(postgres, user, first)
    current = await static_creds(vault)
    assert sorted(current) == [
        "last_vault_rotation",
        "password",
        "rotation_period",
        "ttl",
        "username",
    ]
    assert current["username"] == user
    assert current["rotation_period"] == 3600
    assert 3590 <= current["ttl"] <= 3600
    assert await can_login(postgres, user, current["password"])

    response = await vault.root("POST", "database/rotate-role/s")
    assert response.status_code == 204, response.text
    rotated = await static_creds(vault)
    assert rotated["password"] != current["password"]
    assert not await can_login(postgres, user, current["password"])
    assert await can_login(postgres, user, rotated["password"])
    assert rotated["last_vault_rotation"] > current["last_vault_rotation"]

    role = await vault.root("GET", "database/static-roles/s")
    assert role.status_code == 200
    assert rotated["password"] not in role.text
    assert sorted(role.json()["data"]) == [
        "credential_type",
        "db_name",
        "last_vault_rotation",
        "rotation_period",
        "rotation_statements",
        "username",
    ]


async def test_scheduled_rotation_happens_at_its_period(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    user, _ = await new_login(postgres)
    await setup_static(vault, admin, user, rotation_period=5)
    first = await static_creds(vault)

    async def rotated() -> bool:
        return bool((await static_creds(vault))["password"] != first["password"])

    await eventually(rotated, "the static role was rotated on its period")
    latest = await static_creds(vault)
    assert await can_login(postgres, user, latest["password"])
    assert not await can_login(postgres, user, first["password"])
    health = (await vault.client.get("/v1/sys/health")).json()["services"]
    assert health["database-rotation"]["detail"]["rotated"] >= 1


async def test_cron_schedule_is_accepted_and_shown(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    user, _ = await new_login(postgres)
    await setup_static(vault, admin, user, rotation_period=None, rotation_schedule="0 0 * * *")
    data = (await vault.root("GET", "database/static-roles/s")).json()["data"]
    assert data["rotation_schedule"] == "0 0 * * *"
    assert "rotation_period" not in data
    creds = await static_creds(vault)
    assert 0 < creds["ttl"] <= 86400


async def test_static_role_errors_are_vaults(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    user, _ = await new_login(postgres)
    await setup_static(vault, admin, user)
    cases = [
        (
            {"db_name": "pg", "username": user},
            "rotation_period is required to create static accounts",
        ),
        (
            {"db_name": "pg", "username": user, "rotation_period": 2},
            "rotation_period must be 5 seconds or more",
        ),
        ({"username": user, "rotation_period": 60}, "database name is a required field"),
        (
            {
                "db_name": "pg",
                "username": user,
                "rotation_period": 60,
                "rotation_schedule": "* * * * *",
            },
            "mutually exclusive rotation fields provided: rotation_period, rotation_schedule",
        ),
    ]
    for body, text in cases:
        response = await vault.root("POST", "database/static-roles/other", json=body)
        assert (response.status_code, response.json()) == (400, {"errors": [text]}), body
    clash = await vault.root(
        "POST", "database/roles/s", json={"db_name": "pg", "creation_statements": "x"}
    )
    assert clash.json() == {"errors": ["Role and Static Role names must be unique"]}
    missing = await vault.root("POST", "database/rotate-role/nope")
    assert (missing.status_code, missing.json()) == (
        400,
        {"errors": ["no static role found for role name"]},
    )
    unknown = await vault.root("GET", "database/static-creds/nope")
    assert (unknown.status_code, unknown.json()) == (400, {"errors": ["unknown role: nope"]})


async def test_the_engine_sets_a_given_password_for_the_kv_rotator(
    app: TenantVaultApp, vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    """The seam the KV `database` rotator uses: set a chosen password on a static role."""
    user, _ = await new_login(postgres)
    await setup_static(vault, admin, user)
    mount = await app.core.mount_of(None, "database/")
    chosen = remember_secret(f"Chosen-{uuid.uuid4().hex}")
    assert await app.core.database.rotate_static_role(mount, "s", password=chosen) == (
        user,
        chosen,
    )
    assert await app.core.database.static_credentials(mount, "s") == (user, chosen)
    assert await can_login(postgres, user, chosen)
    assert (await static_creds(vault))["password"] == chosen
