"""sys/remount and sys/remount/status: a mount moves with its data, with OpenBao's texts
(checked against OpenBao 2.7.2 `bao server -dev`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import canary
from tests.server.conftest import Vault


async def remount(vault: Vault, body: Any, *, namespace: str | None = None) -> Any:
    return await vault.root("POST", "sys/remount", namespace=namespace, json=body)


async def test_a_kv_mount_moves_with_its_data_and_reports_success(vault: Vault) -> None:
    await vault.create_tenant("acme")
    value = canary()
    body = {"type": "kv", "options": {"version": "2"}}
    assert (await vault.root("POST", "sys/mounts/old", namespace="acme", json=body)).is_success
    written = await vault.root(
        "POST", "old/data/app", namespace="acme", json={"data": {"key": value}}
    )
    assert written.status_code == 200
    moved = await remount(vault, {"from": "old", "to": "team/new"}, namespace="acme")
    assert moved.status_code == 200, moved.text
    migration = moved.json()["data"]["migration_id"]
    assert moved.json()["migration_id"] == migration  # sys/ answers repeat data at top level
    read = await vault.root("GET", "team/new/data/app", namespace="acme")
    assert read.json()["data"]["data"] == {"key": value}
    assert (await vault.root("GET", "old/data/app", namespace="acme")).status_code == 404
    mounts = (await vault.root("GET", "sys/mounts", namespace="acme")).json()["data"]
    assert "team/new/" in mounts
    assert "old/" not in mounts
    status = await vault.root("GET", f"sys/remount/status/{migration}", namespace="acme")
    assert status.json()["data"] == {
        "migration_id": migration,
        "migration_info": {
            "source_mount": "old/",
            "target_mount": "team/new/",
            "status": "success",
        },
    }
    # Another namespace cannot see the move.
    elsewhere = await vault.root("GET", f"sys/remount/status/{migration}")
    assert elsewhere.status_code == 404


async def test_an_auth_mount_moves_and_keeps_working(vault: Vault) -> None:
    assert (await vault.root("POST", "sys/auth/ap", json={"type": "approle"})).is_success
    role = await vault.root("POST", "auth/ap/role/r", json={"token_policies": ["default"]})
    assert role.status_code == 204
    moved = await remount(vault, {"from": "auth/ap", "to": "auth/ap2"})
    assert moved.status_code == 200, moved.text
    role_id = await vault.root("GET", "auth/ap2/role/r/role-id")
    assert role_id.status_code == 200
    assert (await vault.root("GET", "auth/ap/role/r/role-id")).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"from": "secret"}, "both 'from' and 'to' path must be specified as a string"),
        ({"from": "nope", "to": "x"}, 'no matching mount at "nope/"'),
        ({"from": "sys", "to": "x"}, 'cannot remount "sys/"'),
        ({"from": "auth/token", "to": "auth/t2"}, 'cannot remount "auth/token/"'),
        ({"from": "secret", "to": "sys/x"}, "cannot remount to destination sys/x/"),
        ({"from": "secret", "to": "auth/x"}, "cannot remount to destination auth/x/"),
        ({"from": "secret", "to": "secret"}, 'path already in use at "secret/"'),
        ({"from": "secret", "to": "secret/sub"}, 'path already in use at "secret/"'),
        ({"from": "secret", "to": "transit"}, 'path already in use at "transit/"'),
    ],
)
async def test_bad_moves_are_refused_with_openbaos_texts(
    vault: Vault, body: dict[str, str], message: str
) -> None:
    await vault.create_tenant("acme")
    response = await remount(vault, body, namespace="acme")
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [message]
    mounts = (await vault.root("GET", "sys/mounts", namespace="acme")).json()["data"]
    assert {"secret/", "transit/"} <= set(mounts)


async def test_an_auth_mount_cannot_become_a_secrets_mount(vault: Vault) -> None:
    assert (await vault.root("POST", "sys/auth/ap", json={"type": "approle"})).is_success
    response = await remount(vault, {"from": "auth/ap", "to": "ap3"})
    assert response.json()["errors"] == ['cannot remount auth mount to non-auth mount "ap3/"']


async def test_remount_needs_sudo(vault: Vault) -> None:
    await vault.create_tenant("acme")
    policy = 'path "sys/remount" { capabilities = ["update"] }'
    await vault.write_policy("acme", "mover", policy)
    token = (await vault.create_token("acme", ["mover"]))["client_token"]
    response = await vault.request(
        "POST", "sys/remount", token=token, namespace="acme", json={"from": "secret", "to": "s2"}
    )
    assert response.status_code == 403
    mounts = (await vault.root("GET", "sys/mounts", namespace="acme")).json()["data"]
    assert "secret/" in mounts
