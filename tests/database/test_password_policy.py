"""The database engine's `password_policy`: dynamic and static passwords come from the
tenant's own password policy of that name, on a real PostgreSQL."""

from __future__ import annotations

from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login, new_login
from tests.database.test_dynamic import CREATE
from tests.integration._support import remember_secret
from tests.server.conftest import Vault

POLICY = 'length = 30\nrule "charset" {\n  charset = "abcdefgh"\n  min-chars = 1\n}\n'
POLICY += 'rule "charset" {\n  charset = "2345"\n  min-chars = 4\n}\n'


def _follows_policy(password: str) -> bool:
    return (
        len(password) == 30
        and set(password) <= set("abcdefgh2345")
        and sum(c in "2345" for c in password) >= 4
    )


async def _engine(vault: Vault, admin: Admin, namespace: str, *, policy: str) -> None:
    await vault.create_tenant(namespace)
    for path, body in (
        ("sys/mounts/database", {"type": "database"}),
        ("database/config/pg", admin.config(allowed_roles=["*"], password_policy=policy)),
        ("database/roles/r", {"db_name": "pg", "creation_statements": [CREATE]}),
    ):
        response = await vault.root("POST", path, namespace=namespace, json=body)
        assert response.status_code == 204, response.text


async def test_dynamic_and_static_passwords_follow_the_policy(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await _engine(vault, admin, "pwdb", policy="dbpw")
    response = await vault.root(
        "POST", "sys/policies/password/dbpw", namespace="pwdb", json={"policy": POLICY}
    )
    assert response.status_code == 204, response.text
    for _ in range(3):
        response = await vault.root("GET", "database/creds/r", namespace="pwdb")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        remember_secret(data["password"])
        assert _follows_policy(data["password"])
        assert await can_login(postgres, data["username"], data["password"])
    user, _ = await new_login(postgres)
    body = {"db_name": "pg", "username": user, "rotation_period": "1h"}
    response = await vault.root("POST", "database/static-roles/s", namespace="pwdb", json=body)
    assert response.status_code == 204, response.text
    for _ in range(2):
        response = await vault.root("GET", "database/static-creds/s", namespace="pwdb")
        password = response.json()["data"]["password"]
        remember_secret(password)
        assert _follows_policy(password)
        assert await can_login(postgres, user, password)
        response = await vault.root("POST", "database/rotate-role/s", namespace="pwdb")
        assert response.status_code == 204, response.text


async def test_a_missing_policy_is_vaults_500_and_another_tenants_does_not_count(
    vault: Vault, admin: Admin
) -> None:
    await vault.create_tenant("pwother")
    response = await vault.root(
        "POST", "sys/policies/password/dbpw", namespace="pwother", json={"policy": POLICY}
    )
    assert response.status_code == 204, response.text
    await _engine(vault, admin, "pwmissing", policy="dbpw")
    response = await vault.root("GET", "database/creds/r", namespace="pwmissing")
    assert (response.status_code, response.json()) == (
        500,
        {
            "errors": [
                "1 error occurred:\n\t* failed to generate password: no password policy found\n\n"
            ]
        },
    )
