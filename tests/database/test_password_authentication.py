"""`password_authentication = scram-sha-256`: the engine sends PostgreSQL a SCRAM-SHA-256
verifier, never the password (as OpenBao), for dynamic users and static-role rotations; the
password still logs in. The default sends the password as it is."""

from __future__ import annotations

from psycopg import sql

from tenantvault.engines.database._postgres import scram_verifier
from tests._postgres import PostgresCluster
from tests.database.conftest import Admin, can_login, execute, new_login
from tests.database.test_dynamic import CREATE
from tests.integration._support import remember_secret
from tests.server.conftest import Vault


async def _stored(postgres: PostgresCluster, user: str) -> str:
    rows = await execute(
        postgres.dsn(), sql.SQL("SELECT rolpassword FROM pg_authid WHERE rolname = %s"), user
    )
    return str(rows[0][0])


async def _engine(vault: Vault, admin: Admin, postgres: PostgresCluster, **config: str) -> None:
    # The admin's own sessions hash a plaintext password with md5: a stored SCRAM verifier can
    # then only have come from the engine.
    await execute(
        postgres.dsn(),
        sql.SQL("ALTER ROLE {} SET password_encryption = 'md5'").format(sql.Identifier(admin.user)),
    )
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    body = admin.config(allowed_roles=["*"], **config)
    response = await vault.root("POST", "database/config/pg", json=body)
    assert response.status_code == 204, response.text
    role = {"db_name": "pg", "creation_statements": [CREATE]}
    assert (await vault.root("POST", "database/roles/r", json=role)).status_code == 204


async def _creds(vault: Vault) -> tuple[str, str]:
    response = await vault.root("GET", "database/creds/r")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return data["username"], remember_secret(data["password"])


async def test_scram_sends_a_verifier_that_logs_in(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await _engine(vault, admin, postgres, password_authentication="scram-sha-256")
    username, password = await _creds(vault)
    assert (await _stored(postgres, username)).startswith("SCRAM-SHA-256$4096:")
    assert await can_login(postgres, username, password)
    user, _ = await new_login(postgres)
    body = {"db_name": "pg", "username": user, "rotation_period": "1h"}
    assert (await vault.root("POST", "database/static-roles/s", json=body)).status_code == 204
    assert (await _stored(postgres, user)).startswith("SCRAM-SHA-256$4096:")
    static = (await vault.root("GET", "database/static-creds/s")).json()["data"]["password"]
    assert await can_login(postgres, user, remember_secret(static))


async def test_the_default_sends_the_password(
    vault: Vault, admin: Admin, postgres: PostgresCluster
) -> None:
    await _engine(vault, admin, postgres)
    username, _ = await _creds(vault)
    assert (await _stored(postgres, username)).startswith("md5")


async def test_an_unknown_value_is_refused_with_openbaos_text(vault: Vault, admin: Admin) -> None:
    await vault.root("POST", "sys/mounts/database", json={"type": "database"})
    body = admin.config(password_authentication="md5")
    response = await vault.root("POST", "database/config/pg", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {
            "errors": [
                "error creating database object: 'md5' is not a valid password authentication type"
            ]
        },
    )


def test_the_verifier_has_a_fresh_salt_and_no_password() -> None:
    """PostgreSQL's format (its login accepts it: the tests above); the salt is random, so
    the same password never gives the same verifier twice."""
    first, second = scram_verifier("pencil-canary"), scram_verifier("pencil-canary")
    assert first != second
    assert "pencil-canary" not in first
    salt = bytes(16)
    assert scram_verifier("x", salt=salt) == scram_verifier("x", salt=salt)
    assert scram_verifier("x", salt=salt).startswith("SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$")
