"""auth/token/* over HTTP: create, look up, renew and revoke, as hvac and the CLI call them."""

from __future__ import annotations

import pytest

from tests.server.conftest import READER_POLICY, Vault

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
async def admin(vault: Vault) -> str:
    """A token of acme's administrator, which also holds `reader` (a token hands out only
    policies it holds itself)."""
    await vault.tenant_admin("acme")
    await vault.write_policy("acme", "reader", READER_POLICY)
    return str((await vault.create_token("acme", ["admin", "reader"]))["client_token"])


async def test_create_returns_vaults_auth_block(vault: Vault, admin: str) -> None:
    response = await vault.request(
        "POST",
        "auth/token/create",
        token=admin,
        json={"policies": ["reader"], "ttl": "1h", "meta": {"app": "x"}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    auth = body["auth"]
    assert auth["policies"] == ["default", "reader"]
    assert auth["metadata"] == {"app": "x"}
    assert 3590 <= auth["lease_duration"] <= 3600
    assert auth["token_type"] == "service"
    assert auth["orphan"] is False


async def test_child_policies_must_be_a_subset(vault: Vault, admin: str) -> None:
    response = await vault.request(
        "POST", "auth/token/create", token=admin, json={"policies": ["reader"]}
    )
    assert response.status_code == 200
    reader = response.json()["auth"]["client_token"]
    escalate = await vault.request(
        "POST", "auth/token/create", token=reader, json={"policies": ["admin"]}
    )
    assert escalate.status_code == 403


async def test_create_orphan(vault: Vault, admin: str) -> None:
    response = await vault.request("POST", "auth/token/create-orphan", token=admin, json={})
    assert response.status_code == 200
    assert response.json()["auth"]["orphan"] is True


async def test_lookup_self_get_and_post(vault: Vault, admin: str) -> None:
    response = await vault.request("GET", "auth/token/lookup-self", token=admin)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == admin
    assert data["namespace_path"] == "acme/"
    assert "admin" in data["policies"]
    # POST needs `update` there, which the default policy does not grant (as in Vault).
    as_root = await vault.root("POST", "auth/token/lookup-self")
    assert as_root.status_code == 200
    assert as_root.json()["data"]["id"] == vault.root_token


async def test_lookup_and_lookup_accessor(vault: Vault, admin: str) -> None:
    child = await vault.create_token("acme", [])
    looked = await vault.request(
        "POST", "auth/token/lookup", token=admin, json={"token": child["client_token"]}
    )
    assert looked.status_code == 200
    assert looked.json()["data"]["accessor"] == child["accessor"]
    by_accessor = await vault.request(
        "POST", "auth/token/lookup-accessor", token=admin, json={"accessor": child["accessor"]}
    )
    assert by_accessor.status_code == 200
    assert by_accessor.json()["data"]["id"] == ""


async def test_renew_and_renew_self(vault: Vault, admin: str) -> None:
    child = await vault.create_token("acme", [], ttl="1h")
    renewed = await vault.request(
        "POST",
        "auth/token/renew",
        token=admin,
        json={"token": child["client_token"], "increment": "2h"},
    )
    assert renewed.status_code == 200
    assert renewed.json()["auth"]["lease_duration"] > 3600
    own = await vault.request(
        "POST", "auth/token/renew-self", token=child["client_token"], json={"increment": "30m"}
    )
    assert own.status_code == 200
    assert 0 < own.json()["auth"]["lease_duration"]


async def test_revoke_revoke_self_revoke_accessor(vault: Vault, admin: str) -> None:
    first = await vault.create_token("acme", [])
    second = await vault.create_token("acme", [])
    third = await vault.create_token("acme", [])
    revoked = await vault.request(
        "POST", "auth/token/revoke", token=admin, json={"token": first["client_token"]}
    )
    assert revoked.status_code == 204
    by_accessor = await vault.request(
        "POST", "auth/token/revoke-accessor", token=admin, json={"accessor": second["accessor"]}
    )
    assert by_accessor.status_code == 204
    own = await vault.request("POST", "auth/token/revoke-self", token=third["client_token"])
    assert own.status_code == 204
    for auth in (first, second, third):
        after = await vault.request("GET", "auth/token/lookup-self", token=auth["client_token"])
        assert after.status_code == 403
        assert after.json() == {"errors": ["permission denied"]}


async def test_revoke_orphan_needs_sudo(vault: Vault, admin: str) -> None:
    child = await vault.create_token("acme", [])
    ok = await vault.request(
        "POST", "auth/token/revoke-orphan", token=admin, json={"token": child["client_token"]}
    )
    assert ok.status_code == 204
    plain = (await vault.create_token("acme", []))["client_token"]
    denied = await vault.request(
        "POST", "auth/token/revoke-orphan", token=plain, json={"token": plain}
    )
    assert denied.status_code == 403


async def test_token_endpoints_reject_get_with_405(vault: Vault, admin: str) -> None:
    response = await vault.request("GET", "auth/token/create", token=admin)
    assert response.status_code == 405
    unknown = await vault.request("POST", "auth/token/nosuch", token=admin, json={})
    assert unknown.status_code == 404


async def test_root_namespace_tokens(vault: Vault) -> None:
    response = await vault.root("POST", "auth/token/create", json={"policies": ["root"]})
    assert response.status_code == 200
    token = response.json()["auth"]["client_token"]
    lookup = await vault.request("GET", "auth/token/lookup-self", token=token)
    assert lookup.json()["data"]["namespace_path"] == ""


async def test_bearer_authorization_header_works(vault: Vault, admin: str) -> None:
    response = await vault.request(
        "GET", "auth/token/lookup-self", headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 200
    same = await vault.request(
        "GET", "auth/token/lookup-self", token=admin, headers={"Authorization": f"Bearer {admin}"}
    )
    assert same.status_code == 200


async def test_the_bao_cli_fields_type_and_entity_alias_are_read_not_ignored(
    vault: Vault, admin: str
) -> None:
    """`bao token create` sends `type` and `entity_alias` (empty) every time: no warning."""
    for token_type in ("", "service", "default"):
        response = await vault.request(
            "POST",
            "auth/token/create",
            token=admin,
            json={"policies": ["reader"], "type": token_type, "entity_alias": ""},
        )
        assert response.status_code == 200, response.text
        assert response.json()["warnings"] is None
        assert response.json()["auth"]["token_type"] == "service"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        # Never a service token handed back for a batch one with a warning nobody reads.
        ({"type": "batch"}, "batch tokens are not supported"),
        ({"type": "weird"}, "invalid 'token_type' value"),
        ({"type": 5}, "invalid 'token_type' value"),
        ({"entity_alias": "x"}, "'entity_alias' is only allowed in combination with token role"),
        ({"entity_alias": ["x"]}, "invalid 'entity_alias' value"),
    ],
)
async def test_a_type_or_alias_that_cannot_be_honoured_is_refused_and_mints_nothing(
    vault: Vault, admin: str, fields: dict[str, object], error: str
) -> None:
    before = await vault.request("LIST", "auth/token/accessors", token=vault.root_token)
    response = await vault.request(
        "POST", "auth/token/create", token=admin, json={"policies": ["reader"], **fields}
    )
    assert (response.status_code, response.json()) == (400, {"errors": [error]})
    after = await vault.request("LIST", "auth/token/accessors", token=vault.root_token)
    assert after.json()["data"]["keys"] == before.json()["data"]["keys"]


async def test_an_entity_alias_through_a_role_is_refused_there_is_no_identity_store(
    vault: Vault,
) -> None:
    await vault.create_tenant("acme")
    made = await vault.root("POST", "auth/token/roles/app", namespace="acme", json={})
    assert made.status_code == 204, made.text
    response = await vault.root(
        "POST", "auth/token/create/app", namespace="acme", json={"entity_alias": "x"}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"errors": ["entity aliases are not supported"]},
    )


async def test_renewing_a_token_that_is_not_renewable_gives_openbaos_error(
    vault: Vault, admin: str
) -> None:
    fixed = await vault.create_token("acme", ["reader"], renewable=False, ttl="1h")
    for token, path, body in (
        (fixed["client_token"], "auth/token/renew-self", None),
        (vault.root_token, "auth/token/renew-self", None),  # no TTL: nothing to renew
        (admin, "auth/token/renew", {"token": fixed["client_token"]}),
    ):
        response = await vault.request("POST", path, token=token, json=body)
        assert (response.status_code, response.json()) == (
            400,
            {"errors": ["lease is not renewable"]},
        )
