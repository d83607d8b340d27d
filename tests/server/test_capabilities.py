"""`sys/capabilities`, `-self` and `-accessor`: answered by the Core, in OpenBao's shapes.

Shapes checked against OpenBao 2.7 (`bao server -dev`): each path's sorted capabilities under
`data` and repeated at the top level, plus `capabilities` when exactly one path is asked;
400 `invalid token` / `invalid accessor`; 400 `paths must be supplied`. A tenant can ask
only about its own tokens: another tenant's token or accessor is not addressable at all.
"""

from __future__ import annotations

from typing import Any

from tests.server.conftest import Vault

READER = 'path "secret/*" { capabilities = ["read", "list"] }'
CAPS = """
path "sys/capabilities" { capabilities = ["update"] }
path "sys/capabilities-accessor" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
"""


async def _tenant(vault: Vault, name: str) -> tuple[str, dict[str, Any]]:
    """A tenant with an asker token (may call sys/capabilities*) and a reader token."""
    await vault.create_tenant(name)
    await vault.write_policy(name, "reader", READER)
    await vault.write_policy(name, "caps", CAPS)
    asker = (await vault.create_token(name, ["caps"]))["client_token"]
    reader = await vault.create_token(name, ["reader"], no_default_policy=True)
    return asker, reader


async def test_capabilities_of_a_token_as_openbao_answers(vault: Vault) -> None:
    asker, reader = await _tenant(vault, "acme")
    response = await vault.request(
        "POST",
        "sys/capabilities",
        token=asker,
        json={"token": reader["client_token"], "paths": ["secret/data/a"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"secret/data/a": ["list", "read"], "capabilities": ["list", "read"]}
    # Repeated at the top level, as Vault does.
    assert body["secret/data/a"] == ["list", "read"]
    assert body["capabilities"] == ["list", "read"]


async def test_capabilities_of_an_accessor_lists_each_path(vault: Vault) -> None:
    asker, reader = await _tenant(vault, "acme")
    response = await vault.request(
        "POST",
        "sys/capabilities-accessor",
        token=asker,
        json={"accessor": reader["accessor"], "paths": ["secret/data/a", "sys/x"]},
    )
    assert response.status_code == 200, response.text
    # Two paths: no `capabilities` key.
    assert response.json()["data"] == {"secret/data/a": ["list", "read"], "sys/x": ["deny"]}


async def test_capabilities_self_of_root_is_root(vault: Vault) -> None:
    response = await vault.root("POST", "sys/capabilities-self", json={"paths": ["sys/mounts"]})
    assert response.status_code == 200
    assert response.json()["data"] == {"sys/mounts": ["root"], "capabilities": ["root"]}


async def test_unknown_token_or_accessor_and_missing_paths_are_400(vault: Vault) -> None:
    asker, reader = await _tenant(vault, "acme")
    cases = [
        ("sys/capabilities", {"token": "tvs.nope", "paths": ["a"]}, "invalid token"),
        ("sys/capabilities-accessor", {"accessor": "nope", "paths": ["a"]}, "invalid accessor"),
        ("sys/capabilities", {"token": reader["client_token"]}, "paths must be supplied"),
    ]
    for path, body, message in cases:
        response = await vault.request("POST", path, token=asker, json=body)
        assert response.status_code == 400, (path, response.text)
        assert message in response.text


async def test_without_a_grant_on_the_endpoint_the_answer_is_403(vault: Vault) -> None:
    _, reader = await _tenant(vault, "acme")
    response = await vault.request(
        "POST",
        "sys/capabilities",
        token=reader["client_token"],
        json={"token": reader["client_token"], "paths": ["secret/data/a"]},
    )
    assert response.status_code == 403


async def test_a_tenant_cannot_ask_about_another_tenants_token(vault: Vault) -> None:
    """The token and accessor are looked up through the caller's tenant-bound view: another
    tenant's answer exactly like ones that do not exist (no oracle across tenants)."""
    asker, _ = await _tenant(vault, "acme")
    _, foreign = await _tenant(vault, "acme-evil")
    by_token = await vault.request(
        "POST",
        "sys/capabilities",
        token=asker,
        json={"token": foreign["client_token"], "paths": ["secret/data/a"]},
    )
    assert by_token.status_code == 400
    assert "invalid token" in by_token.text
    by_accessor = await vault.request(
        "POST",
        "sys/capabilities-accessor",
        token=asker,
        json={"accessor": foreign["accessor"], "paths": ["secret/data/a"]},
    )
    assert by_accessor.status_code == 400
    assert "invalid accessor" in by_accessor.text
    # Not even the root token sees a tenant's token from the root namespace.
    from_root = await vault.root(
        "POST", "sys/capabilities-accessor", json={"accessor": foreign["accessor"], "paths": ["a"]}
    )
    assert from_root.status_code == 400
